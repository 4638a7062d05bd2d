"""Pick-up-in-store notices reach the customer through the campaigns channels: the "ready for
collection" email naming the store, the last day the order is kept and the pick-up code, and,
once that day passed and the hourly job released the order, the "not collected" email. They
are service messages: a customer who refused marketing still gets them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from rapport.campaigns.models import Campaign, Delivery
from rapport.campaigns.producers import late_deliveries
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
