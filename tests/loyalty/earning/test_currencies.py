"""An order in another currency than the program's earns no points: its minor units are not
the program's (150,000 won are about 100 euros, not 1,500), and Rapport keeps no exchange
rates. Its earn log says why; the till's checkout preview says the same."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty import service as ledger
from rapport.loyalty.models import Award, QualifyingActivity
from rapport.orders import service as orders
from tests.conftest import auth
from tests.loyalty.earning.test_earning import process
from tests.loyalty.earning.test_return_reversals import place_lines, return_units
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.orders.factories import CHIANTI, seed_catalog


def _member(db: Session) -> str:
    """A member of a program in EUR, past their first order (the welcome bonus)."""
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    place_lines(db, member, [(CHIANTI, 1, 1200)])
    process(db)
    return member


@pytest.mark.parametrize(
    ("currency", "price"),
    [("KRW", 150_000), ("JPY", 1_500), ("KWD", 3_000), ("GBP", 10_000)],
)
def test_an_order_in_another_currency_earns_nothing_and_says_why(
    db: Session, currency: str, price: int
) -> None:
    # given a member of a program in EUR, past their first order
    member = _member(db)
    before = ledger.balance(db, customer_id=member)

    # when they place an order in another currency, and return half of it
    order_id = place_lines(db, member, [(CHIANTI, 2, price)], currency=currency)
    process(db)
    return_units(db, order_id, {CHIANTI: 1})
    process(db)

    # then it earned no points, and its award of none says why
    assert ledger.balance(db, customer_id=member) == before
    awards = db.scalars(select(Award).where(Award.order_id == order_id)).all()
    assert [(a.rule_id, a.points, a.transaction_id, a.reason) for a in awards] == [
        (
            "base-earn",
            0,
            None,
            f"1 point per euro: order in {currency}, program in EUR: no points",
        )
    ]
    # and it counts as no spend toward tiers, placed or returned
    spends = db.scalars(
        select(QualifyingActivity.spend_minor).where(
            QualifyingActivity.customer_id == member,
            QualifyingActivity.source_key.not_like("order:%")
            | (QualifyingActivity.source_key == f"order:{order_id}"),
        )
    ).all()
    assert spends == [0, 0]


def test_an_imported_order_in_another_currency_earns_nothing(db: Session) -> None:
    # given a member past their first order, and orders from history in yen and in euros
    member = _member(db)
    before = ledger.balance(db, customer_id=member)
    external_id = customers.get_customer(db, customer_id=member).external_id  # type: ignore[union-attr]
    imported = [
        orders.ImportedOrder(
            order_id=f"H-{currency}",
            customer_external_id=external_id,
            channel="store",
            fulfilment="in_store",
            store_id=None,
            placed_at=T0 - timedelta(days=1),
            currency=currency,
            lines=[orders.ImportedLine(sku=CHIANTI, quantity=1, unit_price_minor=price)],
        )
        for currency, price in (("JPY", 150_000), ("EUR", 1_000))
    ]

    # when the import is processed
    orders.import_orders(db, orders=imported)
    process(db)

    # then only the order in euros earned: 10 points
    assert ledger.balance(db, customer_id=member) == before + 10
    assert ledger.order_points(db, customer_id=member, order_id="H-JPY").earned == 0


def test_an_order_in_the_programs_currency_still_earns(db: Session) -> None:
    member = _member(db)
    order_id = place_lines(db, member, [(CHIANTI, 1, 150_000)])
    process(db)
    assert ledger.order_points(db, customer_id=member, order_id=order_id).earned == 1500


def _cart(member: str, **extra: object) -> dict[str, object]:
    return {
        "customer_id": member,
        "lines": [{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 150_000}],
        **extra,
    }


def test_the_checkout_preview_takes_a_currency_and_earns_as_the_order_would(
    client, api_key, db
) -> None:
    member = _member(db)
    key = auth(api_key("write"))

    in_won = client.post("/v1/loyalty/checkout", json=_cart(member, currency="KRW"), headers=key)
    assert in_won.status_code == 200, in_won.text
    assert in_won.json()["points_to_earn"] == 0
    earned = [e for e in in_won.json()["effects"] if e["step"] == "points_earned"]
    assert [(e["rule"], e["points"], e["description"]) for e in earned] == [
        ("rule:base-earn", 0, "1 point per euro: order in KRW, program in EUR: no points")
    ]

    in_euros = client.post("/v1/loyalty/checkout", json=_cart(member), headers=key)
    said_euros = client.post(
        "/v1/loyalty/checkout", json=_cart(member, currency="EUR"), headers=key
    )
    assert in_euros.json()["points_to_earn"] == said_euros.json()["points_to_earn"] == 1500

    refused = client.post("/v1/loyalty/checkout", json=_cart(member, currency="krw"), headers=key)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "currency" in refused.text
