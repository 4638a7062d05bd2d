"""Points per unit count in the program currency's own unit, as ISO 4217 sets its minor unit:
a program in yen earns per yen (1 minor unit), one in dinars per dinar (1,000 fils for KWD),
one in euros per euro (100 cents), where every program counted 100 minor units as a unit
(JPY programs earned 100 times, KWD ones 10 times, too few). The simulators read the same
unit, and an order in another currency earns nothing at all, its first-purchase bonus
included."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty import service as ledger
from tests.conftest import auth
from tests.loyalty.earning.test_earning import process
from tests.loyalty.earning.test_return_reversals import place_lines
from tests.loyalty.factories import frozen_clock, make_customer
from tests.orders.factories import CHIANTI, seed_catalog


def _program_member(db: Session, currency: str) -> str:
    """A member of a program in ``currency``, past their first order (the welcome bonus)."""
    frozen_clock()
    seed_catalog(db, stock=50)
    ledger.configure_program(db, currency=currency)
    member = make_customer(db)
    place_lines(db, member, [(CHIANTI, 1, 1)], currency=currency)
    process(db)
    return member


@pytest.mark.parametrize(
    ("currency", "price", "points"),
    [
        ("JPY", 1_500, 1_500),  # ¥1,500: 1 point per yen
        ("KWD", 3_500, 3),  # 3.500 KWD: 1 point per dinar
        ("EUR", 1_500, 15),  # €15.00: 1 point per euro, as before
        ("GBP", 1_500, 15),
        ("USD", 1_500, 15),
    ],
)
def test_a_program_earns_per_unit_of_its_own_currency(
    db: Session, currency: str, price: int, points: int
) -> None:
    # given a member of a program in the currency, with the default "1 point per unit"
    member = _program_member(db, currency)

    # when they place an order in it
    order_id = place_lines(db, member, [(CHIANTI, 1, price)], currency=currency)
    process(db)

    # then it earns 1 point per unit of that currency
    assert ledger.order_points(db, customer_id=member, order_id=order_id).earned == points


def _simulated(client: TestClient, key: dict[str, str], **order: object) -> dict[str, object]:
    lines = [{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1_500}]
    answer = client.post(
        "/v1/loyalty/simulate", json={"order": {"lines": lines, **order}}, headers=key
    )
    assert answer.status_code == 200, answer.text
    return {d["rule_id"]: (d["fired"], d["points"], d["why"]) for d in answer.json()["decisions"]}


def test_the_simulator_earns_per_yen_and_takes_a_currency(client, api_key, db) -> None:
    # given a program in yen
    frozen_clock()
    ledger.configure_program(db, currency="JPY")
    key = auth(api_key("read"))

    # when an order of ¥1,500 is simulated, with its currency or without
    plain = _simulated(client, key)
    said = _simulated(client, key, currency="JPY")

    # then its spend rule gives 1,500 points, and the first order the welcome bonus
    assert plain == said
    assert plain["base-earn"][:2] == (True, 1_500)
    assert plain["welcome"][:2] == (True, 200)

    # when the same order is simulated in another currency
    other = _simulated(client, key, currency="KRW")

    # then it earns nothing at all, saying why
    why = "order in KRW, program in JPY: no points"
    assert other == {"base-earn": (False, 0, why), "welcome": (False, 0, why)}

    # and a currency that is no ISO 4217 code is refused naming the field
    refused = client.post(
        "/v1/loyalty/simulate",
        json={
            "order": {
                "lines": [{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1}],
                "currency": "yen",
            }
        },
        headers=key,
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "order.currency" in refused.text


def test_a_first_order_in_another_currency_earns_no_bonus(db: Session) -> None:
    # given a new member of a program in euros
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)

    # when their first order is in won
    place_lines(db, member, [(CHIANTI, 1, 150_000)], currency="KRW")
    process(db)

    # then it earns nothing at all: no spend points, no first-purchase bonus
    assert ledger.balance(db, customer_id=member) == 0


def test_the_first_order_that_can_earn_gets_the_first_purchase_bonus(db: Session) -> None:
    # given a new member of a program in euros whose first order was in won (it earned nothing)
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    place_lines(db, member, [(CHIANTI, 1, 150_000)], currency="KRW")
    process(db)

    # when their first order in euros comes, and then a second one
    first = place_lines(db, member, [(CHIANTI, 1, 1_500)])
    process(db)
    second = place_lines(db, member, [(CHIANTI, 1, 1_500)])
    process(db)

    # then the first in euros earns its 15 points and the welcome bonus, the second its 15
    assert ledger.order_points(db, customer_id=member, order_id=first).earned == 15
    assert ledger.order_points(db, customer_id=member, order_id=second).earned == 15
    assert ledger.balance(db, customer_id=member) == 15 + 200 + 15


def test_the_rule_form_of_a_program_in_yen_speaks_in_yen(admin: TestClient, db: Session) -> None:
    # given a program in yen
    ledger.configure_program(db, currency="JPY")

    # when the spend rule's form is opened
    page = admin.get("/admin/loyalty/program/rules/base-earn")

    # then its example and its simulated sample are 100 yen, earning 100 points
    assert page.status_code == 200
    assert "1.5 gives 150 points for JP¥100<" in page.text
    row = re.search(
        r'<tr data-rule="base-earn".*?<td>(yes|no)</td><td class="num">([\d,]+)</td>',
        page.text,
        re.S,
    )
    assert row is not None, page.text
    assert (row.group(1), row.group(2)) == ("yes", "100")
