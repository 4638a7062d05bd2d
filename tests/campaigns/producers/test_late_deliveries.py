"""Late-delivery notices now reach the customer: the order flagged late becomes an email (and
an app-inbox message) through the campaigns channels, saying how many apology points the
loyalty program added; the orders notice is stamped sent only once the email went out. A
customer who refused marketing is still told (a service message); an erased one never is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from rapport.campaigns.models import Campaign, Delivery, InboxMessage
from rapport.campaigns.producers import late_deliveries
from rapport.flows import privacy
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import clock
from rapport.platform.db import open_session
from tests.campaigns.delivery.factories import make_customer
from tests.campaigns.producers.flow import NOON, advance_processors, frozen, run_worker
from tests.campaigns.receivers import SmtpSink
from tests.orders.factories import order_body, seed_catalog

# Before the orders are placed: every fact of a test is logged at or before the worker's "now"
# (a processor waits on a hole in the log followed by a fact from its future).
MORNING = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _late_order(db, order_id: str, customer_id: str) -> None:  # type: ignore[no-untyped-def]
    clock.set_clock(clock.FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)))
    orders.place_order(
        db,
        order=OrderIn(
            **order_body(order_id=order_id, customer_id=customer_id, promised_delivery="2026-03-04")
        ),
    )
    orders.update_delivery_status(db, order_id=order_id, status="shipped")


def test_a_late_order_is_told_by_email_with_the_apology_points(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given a shipped order promised for 4 March, for a customer who refused marketing email
    frozen(MORNING)
    with open_session(committed_url) as db:
        seed_catalog(db)
        customer = make_customer(
            db, consents={"marketing_email": False}, email="late@example.org", first_name="Lea"
        )
        db.commit()
        _late_order(db, "O-LATE", customer)
    # when the promise passes, the order is flagged late and the worker runs
    frozen(NOON)
    with open_session(committed_url) as db:
        assert orders.flag_late_deliveries(db) == ["O-LATE"]
    run_worker(committed_url)
    frozen(NOON + timedelta(minutes=3))  # past the wait for the apology points
    run_worker(committed_url)
    # then one email reached the customer, naming the order, the date and the points added
    (mail,) = smtp_sink.to("late@example.org")
    assert mail.subject == "Your order O-LATE is running late"
    assert "Hello Lea" in mail.text
    assert "will not arrive by 4 March as promised (promised date passed)" in mail.text
    assert "we have added 150 points to your account" in mail.text
    # and the app inbox holds the same notice, and the orders notice is stamped sent
    with open_session(committed_url) as db:
        inbox = db.scalars(select(InboxMessage).where(InboxMessage.customer_id == customer)).all()
        assert [m.subject for m in inbox] == ["Your order O-LATE is running late"]
        (notice,) = orders.notices_for(db, order_id="O-LATE")
        assert notice.sent_at is None  # not before the stamping job
        assert late_deliveries.stamp_sent_notices(db) == 1
        (notice,) = orders.notices_for(db, order_id="O-LATE")
        assert notice.sent_at is not None
        assert clock.as_utc(notice.sent_at) <= NOON + timedelta(minutes=3)
    # and running everything again sends nothing more
    run_worker(committed_url)
    assert len(smtp_sink.to("late@example.org")) == 1


def test_an_erased_customer_is_never_told(committed_url: str, smtp_sink: SmtpSink) -> None:
    # given two late parcels; one customer is erased after the order was flagged late, before
    # the worker ran
    frozen(MORNING)
    with open_session(committed_url) as db:
        seed_catalog(db)
        kept = make_customer(db, email="kept@example.org")
        erased = make_customer(db, email="erased@example.org")
        db.commit()
        _late_order(db, "O-KEPT", kept)
        _late_order(db, "O-ERASED", erased)
    frozen(NOON)
    with open_session(committed_url) as db:
        assert sorted(orders.flag_late_deliveries(db)) == ["O-ERASED", "O-KEPT"]
        privacy.erase_customer(db, customer_id=erased, requested_by="dpo")
    # when the worker runs, past the wait for the apology points
    run_worker(committed_url)
    frozen(NOON + timedelta(minutes=3))
    run_worker(committed_url)
    # then only the live customer got the email, and the erased one's notice is never stamped
    assert [m.to for m in smtp_sink.messages] == ["kept@example.org"]
    with open_session(committed_url) as db:
        sent = db.scalars(
            select(Delivery.occasion)
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(Campaign.key == "orders.late_delivery", Delivery.status == "sent")
        ).all()
        assert sent == ["order:O-KEPT"]
        assert late_deliveries.stamp_sent_notices(db) == 1
        assert [n.sent_at is not None for n in orders.notices_for(db, order_id="O-KEPT")] == [True]
        assert all(n.sent_at is None for n in orders.notices_for(db, order_id="O-ERASED"))


def test_a_failed_delivery_apology_is_its_own_message(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given a shipped order whose delivery failed (the loyalty apology rule gives points for
    # it; there is no late notice to carry them)
    frozen(MORNING)
    with open_session(committed_url) as db:
        seed_catalog(db)
        customer = make_customer(db, email="failed@example.org", consents={})
        db.commit()
        _late_order(db, "O-FAILED", customer)
        frozen(NOON)
        orders.update_delivery_status(db, order_id="O-FAILED", status="failed")
    # when the worker runs
    run_worker(committed_url)
    # then the customer is told, once, how many points were added for it
    (mail,) = smtp_sink.to("failed@example.org")
    assert mail.subject == "Sorry: we've added 150 points to your account"
    assert "about your order O-FAILED" in mail.text


def test_apology_points_for_a_promise_broken_long_ago_send_nothing(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given an order that was late back in March (its lateness is history: loaded past orders
    # are credited their apology points only now)
    frozen(MORNING)
    with open_session(committed_url) as db:
        seed_catalog(db)
        customer = make_customer(db, email="history@example.org", consents={})
        db.commit()
        _late_order(db, "O-HISTORY", customer)
        frozen(NOON)
        assert orders.flag_late_deliveries(db) == ["O-HISTORY"]
    # when the worker first runs months later, and the points for it are credited then
    frozen(NOON + timedelta(days=90))
    run_worker(committed_url)
    frozen(NOON + timedelta(days=90, minutes=3))
    run_worker(committed_url)
    # then the customer gets neither a late notice nor an apology about it
    assert smtp_sink.to("history@example.org") == []


def _late_notices(db, order_id: str) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [
        (key, status, reason)
        for key, status, reason in db.execute(
            select(Campaign.key, Delivery.status, Delivery.reason)
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(
                Campaign.key.in_(("orders.late_delivery", "orders.late_delivery.inbox")),
                Delivery.occasion == f"order:{order_id}",
            )
            .order_by(Campaign.key)
        )
    ]


def test_a_parcel_delivered_before_its_late_fact_is_handled_is_not_called_late(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given a shipped order flagged late, delivered before the worker handled the fact (as a
    # held delivery_late applied by `rapport events retry` after the parcel arrived)
    frozen(MORNING)
    with open_session(committed_url) as db:
        seed_catalog(db)
        customer = make_customer(db, email="arrived@example.org", first_name="Ada")
        db.commit()
        _late_order(db, "O-ARRIVED", customer)
    frozen(NOON)
    with open_session(committed_url) as db:
        assert orders.flag_late_deliveries(db) == ["O-ARRIVED"]
        orders.update_delivery_status(db, order_id="O-ARRIVED", status="delivered")
    # when the processors and the dispatcher run, past the wait for apology points
    run_worker(committed_url)
    frozen(NOON + timedelta(minutes=3))
    run_worker(committed_url)
    # then no "running late" message reached the customer, by email or in the app
    # (the promise was broken all the same: the apology points loyalty added are told in
    # their own message, which says nothing about the parcel being on its way)
    assert [m.subject for m in smtp_sink.to("arrived@example.org")] == [
        "Sorry: we've added 150 points to your account"
    ]
    late = "Your order O-ARRIVED is running late"
    with open_session(committed_url) as db:
        inbox = db.scalars(select(InboxMessage).where(InboxMessage.customer_id == customer)).all()
        assert [m.subject for m in inbox if m.subject == late] == []
        # and each copy is kept as suppressed, saying why, as other suppressions are
        reason = "late notice withdrawn: order O-ARRIVED delivered"
        assert _late_notices(db, "O-ARRIVED") == [
            ("orders.late_delivery", "suppressed", reason),
            ("orders.late_delivery.inbox", "suppressed", reason),
        ]


def test_a_late_notice_waiting_when_the_parcel_arrives_is_not_sent(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given a late notice queued (waiting for the apology points) for a shipped order
    frozen(MORNING)
    with open_session(committed_url) as db:
        seed_catalog(db)
        customer = make_customer(db, email="waiting@example.org")
        db.commit()
        _late_order(db, "O-WAITING", customer)
    frozen(NOON)
    with open_session(committed_url) as db:
        assert orders.flag_late_deliveries(db) == ["O-WAITING"]
    advance_processors(committed_url)
    with open_session(committed_url) as db:
        assert {status for _key, status, _reason in _late_notices(db, "O-WAITING")} == {"queued"}
        # when the parcel arrives before the notice goes out
        orders.update_delivery_status(db, order_id="O-WAITING", status="delivered")
    frozen(NOON + timedelta(minutes=3))
    run_worker(committed_url)
    # then the dispatcher sends no late notice, and says why
    late = "Your order O-WAITING is running late"
    assert [m.subject for m in smtp_sink.to("waiting@example.org") if m.subject == late] == []
    with open_session(committed_url) as db:
        reason = "late notice withdrawn: order O-WAITING delivered"
        assert _late_notices(db, "O-WAITING") == [
            ("orders.late_delivery", "suppressed", reason),
            ("orders.late_delivery.inbox", "suppressed", reason),
        ]


@pytest.mark.parametrize(
    ("locale", "line"),
    [
        ("en", "will not arrive by 4 March as promised"),
        ("fr", "n'arrivera pas le 4 mars comme promis"),
        ("de", "kommt nicht wie versprochen bis 4. März an"),
    ],
)
def test_each_language_writes_the_promised_day_in_words(
    committed_url: str, smtp_sink: SmtpSink, locale: str, line: str
) -> None:
    # given a late order of a customer who reads the shop in ``locale``
    frozen(MORNING)
    address = f"late-{locale}@example.org"
    with open_session(committed_url) as db:
        seed_catalog(db)
        customer = make_customer(db, email=address, locale=locale)
        db.commit()
        _late_order(db, f"O-{locale}", customer)
    # when it is flagged late and the worker runs
    frozen(NOON)
    with open_session(committed_url) as db:
        assert orders.flag_late_deliveries(db) == [f"O-{locale}"]
    run_worker(committed_url)
    frozen(NOON + timedelta(minutes=3))
    run_worker(committed_url)
    # then the email names the promised day in their language, never as 2026-03-04
    (mail,) = smtp_sink.to(address)
    assert line in mail.text
    assert "2026-03-04" not in mail.text
