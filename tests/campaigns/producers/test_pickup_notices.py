"""Pick-up-in-store notices reach the customer through the campaigns channels: the "ready for
collection" email naming the store, the last day the order is kept and the pick-up code, and,
once that day passed and the hourly job released the order, the "not collected" email. They
are service messages: a customer who refused marketing still gets them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from rapport.campaigns.models import Campaign, CampaignTemplate, Delivery
from rapport.campaigns.planning.editing import ensure_system_campaign, set_template
from rapport.campaigns.producers import late_deliveries
from rapport.campaigns.producers.messages import (
    PICKUP_NOT_COLLECTED,
    PICKUP_READY,
    SYSTEM_CAMPAIGNS,
    system_campaign,
)
from rapport.orders import service as orders
from rapport.platform import jobs
from rapport.platform.db import open_session
from tests.campaigns.delivery.factories import make_customer
from tests.campaigns.producers.flow import frozen, run_worker
from tests.campaigns.receivers import SmtpSink
from tests.orders.factories import CHIANTI, seed_catalog
from tests.orders.test_pickup_deadline import PAST_IT, PLACED, _level, _pickup


def _shop_with_customer(url: str, **customer: object) -> str:
    """The catalogue and one customer, an hour before the orders are placed (every fact of a
    test is logged at or before the worker's "now")."""
    frozen(PLACED - timedelta(hours=1))
    with open_session(url) as db:
        seed_catalog(db)
        customer_id = make_customer(db, **customer)
        db.commit()
    return customer_id


def test_the_customer_is_emailed_when_ready_and_when_not_collected(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given a customer who refused marketing email (these are service messages)
    customer = _shop_with_customer(
        committed_url,
        consents={"marketing_email": False},
        email="pick@example.org",
        first_name="Pia",
    )
    # when they order for pick-up in Paris and the worker runs
    frozen(PLACED)
    with open_session(committed_url) as db:
        code = orders.place_order(db, order=_pickup("O-MAIL", customer_id=customer)).pickup_code
    frozen(PLACED + timedelta(hours=2))
    run_worker(committed_url)
    # then one email says it is ready, where, until when, with the code
    (ready,) = smtp_sink.to("pick@example.org")
    assert ready.subject == "Your order O-MAIL is ready for collection"
    assert "Hello Pia" in ready.text
    assert "ready for collection at Paris Rivoli" in ready.text
    assert "We keep it for you until 9 March 2026." in ready.text
    assert f"Bring your pick-up code: {code}." in ready.text
    # and the stamping job (every minute) stamps the ready notice sent
    with open_session(committed_url) as db:
        assert late_deliveries.stamp_sent_notices(db) == 1
    # when the deadline passes and the worker runs (its hourly job with it), twice
    for hour in (0, 1):
        frozen(PAST_IT + timedelta(hours=hour))
        with open_session(committed_url) as db:
            jobs.enqueue(db, kind="orders.release_uncollected_pickups")
            db.commit()
        run_worker(committed_url)
    # then the customer is told once that it was cancelled, and the units are back on sale
    ready_again, gone = smtp_sink.to("pick@example.org")
    assert ready_again.subject == ready.subject
    assert gone.subject == "Your order O-MAIL was not collected"
    assert "not collected at Paris Rivoli by 9 March 2026" in gone.text
    with open_session(committed_url) as db:
        assert _level(db, CHIANTI) == (5, 0)
        assert orders.get_order(db, order_id="O-MAIL").status == "cancelled"
        # and both notices are stamped sent once their email went out
        assert late_deliveries.stamp_sent_notices(db) == 1
        assert all(n.sent_at is not None for n in orders.notices_for(db, order_id="O-MAIL"))


def test_a_ready_notice_is_not_sent_once_the_order_was_collected(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given a pick-up the customer collected before the worker sent its ready email
    customer = _shop_with_customer(committed_url, email="quick@example.org")
    frozen(PLACED)
    with open_session(committed_url) as db:
        code = orders.place_order(db, order=_pickup("O-QUICK", customer_id=customer)).pickup_code
        orders.confirm_pickup(db, order_id="O-QUICK", pickup_code=code or "", store_id="st-par-01")
    # when the worker runs
    frozen(PLACED + timedelta(minutes=10))
    run_worker(committed_url)
    # then no email tells them it waits, and the delivery says why
    assert smtp_sink.to("quick@example.org") == []
    with open_session(committed_url) as db:
        reasons = db.scalars(
            select(Delivery.reason)
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(Campaign.key == "orders.pickup_ready")
        ).all()
        assert reasons == ["ready notice withdrawn: order O-QUICK collected"]


@pytest.mark.parametrize(
    ("locale", "ready_line", "gone_line"),
    [
        ("en", "We keep it for you until 9 March 2026.", "by 9 March 2026, so we have"),
        ("fr", "Nous la gardons jusqu'au 9 mars 2026.", "avant le 9 mars 2026 :"),
        ("de", "Wir halten sie bis 9. März 2026 für Sie zurück.", "wurde bis 9. März 2026 nicht"),
    ],
)
def test_each_language_writes_the_collection_day_in_words(
    committed_url: str, smtp_sink: SmtpSink, locale: str, ready_line: str, gone_line: str
) -> None:
    # given a customer who reads the shop in ``locale``
    address = f"pick-{locale}@example.org"
    customer = _shop_with_customer(committed_url, email=address, locale=locale)
    # when their pick-up order is ready, and later passes its deadline uncollected
    frozen(PLACED)
    with open_session(committed_url) as db:
        orders.place_order(db, order=_pickup(f"O-{locale}", customer_id=customer))
    frozen(PLACED + timedelta(hours=2))
    run_worker(committed_url)
    frozen(PAST_IT)
    with open_session(committed_url) as db:
        jobs.enqueue(db, kind="orders.release_uncollected_pickups")
        db.commit()
    run_worker(committed_url)
    # then both emails name the day in the customer's language, never as 2026-03-09
    ready, gone = smtp_sink.to(address)
    assert ready_line in ready.text
    assert gone_line in gone.text
    assert "2026-03-09" not in ready.text + gone.text


def test_a_stored_french_default_with_the_iso_date_becomes_todays_an_edited_one_stays(
    committed_url: str,
) -> None:
    # given the pick-up campaigns as Rapport created them before December 2026 (French and
    # German with the ISO date), the German not-collected one since edited by the retailer
    ids: dict[str, int] = {}
    with open_session(committed_url) as db:
        for key in (PICKUP_READY, PICKUP_NOT_COLLECTED):
            before = SYSTEM_CAMPAIGNS[key].superseded
            assert set(before) == {("email", "fr"), ("email", "de")}
            ids[key] = ensure_system_campaign(
                db,
                key=key,
                name=key,
                purpose="service",
                channel="email",
                templates={**SYSTEM_CAMPAIGNS[key].templates, **before},
            ).id
        db.commit()
    edited = "Bis {{ occasion.collect_by }} abholen"
    with open_session(committed_url) as db:
        set_template(
            db,
            campaign_id=ids[PICKUP_NOT_COLLECTED],
            channel="email",
            locale="de",
            subject="Hallo",
            body=edited,
        )
    # when a producer next uses them
    with open_session(committed_url) as db:
        for key in (PICKUP_READY, PICKUP_NOT_COLLECTED):
            system_campaign(db, key)
        db.commit()
        stored = {
            (key, t.locale): t.body
            for key, t in db.execute(
                select(Campaign.key, CampaignTemplate).join(
                    CampaignTemplate, CampaignTemplate.campaign_id == Campaign.id
                )
            )
        }
    # then the untouched defaults are today's, and the retailer's text is kept
    for key in (PICKUP_READY, PICKUP_NOT_COLLECTED):
        for locale in ("fr", "de"):
            if (key, locale) == (PICKUP_NOT_COLLECTED, "de"):
                assert stored[(key, locale)] == edited
            else:
                assert (
                    stored[(key, locale)] == SYSTEM_CAMPAIGNS[key].templates[("email", locale)][1]
                )


def test_a_back_dated_pickup_order_emails_no_one_when_it_is_released(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given a pick-up order loaded 17 days after it was placed (an import of history)
    customer = _shop_with_customer(committed_url, email="history@example.org")
    frozen(PLACED + timedelta(days=17))
    with open_session(committed_url) as db:
        orders.place_order(db, order=_pickup("O-OLD", customer_id=customer, placed_at=PLACED))
    # when the worker runs, and the hourly job releases it (long past its deadline)
    run_worker(committed_url)
    with open_session(committed_url) as db:
        jobs.enqueue(db, kind="orders.release_uncollected_pickups")
        db.commit()
    run_worker(committed_url)
    # then the order is cancelled and no email went out: a customer never told the order was
    # ready is not told it was not collected
    assert smtp_sink.to("history@example.org") == []
    with open_session(committed_url) as db:
        assert orders.get_order(db, order_id="O-OLD").status == "cancelled"
        assert db.scalars(select(Delivery.id)).all() == []


def test_a_pickup_whose_ready_email_was_never_queued_gets_no_not_collected_email(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given a pick-up order placed while the worker was down, and down past its deadline (its
    # ready fact then too old to tell: the producers' two days)
    customer = _shop_with_customer(committed_url, email="down@example.org")
    frozen(PLACED)
    with open_session(committed_url) as db:
        orders.place_order(db, order=_pickup("O-DOWN", customer_id=customer))
    # when the worker is back, the hourly job releases it, and the worker runs
    frozen(PAST_IT)
    with open_session(committed_url) as db:
        jobs.enqueue(db, kind="orders.release_uncollected_pickups")
        db.commit()
    run_worker(committed_url)
    run_worker(committed_url)
    # then the order is cancelled, and the customer, never told it was ready, is not told
    with open_session(committed_url) as db:
        assert orders.get_order(db, order_id="O-DOWN").status == "cancelled"
        kinds = {n.kind for n in orders.notices_for(db, order_id="O-DOWN")}
        assert orders.NOT_COLLECTED_NOTICE in kinds
        assert db.scalars(select(Delivery.id)).all() == []
    assert smtp_sink.to("down@example.org") == []
