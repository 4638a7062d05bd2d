"""Category rules match the category and everything under it, in loyalty as in merchandising,
and rules naming a category no product is in are saved with a warning naming the field."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from rapport.catalog import service as catalog
from rapport.catalog.schemas import ProductUpsert
from rapport.loyalty.program.rules import (
    DEFAULT_RULES,
    Fact,
    Member,
    OrderLine,
    evaluate,
    parse_rule_set,
)
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards.checkout import CartLine, Coupon, MemberTerms, Policy, calculate
from rapport.platform import service as platform
from tests.conftest import auth
from tests.orders.factories import seed_catalog

WHEN = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def _order(*lines: OrderLine) -> Fact:
    return Fact(
        kind="order_placed",
        customer_id="cus_1",
        occurred_at=WHEN,
        order_id="O-1",
        lines=lines,
        total_minor=sum(line.total_minor for line in lines),
    )


def _spend_points(rule: dict[str, object], *lines: OrderLine) -> int:
    rules = parse_rule_set(
        {"rules": [{"id": "base", "name": "1 per euro", "kind": "spend", "points_per_unit": "1"}]}
    )
    rules = parse_rule_set({"rules": [{**rules.rules[0].model_dump(mode="json"), **rule}]})
    [decision] = evaluate(rules, _order(*lines), Member())
    return decision.points


@pytest.mark.parametrize(
    ("product_category", "rule_category", "inside"),
    [
        ("Wine", "Wine", True),
        ("Wine/Red", "Wine", True),
        ("Wine/Red/Tuscany", "Wine", True),
        ("Wine/Red", "Wine/", True),
        ("Wines", "Wine", False),
        ("Wine", "Wine/Red", False),
        ("Sparkling Wine", "Wine", False),
        (None, "Wine", False),
        ("Wine", "", False),
    ],
)
def test_a_category_holds_itself_and_everything_under_it(
    product_category: str | None, rule_category: str, inside: bool
) -> None:
    assert catalog.in_category(product_category, rule_category) is inside


def test_a_wine_multiplier_fires_on_red_wine_and_an_exclusion_covers_its_subcategories() -> None:
    # given a 20 EUR red wine and a 10 EUR corkscrew
    red = OrderLine(1, "W-1", 1, 2000, category="Wine/Red")
    tool = OrderLine(2, "K-1", 1, 1000, category="Kitchen/Tools")

    # when a x2 multiplier names the parent category "Wine"
    doubled = _spend_points({"multipliers": [{"category": "Wine", "factor": "2"}]}, red, tool)
    # and when "Wine" is excluded instead
    excluded = _spend_points({"exclude_categories": ["Wine"]}, red, tool)
    # and when a look-alike category "Wines" is named
    lookalike = _spend_points({"multipliers": [{"category": "Wines", "factor": "2"}]}, red, tool)

    # then the red wine counts double, is excluded, and the look-alike matches nothing
    assert doubled == 20 * 2 + 10
    assert excluded == 10
    assert lookalike == 20 + 10


def test_a_wine_coupon_applies_to_red_wine_at_checkout() -> None:
    # given a cart with a red wine and a corkscrew, and a 5 EUR coupon for "Wine"
    lines = [
        CartLine(line_no=1, sku="W-1", quantity=1, unit_price_minor=2000, category="Wine/Red"),
        CartLine(line_no=2, sku="K-1", quantity=1, unit_price_minor=1000, category="Kitchen"),
    ]
    coupon = Coupon(
        code="WINE5", rule="campaign:wine", kind="amount", value=500, categories=("Wine",)
    )

    # when checkout is calculated
    result = calculate(
        lines,
        member=MemberTerms(),
        coupons=[coupon],
        points_to_use=0,
        shipping_minor=0,
        policy=Policy(max_line_discount_percent=70, max_points_payment_percent=50),
        earn=lambda paid: [],
    )

    # then the coupon is applied to the wine line, not refused
    assert result.refused_coupons == {}
    assert [e.amount_minor for e in result.effects if e.step == "coupon"] == [500]


def test_merchandising_and_loyalty_share_one_matcher(db) -> None:
    # given products under Wine/Red, Wines and gift_cards-like names
    seed_catalog(db)
    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku="X-1",
                name="Look-alike",
                category_path="giftXcards/Plastic",
                price_minor=100,
                cost_minor=50,
                currency="EUR",
            )
        ],
    )

    # when categories are looked up the way rules name them
    unknown = catalog.unknown_categories(db, categories=["Wine", "Wine/Red", "Wines", "gift_cards"])
    listed = [p.sku for p in catalog.list_products(db, category="Wine")]

    # then "Wine" is known through "Wine/Red"; "_" is a letter, not a wildcard
    assert unknown == ["Wines", "gift_cards"]
    assert listed == ["W-CHIANTI"]


def test_earning_rules_naming_an_unknown_category_are_saved_with_a_warning(
    client, api_key, db
) -> None:
    # given a catalogue with wine and kitchen tools
    seed_catalog(db)
    admin = auth(api_key("admin"))
    document = {
        "rules": [
            {
                "id": "base",
                "name": "1 per euro",
                "kind": "spend",
                "points_per_unit": "1",
                "multipliers": [{"category": "Wine", "factor": "2"}],
                "exclude_categories": ["Kitchen", "gift_cards"],
            }
        ]
    }

    # when rules naming "Wine", "Kitchen" and the non-existent "gift_cards" are saved
    saved = client.put("/v1/loyalty/program/rules", json={"document": document}, headers=admin)

    # then they are saved, and the answer warns about gift_cards only, naming the field
    assert saved.status_code == 200
    assert saved.json()["version"] is not None
    warnings = saved.json()["warnings"]
    assert [w["field"] for w in warnings] == ["document.rules.0.exclude_categories.1"]
    assert "No product is in category 'gift_cards'" in warnings[0]["detail"]
    shown = client.get("/v1/loyalty/program/rules", headers=admin).json()
    assert shown["warnings"] == warnings


def test_the_default_rules_warn_until_the_gift_card_category_exists(client, api_key, db) -> None:
    # given the demo-like catalogue, which has no gift cards
    seed_catalog(db)
    admin = auth(api_key("admin"))

    # when the built-in rules are shown
    before = client.get("/v1/loyalty/program/rules", headers=admin).json()
    # and once a gift card is in the catalogue
    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku="GC-50",
                name="Gift card 50",
                category_path="Gift cards/Digital",
                price_minor=5000,
                cost_minor=5000,
                currency="EUR",
            )
        ],
    )
    after = client.get("/v1/loyalty/program/rules", headers=admin).json()

    # then the exclusion is warned about first, and no longer once products are under it
    excluded = before["document"]["rules"][0]["exclude_categories"]
    assert excluded == ["Gift cards"]
    assert [w["field"] for w in before["warnings"]] == ["document.rules.0.exclude_categories.0"]
    assert after["warnings"] == []


def test_a_reward_naming_an_unknown_category_is_saved_with_a_warning(client, api_key, db) -> None:
    seed_catalog(db)
    admin = auth(api_key("admin"))
    body = {
        "name": "5 EUR off wine",
        "points_cost": 500,
        "coupon_kind": "amount",
        "coupon_value": 500,
        "categories": ["Wine", "Wines"],
    }

    saved = client.put("/v1/loyalty/rewards/wine-5", json=body, headers=admin)

    assert saved.status_code == 200
    assert saved.json()["categories"] == ["Wine", "Wines"]
    assert [w["field"] for w in saved.json()["warnings"]] == ["categories.1"]
    assert "'Wines'" in saved.json()["warnings"][0]["detail"]


def _sign_in(client, db) -> None:  # type: ignore[no-untyped-def]
    platform.create_admin_user(db, email="ops@example.com", password="correct horse battery")
    page = client.get("/admin/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    client.post(
        "/admin/login",
        data={
            "email": "ops@example.com",
            "password": "correct horse battery",
            "csrf_token": token.group(1),
            "next": "/admin",
        },
        follow_redirects=False,
    )


def test_the_program_admin_page_shows_the_warning(client, db) -> None:
    # given an admin signed in, and the built-in rules on a catalogue without gift cards
    seed_catalog(db)
    _sign_in(client, db)

    # when the program page is opened
    shown = client.get("/admin/loyalty/program")

    # then the warning names the rule and its setting in the form's words, and the category
    assert shown.status_code == 200
    assert 'data-testid="rules-warnings"' in shown.text
    rule = DEFAULT_RULES["rules"][0]
    assert (
        f'(in <a href="/admin/loyalty/program/rules/{rule["id"]}">{rule["name"]}</a>, '
        "categories that earn nothing)"
    ) in shown.text
    assert "rules.0.exclude_categories.0" not in shown.text
    assert "No product is in category &#39;Gift cards&#39;" in shown.text


def test_the_rewards_admin_page_warns_about_unknown_categories(client, db) -> None:
    # given a reward for "Wine" and "Spirits" on a catalogue with wine only, an admin signed in
    seed_catalog(db)
    reward_catalogue.save_reward(
        db,
        reward_id="wine-15",
        name="15% off wine",
        points_cost=1500,
        coupon_kind="percent",
        coupon_value=15,
        categories=["Wine", "Spirits"],
    )
    _sign_in(client, db)

    # when the rewards page is opened
    shown = client.get("/admin/loyalty/rewards")

    # then it warns about Spirits only
    assert shown.status_code == 200
    warnings = shown.text.split('data-testid="reward-warnings"', 1)[1].split("</ul>", 1)[0]
    assert "categories.1" in warnings
    assert "&#39;Spirits&#39;" in warnings
    assert "&#39;Wine&#39;" not in warnings
