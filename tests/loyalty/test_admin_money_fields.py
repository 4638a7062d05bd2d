"""Every loyalty admin money field reads what is typed the way the pages show amounts (en_GB:
"," between thousands, "." before the decimals), through the one reading
(``platform.admin.typed_money``): "1,000" is a thousand, never 1.00; text that could mean two
amounts ("4,99") is refused beside its field saying how to type it, and nothing is saved. A
currency without decimals (JPY) takes none."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.models import Coupon
from rapport.loyalty.program import versions as program_versions
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.platform import formatting
from tests.platform.admin_forms import (
    page_form,
    post_form,
    typed,
)

HOW = "type it like 1,234.50, with a comma between thousands and a point before the decimals"


def _error(html: str, field: str) -> str:
    found = re.search(rf'data-field-error="{field}">([^<]*)<', html)
    assert found is not None, f"no message beside {field}"
    return found.group(1)


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1,000", "EUR", 100_000),
        ("1,000.50", "EUR", 100_050),
        ("4.99", "EUR", 499),
        ("1000.5", "EUR", 100_050),
        ("€1,000,000.00", "EUR", 100_000_000),
        (" 12 EUR ", "EUR", 1200),
        ("1,000", "JPY", 1000),
        ("500", "JPY", 500),
        ("1.234", "KWD", 1234),
    ],
)
def test_money_is_read_as_the_pages_show_it(text: str, currency: str, minor: int) -> None:
    assert formatting.parse_money(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "said"),
    [
        ("4,99", "EUR", f"an amount in EUR; {HOW}"),
        ("1,0000", "EUR", f"an amount in EUR; {HOW}"),
        ("1,000,50", "EUR", f"an amount in EUR; {HOW}"),
        ("1.000,50", "EUR", f"an amount in EUR; {HOW}"),
        ("lots", "EUR", f"an amount in EUR; {HOW}"),
        ("", "EUR", f"an amount in EUR; {HOW}"),
        ("4.990", "EUR", "an amount in EUR, which takes at most 2 decimals; type it like 1,234.50"),
        ("1.000", "JPY", "an amount in JPY, which takes no decimals; type it like 1,234"),
        (
            "4,5",
            "JPY",
            "an amount in JPY; type it like 1,234, with a comma between thousands and no decimals",
        ),
    ],
)
def test_money_that_reads_two_ways_is_refused_saying_how_to_type_it(
    text: str, currency: str, said: str
) -> None:
    with pytest.raises(formatting.MoneyUnreadable) as refused:
        formatting.parse_money(text, currency)
    assert str(refused.value) == said


def test_other_locales_read_their_own_marks() -> None:
    assert formatting.parse_money("1.234,50", "EUR", "de_DE") == 123_450
    assert formatting.parse_money("1\u202f234,50 €", "EUR", "fr_FR") == 123_450
    with pytest.raises(formatting.MoneyUnreadable):
        formatting.parse_money("1234.50", "EUR", "de_DE")
    assert formatting.money_input(123_450, "EUR", "de_DE") == "1.234,50"
    assert formatting.money_input(123_450, "EUR") == "1,234.50"
    assert formatting.money_input(1234, "JPY") == "1,234"


def _add_plan(admin: TestClient, fee: str, currency: str = "EUR") -> object:
    fields = page_form(admin.get("/admin/loyalty/plans").text, action="/admin/loyalty/plans")
    for name, value in (("plan_id", "big"), ("name", "Big"), ("fee", fee)):
        fields = typed(fields, name, value)
    fields = typed(fields, "currency", currency)
    return post_form(admin, "/admin/loyalty/plans", fields)


@pytest.mark.parametrize(
    ("fee", "currency", "minor", "shown"),
    [
        ("1,000", "EUR", 100_000, "1,000.00"),
        ("1,000.50", "EUR", 100_050, "1,000.50"),
        ("1000", "EUR", 100_000, "1,000.00"),
        ("1,000", "JPY", 1000, "1,000"),
    ],
)
def test_a_plan_fee_with_thousands_is_saved_as_typed(
    admin: TestClient, db: Session, fee: str, currency: str, minor: int, shown: str
) -> None:
    # when a plan is added with a fee of "1,000"
    response = _add_plan(admin, fee, currency)
    # then it is saved as a thousand, not as 1.00
    assert response.status_code == 303
    plan = membership_plans.get_plan(db, plan_id="big")
    assert plan is not None
    assert (plan.fee_minor, plan.currency) == (minor, currency)
    # and its edit page shows the fee the way the pages show amounts
    assert f'name="fee" type="text" value="{shown}"' in admin.get("/admin/loyalty/plans/big").text


@pytest.mark.parametrize(
    ("fee", "currency", "said"),
    [
        ("4,99", "EUR", f"Fee: an amount in EUR; {HOW}"),
        ("10.5", "JPY", "Fee: an amount in JPY, which takes no decimals; type it like 1,234"),
    ],
)
def test_a_plan_fee_that_reads_two_ways_is_refused_beside_it(
    admin: TestClient, db: Session, fee: str, currency: str, said: str
) -> None:
    response = _add_plan(admin, fee, currency)
    assert response.status_code == 422
    assert _error(response.text, "fee") == said
    assert f'name="fee" type="text" value="{fee}"' in response.text
    assert membership_plans.list_plans(db) == []


def test_reward_amounts_with_thousands_are_saved_as_typed(admin: TestClient, db: Session) -> None:
    fields = page_form(admin.get("/admin/loyalty/rewards").text, action="/admin/loyalty/rewards")
    for name, value in (
        ("reward_id", "big-off"),
        ("name", "Big off"),
        ("points_cost", "5000"),
        ("coupon_value", "1,000"),
        ("min_subtotal", "2,500.50"),
    ):
        fields = typed(fields, name, value)
    assert post_form(admin, "/admin/loyalty/rewards", fields).status_code == 303
    reward = reward_catalogue.get_reward(db, reward_id="big-off")
    assert reward is not None
    assert (reward.coupon_value, reward.min_subtotal_minor) == (100_000, 250_050)


def test_a_reward_amount_that_reads_two_ways_is_refused(admin: TestClient, db: Session) -> None:
    fields = page_form(admin.get("/admin/loyalty/rewards").text, action="/admin/loyalty/rewards")
    for name, value in (
        ("reward_id", "big-off"),
        ("name", "Big off"),
        ("points_cost", "5000"),
        ("coupon_value", "4,99"),
        ("min_subtotal", "10,5"),
    ):
        fields = typed(fields, name, value)
    response = post_form(admin, "/admin/loyalty/rewards", fields)
    assert response.status_code == 422
    assert _error(response.text, "coupon_value") == f"Coupon value: an amount in EUR; {HOW}"
    assert _error(response.text, "min_subtotal") == f"Minimum basket: an amount in EUR; {HOW}"
    assert reward_catalogue.get_reward(db, reward_id="big-off") is None


def test_a_coupon_campaign_reads_thousands_and_refuses_what_reads_two_ways(
    admin: TestClient, db: Session
) -> None:
    page = admin.get("/admin/loyalty/coupons").text
    fields = page_form(page, action="/admin/loyalty/coupons")
    fields = typed(typed(fields, "rule", "radio"), "value", "4,99")
    response = post_form(admin, "/admin/loyalty/coupons", fields)
    assert response.status_code == 422
    assert _error(response.text, "value") == f"Value: an amount in EUR; {HOW}"
    assert db.query(Coupon).count() == 0

    fields = typed(typed(fields, "value", "1,000"), "min_subtotal", "2,000.00")
    assert post_form(admin, "/admin/loyalty/coupons", fields).status_code == 303
    coupon = db.query(Coupon).one()
    assert (coupon.value, coupon.min_subtotal_minor) == (100_000, 200_000)


def test_the_value_of_100_points_reads_thousands(admin: TestClient, db: Session) -> None:
    fields = page_form(admin.get("/admin/loyalty").text, action="/admin/loyalty/program")
    fields = typed(fields, "point_value", "1,000")
    assert post_form(admin, "/admin/loyalty/program", fields).status_code == 303
    db.expire_all()
    assert loyalty.get_program(db).point_value_minor_per_100 == 100_000
    # and the form shows it as the pages do
    assert 'name="point_value" type="text" value="1,000.00"' in admin.get("/admin/loyalty").text


def test_a_rule_minimum_basket_reads_as_every_money_field(admin: TestClient, db: Session) -> None:
    action = "/admin/loyalty/program/rules/new/first_purchase"
    fields = page_form(admin.get(action).text, action=action, testid="rule-form")
    fields = typed(typed(typed(fields, "id", "big-first"), "points", "100"), "min_total", "1,000")
    assert post_form(admin, action, fields).status_code == 303
    rule = next(
        rule
        for rule in program_versions.current(db, "rules").document["rules"]
        if rule["id"] == "big-first"
    )
    assert rule["min_total_minor"] == 100_000
