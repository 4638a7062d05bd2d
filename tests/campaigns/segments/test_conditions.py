"""Segment definitions: every kind parses, and a bad one is refused naming the condition and
its field (``conditions.2.days``)."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from rapport.campaigns import service as campaigns
from rapport.campaigns.segments import conditions
from rapport.platform.errors import InvalidInput

EXAMPLES: list[dict[str, Any]] = [
    {"kind": "trait", "field": "order_count", "op": "gte", "value": 3},
    {"kind": "trait", "field": "last_order_at", "op": "between", "value": [0, 30]},
    {"kind": "trait", "field": "channels", "op": "contains", "value": "app"},
    {"kind": "trait", "field": "attributes.vip", "op": "in", "value": ["yes", "gold"]},
    {"kind": "consent", "purpose": "marketing_email"},
    {"kind": "tier", "tiers": ["gold"]},
    {"kind": "membership", "plans": ["plus"]},
    {"kind": "rfm", "recency": [4, 5]},
    {"kind": "predicted_value", "min_minor": 100},
    {"kind": "value_tier", "tiers": ["top1"]},
    {"kind": "p_alive", "max": 0.3},
    {"kind": "bought_category", "category": "Wine", "days": 90},
    {"kind": "spent_more_than", "amount_minor": 100, "days": 30},
    {"kind": "event", "type": "product_viewed", "did": False, "days": 7},
    {"kind": "store", "store_id": "st-1", "by": "nearest"},
    {"kind": "near", "store_id": "st-1", "radius_km": 10},
]


def test_every_kind_has_an_example_that_parses_and_round_trips() -> None:
    definition = campaigns.parse_definition({"match": "any", "conditions": EXAMPLES})
    assert {c.kind for c in definition.conditions} == set(campaigns.CONDITION_KINDS)
    assert campaigns.parse_definition(definition.as_json()) == definition


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ({"kind": "bought_category", "category": "Wine", "days": 0}, "conditions.1.days"),
        ({"kind": "horoscope"}, "conditions.1.kind"),
        ({"kind": "trait", "field": "shoe_size", "op": "eq", "value": 1}, "conditions.1.field"),
        (
            {"kind": "trait", "field": "last_order_at", "op": "eq", "value": 1.5},
            "conditions.1.value",
        ),
        ({"kind": "trait", "field": "channels", "op": "eq", "value": "web"}, "conditions.1.op"),
        ({"kind": "near", "latitude": 51.5, "radius_km": 5}, "conditions.1.longitude"),
        (
            {"kind": "near", "latitude": 91, "longitude": 0, "radius_km": 5},
            "conditions.1.latitude",
        ),
        ({"kind": "rfm", "recency": [5, 1]}, "conditions.1.recency"),
        ({"kind": "rfm"}, "conditions.1.recency"),
        ({"kind": "consent", "purpose": "marketing_fax"}, "conditions.1.purpose"),
        ({"kind": "consent", "purpose": "location", "colour": "red"}, "conditions.1.colour"),
        ({"kind": "p_alive", "min": 0.9, "max": 0.1}, "conditions.1.max"),
        # deeper down, the path the document really has, dotted
        ({"kind": "rfm", "recency": [1, 9]}, "conditions.1.recency.1"),
        # a control character, at its own field (not the whole list of conditions)
        ({"kind": "bought_category", "category": "Wi\x00ne", "days": 30}, "conditions.1.category"),
        (
            {"kind": "trait", "field": "home_city", "op": "in", "value": ["Lyon", "Pa\x1bris"]},
            "conditions.1.value.1",
        ),
        ({"kind": "consent", "purpose": "location", "co\x00lour": "red"}, "conditions.1"),
    ],
)
def test_a_bad_condition_is_named(condition: dict[str, Any], field: str) -> None:
    raw = {"conditions": [{"kind": "consent", "purpose": "marketing_email"}, condition]}
    with pytest.raises(InvalidInput) as refused:
        campaigns.parse_definition(raw)
    assert refused.value.field == field
    assert refused.value.detail.startswith(f"{field}: ")


def test_fields_follow_the_document_not_the_union_pydantic_tried() -> None:
    value = ["Lyon", {"x": 1}]
    raw = {"conditions": [{"kind": "trait", "field": "home_city", "op": "in", "value": value}]}
    with pytest.raises(InvalidInput) as refused:
        campaigns.parse_definition(raw)
    assert refused.value.errors is not None
    places = {(error["field"], error["pointer"]) for error in refused.value.errors}
    # the value as a whole (not text, a number...) and its second item; never ``list[...]``
    assert places == {
        ("conditions.0.value", "/conditions/0/value"),
        ("conditions.0.value.1", "/conditions/0/value/1"),
    }


def test_the_definition_itself_is_checked() -> None:
    with pytest.raises(InvalidInput) as refused:
        campaigns.parse_definition({"match": "some", "conditions": []})
    assert refused.value.field == "match"
    with pytest.raises(InvalidInput) as refused:
        campaigns.parse_definition(["not", "an", "object"])
    assert refused.value.field == "definition"


def _union_kinds() -> set[str]:
    """Every condition kind the definition's union accepts, read from the union itself."""
    union = typing.get_args(conditions.Condition)[0]
    return {
        kind
        for member in typing.get_args(union)
        for kind in typing.get_args(member.model_fields["kind"].annotation)
    }


def test_every_condition_kind_is_classified_behavioural_or_not() -> None:
    # A new kind added to the union and not to the table fails here: whether it profiles the
    # customer (and so needs their personalization consent) is decided, never defaulted.
    assert set(conditions.BEHAVIOURAL) == _union_kinds() == set(conditions.CONDITION_KINDS)
    # and every example above has an answer
    for example in EXAMPLES:
        [parsed] = campaigns.parse_definition({"conditions": [example]}).conditions
        assert isinstance(conditions.is_behavioural(parsed), bool)


@pytest.mark.parametrize(
    ("condition", "behavioural"),
    [
        ({"kind": "trait", "field": "spend_minor", "op": "gte", "value": 1}, True),
        ({"kind": "trait", "field": "last_seen_at", "op": "lte", "value": 7}, True),
        ({"kind": "trait", "field": "channels", "op": "contains", "value": "app"}, True),
        ({"kind": "trait", "field": "home_city", "op": "eq", "value": "Lyon"}, False),
        ({"kind": "trait", "field": "locale", "op": "eq", "value": "fr"}, False),
        ({"kind": "trait", "field": "points_balance", "op": "gte", "value": 1}, False),
        ({"kind": "consent", "purpose": "personalization", "granted": False}, False),
        ({"kind": "tier", "tiers": ["gold"]}, False),
        ({"kind": "rfm", "recency": [4, 5]}, True),
        ({"kind": "bought_category", "category": "Shoes", "days": 90}, True),
        ({"kind": "spent_more_than", "amount_minor": 100, "days": 30}, True),
        ({"kind": "event", "type": "product_viewed", "did": False, "days": 7}, True),
        ({"kind": "value_tier", "tiers": ["top1"]}, True),
        ({"kind": "store", "store_id": "st-1"}, True),
        ({"kind": "store", "store_id": "st-1", "by": "nearest"}, False),
    ],
)
def test_behavioural_conditions_are_those_read_from_history(
    condition: dict[str, Any], behavioural: bool
) -> None:
    [parsed] = campaigns.parse_definition({"conditions": [condition]}).conditions
    assert conditions.is_behavioural(parsed) is behavioural
