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
from rapport.orders.schemas import OrderIn, ReturnIn
from tests.conftest import auth
from tests.loyalty.earning.test_earning import process
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.orders.factories import CHIANTI, order_body, seed_catalog


def _place(db: Session, member: str, currency: str, price: int, quantity: int = 1) -> str:
    total = price * quantity
    body = order_body(
        customer_id=member,
        currency=currency,
        lines=[{"sku": CHIANTI, "quantity": quantity, "unit_price_minor": price}],
        discount_minor=0,
        shipping_minor=0,
        subtotal_minor=total,
        total_minor=total,
        payments=[{"method": "card", "amount_minor": total}],
    )
    return orders.place_order(db, order=OrderIn.model_validate(body)).order_id


@pytest.mark.parametrize(
    ("currency", "price"),
    [("KRW", 150_000), ("JPY", 1_500), ("KWD", 3_000), ("GBP", 10_000)],
)
def test_an_order_in_another_currency_earns_nothing_and_says_why(
    db: Session, currency: str, price: int
) -> None:
    # given a member of a program in EUR, past their first order
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    _place(db, member, "EUR", 1200)
    process(db)
    before = ledger.balance(db, customer_id=member)

    # when they place an order in another currency, and return half of it
    order_id = _place(db, member, currency, price, quantity=2)
    process(db)
    orders.record_return(
        db,
        order_id=order_id,
        request=ReturnIn.model_validate(
            {"lines": [{"sku": CHIANTI, "quantity": 1, "reason": "damaged"}], "channel": "store"}
        ),
    )
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
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    _place(db, member, "EUR", 1200)
    process(db)
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
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    _place(db, member, "EUR", 1200)
    order_id = _place(db, member, "EUR", 150_000)
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
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    _place(db, member, "EUR", 1200)
    process(db)
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
