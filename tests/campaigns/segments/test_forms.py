"""The builder's condition forms: every kind's inputs come from its model, a definition
converts to form values and back unchanged, and a condition the form cannot show exactly is
kept as JSON (the form never changes a setting it does not show)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rapport.campaigns.segments.admin import KIND_TEMPLATES
from rapport.campaigns.segments.conditions import CONDITION_KINDS, parse_definition
from rapport.campaigns.segments.forms import (
    condition_form,
    conditions_from_form,
    field_names,
    summary,
    widgets_for,
)
from rapport.platform.errors import InvalidInput

STORES = [("st-1", "Lyon Part-Dieu (st-1)"), ("st-2", "Paris Bercy (st-2)")]
TIERS = [("base", "Base"), ("silver", "Silver"), ("gold", "Gold")]
CHOICES = {"store_id": STORES, "tier.tiers": TIERS}

EXAMPLES: list[dict[str, Any]] = [
    {"kind": "trait", "field": "order_count", "op": "gte", "value": 3},
    {"kind": "trait", "field": "spend_minor", "op": "between", "value": [1000, 25000]},
    {"kind": "trait", "field": "last_order_at", "op": "lte", "value": 30},
    {"kind": "trait", "field": "channels", "op": "contains", "value": "app"},
    {"kind": "trait", "field": "home_city", "op": "eq", "value": "Lyon"},
    {"kind": "trait", "field": "attributes.vip", "op": "in", "value": ["yes", "gold"]},
    {"kind": "consent", "purpose": "marketing_email", "granted": True},
    {"kind": "consent", "purpose": "location", "granted": False},
    {"kind": "tier", "tiers": ["silver", "gold"]},
    {"kind": "membership", "member": True, "plans": ["plus", "family"]},
    {"kind": "membership", "member": False},
    {"kind": "rfm", "recency": [4, 5], "monetary": [1, 2]},
    {"kind": "predicted_value", "min_minor": 100, "max_minor": 90000},
    {"kind": "value_tier", "tiers": ["top1", "top5"]},
    {"kind": "p_alive", "max": 0.3},
    {"kind": "bought_category", "category": "Grocery/Coffee", "days": 365},
    {"kind": "spent_more_than", "amount_minor": 100, "days": 30, "category": "Wine"},
    {"kind": "event", "type": "product_viewed", "did": False, "min_count": 3, "days": 7},
    {"kind": "store", "store_id": "st-2", "by": "nearest"},
    {"kind": "near", "store_id": "st-1", "radius_km": 10, "use": ["home"]},
    {"kind": "near", "latitude": 48.8566, "longitude": 2.3522, "radius_km": 2.5},
]


def _stored(condition: dict[str, Any]) -> dict[str, Any]:
    return parse_definition({"conditions": [condition]}).as_json()["conditions"][0]  # type: ignore[no-any-return]


def _through_the_form(conditions: list[dict[str, Any]]) -> list[Any]:
    """What a browser submits for these conditions, read back as the builder reads it."""
    submitted: dict[str, list[str]] = {}
    for index, condition in enumerate(conditions):
        form = condition_form(index, condition, choices=CHOICES)
        assert form.as_json is None, f"{condition} fell back to JSON"
        submitted[f"c{index}.kind"] = [form.kind]
        submitted |= field_names(index, form.widgets, form.values)
    return conditions_from_form(submitted, choices=CHOICES)


def test_every_kind_has_a_form_example() -> None:
    assert {c["kind"] for c in EXAMPLES} == set(CONDITION_KINDS)


@pytest.mark.parametrize("condition", EXAMPLES, ids=lambda c: f"{c['kind']}")
def test_a_condition_round_trips_through_its_form(condition: dict[str, Any]) -> None:
    stored = _stored(condition)
    (back,) = _through_the_form([stored])
    assert _stored(back) == stored


def test_a_whole_definition_round_trips_in_order() -> None:
    stored = parse_definition({"match": "any", "conditions": EXAMPLES[1:]}).as_json()
    back = _through_the_form(stored["conditions"])
    assert parse_definition({"match": "any", "conditions": back}).as_json() == stored


@pytest.mark.parametrize("kind", CONDITION_KINDS)
def test_each_new_condition_starts_as_a_form_with_its_defaults(kind: str) -> None:
    example = KIND_TEMPLATES[kind]
    form = condition_form(0, example, choices=CHOICES)
    assert form.as_json is None
    (back,) = _through_the_form([example])
    assert _stored(back) == _stored(example)


def test_a_field_left_out_shows_the_models_default() -> None:
    near = condition_form(0, {"kind": "near", "store_id": "st-1", "radius_km": 5})
    assert near.values["use"] == ["last_location", "home", "home_store"]
    assert condition_form(0, {"kind": "consent", "purpose": "location"}).values["granted"] is True


def test_inputs_follow_the_models() -> None:
    consent = {w.name: w for w in widgets_for("consent")}
    assert consent["purpose"].control == "select"
    assert ("marketing_email", "Marketing email") in consent["purpose"].options
    assert consent["granted"].control == "checkbox"
    event = {w.name: w for w in widgets_for("event")}
    assert (event["days"].control, event["days"].minimum, event["days"].maximum) == (
        "number",
        1,
        3650,
    )
    assert event["type"].control == "text"
    near = {w.name: w for w in widgets_for("near", choices=CHOICES)}
    assert near["use"].control == "checkboxes"
    assert near["latitude"].step == "any"
    assert near["store_id"].control == "text"  # optional: a datalist of stores, may be empty
    rfm = {w.name: w for w in widgets_for("rfm")}
    assert (rfm["recency"].control, rfm["recency"].minimum, rfm["recency"].maximum) == (
        "range",
        1,
        5,
    )
    assert [w.control for w in widgets_for("membership")] == ["checkbox", "list"]
    assert widgets_for("store", choices=CHOICES)[0].options == tuple(STORES)
    assert widgets_for("tier", choices=CHOICES)[0].control == "checkboxes"
    assert widgets_for("tier")[0].control == "list"  # no tiers known: names, comma-separated


def test_a_store_or_tier_the_lists_lack_is_still_offered() -> None:
    form = condition_form(0, {"kind": "tier", "tiers": ["platinum"]}, choices=CHOICES)
    assert form.as_json is None
    assert ("platinum", "platinum") in form.widgets[0].options
    store = condition_form(0, {"kind": "store", "store_id": "closed-9"}, choices=CHOICES)
    assert ("closed-9", "closed-9") in store.widgets[0].options


def test_a_condition_the_form_cannot_show_exactly_stays_json() -> None:
    # a text trait compared with a number: the form would send it back as text
    odd = {"kind": "trait", "field": "locale", "op": "eq", "value": 3}
    form = condition_form(0, odd, choices=CHOICES)
    assert form.as_json is not None
    assert json.loads(form.as_json) == odd
    # a list value holding a comma travels as the list field's JSON, unchanged
    comma = {"kind": "trait", "field": "home_city", "op": "in", "value": ["Paris, FR", "Lyon"]}
    shown = condition_form(0, comma, choices=CHOICES)
    assert shown.as_json is None
    assert shown.values["value"] == '["Paris, FR", "Lyon"]'
    assert conditions_from_form(
        field_names(0, shown.widgets, shown.values) | {"c0.kind": ["trait"]}
    ) == [comma]
    # an unknown kind is shown as it is
    assert condition_form(0, {"kind": "shoe_size"}).as_json == json.dumps({"kind": "shoe_size"})
    # and JSON rows come back exactly
    back = conditions_from_form({"c0.json": [json.dumps(odd)], "c1.kind": ["membership"]})
    assert back == [odd, {"kind": "membership", "member": False}]


def test_json_that_does_not_parse_is_named_or_shown_again_as_typed() -> None:
    fields = {"c0.kind": ["consent"], "c0.purpose": ["location"], "c1.json": ['{"kind":']}
    with pytest.raises(InvalidInput) as raised:
        conditions_from_form(fields)
    assert raised.value.field == "conditions.1"
    kept = conditions_from_form(fields, strict=False)
    assert kept == [{"kind": "consent", "purpose": "location", "granted": False}, '{"kind":']
    assert condition_form(1, kept[1]).as_json == '{"kind":'


def test_empty_inputs_leave_fields_out_so_the_error_names_the_field() -> None:
    back = conditions_from_form({"c0.kind": ["bought_category"], "c0.category": ["Wine"]})
    with pytest.raises(InvalidInput) as raised:
        parse_definition({"conditions": back})
    assert raised.value.field == "conditions.0.days"


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        ({"kind": "consent", "purpose": "marketing_email"}, "Granted marketing email consent"),
        (
            {"kind": "bought_category", "category": "Grocery/Coffee", "days": 365},
            "Bought from Grocery/Coffee in the last 365 days",
        ),
        (
            {"kind": "consent", "purpose": "location", "granted": False},
            "Has not granted location consent",
        ),
        ({"kind": "trait", "field": "home_city", "op": "eq", "value": "Lyon"}, "Home city is Lyon"),
        (
            {"kind": "event", "type": "product_viewed", "did": False, "days": 7},
            "No product viewed in the last 7 days",
        ),
        (
            {"kind": "event", "type": "app_opened", "min_count": 3, "days": 30},
            "App opened at least 3 times in the last 30 days",
        ),
        ({"kind": "value_tier", "tiers": ["top1", "top5"]}, "Value tier Top 1% or Top 5%"),
        (
            {"kind": "near", "store_id": "st-1", "radius_km": 10, "use": ["home"]},
            "Within 10 km of store st-1 (by home address)",
        ),
    ],
)
def test_each_condition_has_a_plain_language_summary(condition: dict[str, Any], text: str) -> None:
    assert summary(condition) == text


def test_summaries_name_tiers_and_stores_as_listed() -> None:
    tier = {"kind": "tier", "tiers": ["silver", "gold"]}
    assert summary(tier, choices=CHOICES) == "In loyalty tier Silver or Gold"
    store = {"kind": "store", "store_id": "st-1", "by": "preferred"}
    assert summary(store, choices=CHOICES) == "Most visited store is Lyon Part-Dieu (st-1)"


def test_every_kind_has_a_summary() -> None:
    for condition in EXAMPLES:
        assert not summary(condition).startswith("Unknown")


def test_ticked_tiers_come_back_in_the_order_the_segment_holds_them() -> None:
    # a browser sends ticks in the order the options are shown: gold before silver stays so
    held = {"kind": "tier", "tiers": ["gold", "silver"]}
    form = condition_form(0, held, choices=CHOICES)
    assert form.as_json is None
    assert [value for value, _ in form.widgets[0].options] == ["base", "gold", "silver"]
    assert _through_the_form([held]) == [held]
    assert _through_the_form([{"kind": "tier", "tiers": ["silver", "gold"]}]) == [
        {"kind": "tier", "tiers": ["silver", "gold"]}
    ]


def test_a_money_trait_is_shown_and_typed_in_the_currency_with_a_label() -> None:
    spend = {"kind": "trait", "field": "spend_minor", "op": "between", "value": [10001, 50099]}
    form = condition_form(0, spend, choices={**CHOICES, "currency": [("EUR", "EUR")]})
    assert form.as_json is None
    assert form.values["value"] == "100.01, 500.99"
    assert "EUR" in next(w.label for w in form.widgets if w.name == "value")
    assert ("spend_minor", "Total spend") in next(
        w.suggestions for w in form.widgets if w.name == "field"
    )
    assert form.summary == "Total spend is between €100.01 and €500.99"
    typed = {"c0.kind": ["trait"], "c0.field": ["spend_minor"], "c0.op": ["gte"]}
    assert conditions_from_form({**typed, "c0.value": ["100"]}) == [
        {"kind": "trait", "field": "spend_minor", "op": "gte", "value": 10000}
    ]
    # other numeric traits stay plain numbers
    orders = {**typed, "c0.field": ["order_count"], "c0.value": ["100"]}
    assert conditions_from_form(orders)[0]["value"] == 100


@pytest.mark.parametrize(
    ("currency", "step", "shown"),
    [
        ("EUR", "0.01", "12.34"),
        ("JPY", "1", "1234"),
        ("IQD", "0.001", "1.234"),
        ("RSD", "0.01", "12.34"),
    ],
)
def test_a_money_field_has_the_currencys_iso_4217_decimals(
    currency: str, step: str, shown: str
) -> None:
    # IQD and RSD: ISO 4217 gives them 3 and 2 decimals where CLDR shows none
    choices = {**CHOICES, "currency": [(currency, currency)]}
    condition = {"kind": "predicted_value", "min_minor": 1234}
    form = condition_form(0, condition, choices=choices)
    widgets = {w.name: w for w in form.widgets}
    assert (widgets["min_minor"].currency, widgets["min_minor"].step) == (currency, step)
    assert form.values["min_minor"] == shown
    submitted = {"c0.kind": [form.kind], **field_names(0, form.widgets, form.values)}
    assert conditions_from_form(submitted, choices=choices) == [_stored(condition)]
