"""The default spend rule is named in the program's currency ("1 point per Japanese yen"),
where it was "1 point per euro" in any currency: what the rules page, the API and each
award's reason say."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from rapport.loyalty import service as ledger
from rapport.loyalty.program import versions
from tests.conftest import auth
from tests.loyalty.factories import frozen_clock, make_customer
from tests.orders.factories import CHIANTI, seed_catalog


@pytest.mark.parametrize(
    ("currency", "name"),
    [
        ("EUR", "1 point per euro"),
        ("JPY", "1 point per Japanese yen"),
        ("KWD", "1 point per Kuwaiti dinar"),
    ],
)
def test_the_default_spend_rule_is_named_in_the_programs_currency(
    client, api_key, db: Session, currency: str, name: str
) -> None:
    # given a program in the currency, with the default rules
    frozen_clock()
    ledger.configure_program(db, currency=currency)

    # when its rules are read, by the earning code and over the API
    _version, rules = versions.rule_set(db)
    with versions.pinned(db):
        _pinned_version, pinned_rules = versions.rule_set(db)
    answer = client.get("/v1/loyalty/program/rules", headers=auth(api_key("read")))

    # then the spend rule is named per unit of that currency
    assert [r.name for r in rules.rules if r.id == "base-earn"] == [name]
    assert [r.name for r in pinned_rules.rules if r.id == "base-earn"] == [name]
    assert answer.status_code == 200, answer.text
    documented = answer.json()["document"]["rules"]
    assert [r["name"] for r in documented if r["id"] == "base-earn"] == [name]


def test_a_foreign_order_says_the_rule_by_the_programs_currency(client, api_key, db) -> None:
    # given a program in yen and a member
    frozen_clock()
    seed_catalog(db, stock=50)
    ledger.configure_program(db, currency="JPY")
    member = make_customer(db)

    # when a cart in won is checked
    answer = client.post(
        "/v1/loyalty/checkout",
        json={
            "customer_id": member,
            "currency": "KRW",
            "lines": [{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 150_000}],
        },
        headers=auth(api_key("write")),
    )

    # then its spend rule says why it earns nothing, named per yen (not per euro)
    assert answer.status_code == 200, answer.text
    earned = [e["description"] for e in answer.json()["effects"] if e["step"] == "points_earned"]
    assert earned == ["1 point per Japanese yen: order in KRW, program in JPY: no points"]
