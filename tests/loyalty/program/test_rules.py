"""Earning rules: validation with clear errors, and what each kind of rule awards and why."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapport.loyalty.program.rules import (
    DEFAULT_RULES,
    Fact,
    Member,
    OrderLine,
    evaluate,
    parse_rule_set,
    period_start,
)
from rapport.platform.errors import InvalidInput

WHEN = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def rules(*items: dict[str, object]):  # type: ignore[no-untyped-def]
    return parse_rule_set({"rules": list(items)})


def spend(**overrides: object) -> dict[str, object]:
    rule: dict[str, object] = {
        "id": "base",
        "name": "1 per euro",
        "kind": "spend",
        "points_per_unit": "1",
    }
    rule.update(overrides)
    return rule


def order(*lines: OrderLine, channel: str = "web", discount_minor: int = 0) -> Fact:
    total = sum(line.total_minor for line in lines) - discount_minor
    return Fact(
        kind="order_placed",
        customer_id="cus_1",
        occurred_at=WHEN,
        channel=channel,
        order_id="O-1",
        lines=lines,
        discount_minor=discount_minor,
        total_minor=total,
    )


def line(no: int, price: int, quantity: int = 1, **extra: str) -> OrderLine:
    return OrderLine(
        line_no=no, sku=f"SKU-{no}", quantity=quantity, unit_price_minor=price, **extra
    )


def test_default_rules_are_valid() -> None:
    parsed = parse_rule_set(DEFAULT_RULES)
    assert {rule.kind for rule in parsed.rules} == {
        "spend",
        "first_purchase",
        "preference_shared",
        "verified_review",
        "birthday",
        "apology",
    }


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"rules": [spend(points_per_unit="-1")]}, "rules.0.points_per_unit"),
        ({"rules": [spend(), spend()]}, "rules"),
        (
            {"rules": [spend(multipliers=[{"category": "a", "tier": "gold", "factor": 2}])]},
            "rules.0.multipliers.0.tier",
        ),
        ({"rules": [spend(kind="bogus")]}, "rules.0"),
        (
            {"rules": [spend(starts_at="2026-06-02T00:00:00Z", ends_at="2026-06-01T00:00:00Z")]},
            "rules.0.ends_at",
        ),
        ({"rules": [spend(cap={"points": 10, "period": "fortnight"})]}, "rules.0.cap.period"),
        ({"rules": [spend(surprise=True)]}, "rules.0.surprise"),
    ],
)
def test_invalid_rules_are_refused_naming_the_field(document: object, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_rule_set(document)
    assert refused.value.field == field


def test_spend_earns_per_currency_unit_with_multipliers_and_exclusions() -> None:
    # given 1 point per euro, double on shoes, 1.5 on the app, nothing on gift cards
    rule_set = rules(
        spend(
            multipliers=[{"category": "shoes", "factor": 2}, {"channel": "app", "factor": "1.5"}],
            exclude_categories=["gift_cards"],
        )
    )
    fact = order(
        line(1, 4550, category="shoes"),  # 45.50 x 2 x 1.5 = 136.5
        line(2, 1000, quantity=2, category="socks"),  # 20 x 1.5 = 30
        line(3, 5000, category="gift_cards"),  # excluded
        channel="app",
    )

    # when the order is evaluated
    [decision] = evaluate(rule_set, fact, Member())

    # then the points are floored once for the order, and each line's share is known
    assert decision.fired
    assert decision.points == 166
    assert dict(decision.line_points) == {1: 136, 2: 30}
    assert "1 excluded line" in decision.why
    assert "2 for category shoes" in decision.why
    assert decision.once_key == "order:O-1"


def test_discount_lowers_the_eligible_spend_in_proportion() -> None:
    [decision] = evaluate(
        rules(spend()), order(line(1, 6000), line(2, 4000), discount_minor=5000), Member()
    )
    assert decision.points == 50
    assert dict(decision.line_points) == {1: 30, 2: 20}


def test_tier_multiplier_applies_to_that_tier_only() -> None:
    rule_set = rules(spend(multipliers=[{"tier": "gold", "factor": 2}]))
    fact = order(line(1, 10000))
    assert evaluate(rule_set, fact, Member(tier="gold"))[0].points == 200
    assert evaluate(rule_set, fact, Member(tier="silver"))[0].points == 100


def test_first_purchase_bonus_only_on_the_first_order() -> None:
    rule_set = rules({"id": "welcome", "name": "Welcome", "kind": "first_purchase", "points": 200})
    first = evaluate(rule_set, order(line(1, 1000)), Member(earlier_orders=0))[0]
    later = evaluate(rule_set, order(line(1, 1000)), Member(earlier_orders=3))[0]
    assert (first.fired, first.points) == (True, 200)
    assert (later.fired, later.why) == (False, "not the customer's first order")


def test_preference_bonus_once_per_field_and_capped_per_period() -> None:
    rule_set = rules(
        {
            "id": "prefs",
            "name": "Preferences",
            "kind": "preference_shared",
            "points_per_field": 25,
            "cap": {"points": 60, "period": "year"},
        }
    )
    shared = Fact(
        kind="preference_shared", customer_id="cus_1", occurred_at=WHEN, preference_field="size"
    )
    fresh = evaluate(rule_set, shared, Member())[0]
    again = evaluate(rule_set, shared, Member(awarded=frozenset({("prefs", "field:size")})))[0]
    partly = evaluate(rule_set, shared, Member(cap_used={"prefs": 50}))[0]
    full = evaluate(rule_set, shared, Member(cap_used={"prefs": 60}))[0]
    assert (fresh.fired, fresh.points, fresh.once_key) == (True, 25, "field:size")
    assert (again.fired, again.why) == (False, "already awarded for field:size")
    assert (partly.fired, partly.points, partly.capped) == (True, 10, True)
    assert (full.fired, full.capped) == (False, True)


def test_date_windows_and_switched_off_rules_do_not_fire() -> None:
    rule_set = rules(
        spend(id="summer", starts_at="2026-07-01T00:00:00Z"),
        spend(id="spring", ends_at="2026-06-01T00:00:00Z"),
        spend(id="off", active=False),
        spend(id="now", starts_at="2026-06-01T00:00:00Z", ends_at="2026-07-01T00:00:00Z"),
    )
    fired = {d.rule_id: d.fired for d in evaluate(rule_set, order(line(1, 1000)), Member())}
    assert fired == {"summer": False, "spring": False, "off": False, "now": True}


def test_apology_is_once_per_order_whatever_broke() -> None:
    rule_set = rules({"id": "sorry", "name": "Sorry", "kind": "apology", "points": 150})
    late = Fact(kind="delivery_late", customer_id="cus_1", occurred_at=WHEN, order_id="O-9")
    unfulfilled = Fact(
        kind="order_unfulfilled", customer_id="cus_1", occurred_at=WHEN, order_id="O-9"
    )
    first = evaluate(rule_set, late, Member())[0]
    second = evaluate(rule_set, unfulfilled, Member(awarded=frozenset({("sorry", "order:O-9")})))
    assert (first.points, first.once_key, first.why) == (
        150,
        "order:O-9",
        "apology for the late delivery",
    )
    assert not second[0].fired


def test_rules_listen_only_to_their_facts() -> None:
    rule_set = parse_rule_set(DEFAULT_RULES)
    birthday = Fact(kind="birthday", customer_id="cus_1", occurred_at=WHEN)
    decisions = evaluate(rule_set, birthday, Member())
    assert [(d.rule_id, d.points, d.once_key) for d in decisions] == [
        ("birthday", 100, "birthday:2026")
    ]


def test_period_starts() -> None:
    moment = datetime(2026, 6, 10, 15, 30, tzinfo=UTC)  # a Wednesday
    assert period_start(moment, "day") == datetime(2026, 6, 10, tzinfo=UTC)
    assert period_start(moment, "week") == datetime(2026, 6, 8, tzinfo=UTC)
    assert period_start(moment, "month") == datetime(2026, 6, 1, tzinfo=UTC)
    assert period_start(moment, "year") == datetime(2026, 1, 1, tzinfo=UTC)


prices = st.integers(min_value=0, max_value=500_000)
lines_strategy = st.lists(
    st.tuples(prices, st.integers(min_value=1, max_value=5), st.sampled_from(["a", "b", "c"])),
    min_size=1,
    max_size=8,
)


@given(
    lines_strategy,
    st.decimals(min_value=Decimal("0.1"), max_value=Decimal("10"), places=2),
    st.integers(min_value=0, max_value=100),
    st.integers(min_value=1, max_value=2000),
)
def test_line_shares_always_add_up_and_never_exceed_the_exact_amount(
    items: list[tuple[int, int, str]], per_unit: Decimal, discount_share: int, cap: int
) -> None:
    rule_set = rules(
        spend(
            points_per_unit=str(per_unit),
            multipliers=[{"category": "a", "factor": "2"}],
            cap={"points": cap, "period": "month"},
        )
    )
    order_lines = [
        line(no, price, quantity, category=category)
        for no, (price, quantity, category) in enumerate(items, start=1)
    ]
    gross = sum(item.total_minor for item in order_lines)
    fact = order(*order_lines, discount_minor=gross * discount_share // 100)
    [decision] = evaluate(rule_set, fact, Member())
    assert decision.points >= 0
    assert decision.points <= cap
    assert sum(decision.line_points.values()) == decision.points or not decision.fired
    assert all(points >= 0 for points in decision.line_points.values())
    ceiling = Decimal(gross) / 100 * per_unit * 2
    assert decision.points <= ceiling
