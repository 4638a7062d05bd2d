"""A customer's spend in several currencies: each currency on its own (there is no exchange
rate), the 360 shows each on its own line, and segments and RFM read the shop's."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.models import CustomerTraits
from tests.customers.factories import T0, order_placed, process, track


def _euros_dollars_and_a_return(db: Session) -> str:
    """A customer with an order of 40.00 EUR, then one of 30.00 USD, then 5.00 EUR of the
    first one returned; their id."""
    euros = order_placed(4000, ["Wine/Red"])
    dollars = {**order_placed(3000, ["Wine/White"]), "currency": "USD"}
    track(db, "order_placed", user_id="C-FX", at=T0, properties=euros)
    track(db, "order_placed", user_id="C-FX", at=T0 + timedelta(days=1), properties=dollars)
    track(
        db,
        "order_returned",
        user_id="C-FX",
        at=T0 + timedelta(days=2),
        properties={"order_id": euros["order_id"], "refund_minor": 500, "currency": "EUR"},
    )
    process(db)
    return customers.find_customer(db, kind="external_id", value="C-FX").customer_id


def test_spend_is_kept_per_currency_and_never_added(db: Session) -> None:
    # given a customer with euro and dollar orders and a euro return
    customer_id = _euros_dollars_and_a_return(db)
    # then each currency's spend is its own: 35.00 EUR and 30.00 USD, never 65.00 of either
    traits = customers.get_traits(db, customer_id=customer_id)
    assert traits is not None
    assert traits.spend_by_currency == {"EUR": 3500, "USD": 3000}
    assert (traits.spend_minor, traits.currency) == (3000, "USD")  # the latest order's
    profile = customers.customer_profile(db, customer_id=customer_id, currency="EUR")
    summary = profile["traits"]
    assert summary["spend_by_currency"] == {"EUR": 3500, "USD": 3000}
    assert summary["average_order_minor"] is None  # no average across currencies


def test_segments_compare_the_shops_currency_only(db: Session) -> None:
    customer_id = _euros_dollars_and_a_return(db)

    def spending(op: str, value: int, currency: str) -> bool:
        audience = customers.trait_audience(
            db, field="spend_minor", op=op, value=value, now=T0, currency=currency
        )
        return customer_id in set(db.scalars(audience))

    # in a shop in euros they spent 35.00: not 50.00 (the 65.00 a sum would say)
    assert spending("gte", 3500, "EUR")
    assert not spending("gte", 5000, "EUR")
    # in a shop in dollars, 30.00
    assert spending("eq", 3000, "USD")
    # and in one in pounds nothing
    assert spending("eq", 0, "GBP")


def test_the_360_shows_each_currencys_spend_on_its_own_line(admin, db: Session) -> None:
    customer_id = _euros_dollars_and_a_return(db)
    page = admin.get(f"/admin/customers/{customer_id}").text
    assert '<span data-testid="trait-spend-EUR">€35.00</span>' in page
    assert '<span data-testid="trait-spend-USD">US$30.00</span>' in page
    assert "€65.00" not in page
    assert "US$65.00" not in page


def test_rfm_monetary_counts_the_shops_currency(db: Session) -> None:
    customer_id = _euros_dollars_and_a_return(db)
    boundaries = customers.refresh_rfm_boundaries(db)
    assert boundaries["monetary.EUR"] == [3500.0, 3500.0, 3500.0, 3500.0]
    assert boundaries["monetary.USD"] == [3000.0, 3000.0, 3000.0, 3000.0]
    assert "monetary" not in boundaries
    db.commit()
    audience = customers.rfm_audience(db, monetary=(5, 5), now=T0, currency="EUR")
    assert customer_id in set(db.scalars(audience))
    assert db.scalar(select(CustomerTraits.spend_minor)) == 3000
