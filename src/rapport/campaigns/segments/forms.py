"""The segment builder's condition forms: each condition kind's inputs are generated from its
pydantic model's JSON schema (a select for a choice, number inputs with the model's bounds, a
checkbox for yes/no, ticks for a list of choices, a list of names as admin list fields show
it (``platform.admin.list_text``: comma-separated, or JSON when a name holds a comma)),
so one piece of code serves all kinds; plus the conversion of a definition to form values and
back, and a one-line plain-language summary of each condition.

A condition the form cannot show exactly (its form values would not convert back to the same
condition) is kept as JSON, so the builder never changes a setting it does not show."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ValidationError

from rapport.campaigns.segments.conditions import (
    DATE_TRAITS,
    NUMERIC_TRAITS,
    TEXT_TRAITS,
    BoughtCategoryCondition,
    ConsentCondition,
    EventCondition,
    MembershipCondition,
    NearCondition,
    PAliveCondition,
    PredictedValueCondition,
    RfmCondition,
    SpentMoreThanCondition,
    StoreCondition,
    TierCondition,
    TraitCondition,
    ValueTierCondition,
)
from rapport.platform import formatting
from rapport.platform.admin import list_text, typed_list
from rapport.platform.errors import InvalidInput

MAX_CONDITIONS_IN_FORM = 20
MODELS: dict[str, type[BaseModel]] = {
    "trait": TraitCondition,
    "consent": ConsentCondition,
    "tier": TierCondition,
    "membership": MembershipCondition,
    "rfm": RfmCondition,
    "predicted_value": PredictedValueCondition,
    "value_tier": ValueTierCondition,
    "p_alive": PAliveCondition,
    "bought_category": BoughtCategoryCondition,
    "spent_more_than": SpentMoreThanCondition,
    "event": EventCondition,
    "store": StoreCondition,
    "near": NearCondition,
}
KIND_LABELS = {
    "trait": "Profile trait",
    "consent": "Consent",
    "tier": "Loyalty tier",
    "membership": "Paying membership",
    "rfm": "RFM scores",
    "predicted_value": "Predicted value",
    "value_tier": "Value tier",
    "p_alive": "Still active (probability)",
    "bought_category": "Bought from a category",
    "spent_more_than": "Spent more than",
    "event": "Did something",
    "store": "Store",
    "near": "Near a place",
}
# Field labels; a (kind, field) entry wins over the field's own.
FIELD_LABELS: dict[str | tuple[str, str], str] = {
    ("trait", "field"): "Trait",
    ("trait", "op"): "Comparison",
    ("trait", "value"): "Value",
    "purpose": "Purpose",
    "granted": "Granted (untick: has not granted)",
    "tiers": "Tiers",
    "member": "Is a paying member (untick: is not)",
    "plans": "Plans (comma-separated; empty: any plan)",
    "recency": "Recency score (1 to 5)",
    "frequency": "Frequency score (1 to 5)",
    "monetary": "Monetary score (1 to 5)",
    "min_minor": "At least",
    "max_minor": "At most",
    ("p_alive", "min"): "At least (0 to 1)",
    ("p_alive", "max"): "At most (0 to 1)",
    "category": "Category",
    ("spent_more_than", "category"): "Only in category (optional)",
    "days": "In the last N days",
    "amount_minor": "Amount",
    ("event", "type"): "Event type",
    "did": "Did it (untick: did not)",
    "min_count": "At least N times",
    "store_id": "Store",
    ("near", "store_id"): "Or a store (instead of latitude/longitude)",
    "by": "Which store",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "radius_km": "Radius (km)",
    "use": "Where the customer is",
}
OPTION_LABELS: dict[str, str] = {
    "analytics": "Analytics",
    "personalization": "Personalization",
    "marketing_email": "Marketing email",
    "marketing_push": "Marketing push",
    "location": "Location",
    "eq": "is",
    "ne": "is not",
    "lt": "is less than",
    "lte": "is at most",
    "gt": "is more than",
    "gte": "is at least",
    "between": "is between (low, high)",
    "in": "is one of (comma-separated)",
    "contains": "contains",
    "top1": "Top 1%",
    "top5": "Top 5%",
    "top20": "Top 20%",
    "rest": "The rest",
    "preferred": "The store they visit most",
    "nearest": "The store nearest their home",
    "last_location": "Last known location",
    "home": "Home address",
    "home_store": "Home store",
}
TRAIT_NAMES = (*NUMERIC_TRAITS, *DATE_TRAITS, "channels", *TEXT_TRAITS)
# Traits holding money (minor units): shown and typed in the currency.
MONEY_TRAITS = ("spend_minor",)
TRAIT_LABELS = {
    "order_count": "Orders",
    "spend_minor": "Total spend",
    "event_count": "Events",
    "points_balance": "Points balance",
    "last_order_at": "Last order",
    "first_order_at": "First order",
    "last_seen_at": "Last seen",
    "first_seen_at": "First seen",
    "channels": "Channels",
    "locale": "Locale",
    "home_city": "Home city",
    "time_zone": "Time zone",
}
_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class Widget:
    """One input of a condition's form: ``control`` is select, checkboxes, checkbox, number,
    range (two numbers), text, list (comma-separated) or value (a trait's value)."""

    name: str
    label: str
    control: str
    options: tuple[tuple[str, str], ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    step: str = "1"
    max_length: int | None = None
    required: bool = False
    suggestions: tuple[tuple[str, str], ...] = ()
    # Money: the condition holds minor units, the input takes the currency's major units.
    currency: str | None = None


@dataclass
class ConditionForm:
    """One condition as the builder shows it: its kind's widgets with the current values, or
    (``as_json``) its JSON when the form cannot show it exactly."""

    index: int
    kind: str
    values: dict[str, Any]
    widgets: list[Widget] = field(default_factory=list)
    as_json: str | None = None
    summary: str = ""

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind.replace("_", " "))


def _label(kind: str, name: str) -> str:
    return FIELD_LABELS.get((kind, name)) or FIELD_LABELS.get(name) or name.replace("_", " ")


def _option(value: str) -> tuple[str, str]:
    return value, OPTION_LABELS.get(value, value.replace("_", " "))


def _non_null(schema: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """The schema without its ``null`` alternative, and whether it was optional."""
    alternatives = schema.get("anyOf")
    if alternatives:
        rest = [a for a in alternatives if a.get("type") != "null"]
        if len(rest) == 1:
            return {**schema, **rest[0]}, len(rest) < len(alternatives)
    return schema, False


def currency_of(choices: Mapping[str, Sequence[tuple[str, str]]] | None) -> str:
    """The currency money conditions are typed in: ``choices["currency"]`` (the program's,
    as the admin lists it), else the default."""
    found = (choices or {}).get("currency")
    return found[0][0] if found else formatting.DEFAULT_CURRENCY


def _money_text(value: Any, currency: str) -> str:
    return (
        str(formatting.minor_to_major(value, currency)) if isinstance(value, int) else _text(value)
    )


def _money_value(text: str, currency: str) -> int | float | str:
    """Major units typed ("12.50") as minor units, read as every admin money field is
    (``formatting.parse_money``; a number input sends "." before the decimals whatever the
    locale, so its default reading); anything else goes on as typed, so validation names the
    field."""
    try:
        return formatting.parse_money(text, currency)
    except ValueError:
        return _number(text)


def widgets_for(
    kind: str, *, choices: Mapping[str, Sequence[tuple[str, str]]] | None = None
) -> list[Widget]:
    """The inputs of a kind's form, from its model's JSON schema. ``choices`` lists the
    options known only at run time (``store_id``: stores, ``tier.tiers``: loyalty tiers) and
    the currency money is typed in (``currency``)."""
    model = MODELS[kind]
    currency = currency_of(choices)
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    choices = choices or {}
    widgets = []
    for name, raw in schema["properties"].items():
        if name == "kind":
            continue
        spec, optional = _non_null(raw)
        label = _label(kind, name)
        known = choices.get(f"{kind}.{name}") or choices.get(name)
        common: dict[str, Any] = {"name": name, "label": label, "required": name in required}
        if kind == "trait" and name == "value":
            common["label"] = (
                f"{label} (an amount in {currency} for spend: orders in {currency} only)"
            )
            widgets.append(Widget(control="value", currency=currency, **common))
        elif name.endswith("_minor") and spec.get("type") == "integer":
            bounds = _number_bounds(spec)
            precision = formatting.minor_unit_digits(currency)
            common["label"] = f"{label} ({currency})"
            widgets.append(
                Widget(
                    control="number",
                    minimum=None
                    if bounds["minimum"] is None
                    else float(formatting.minor_to_major(bounds["minimum"], currency)),
                    maximum=None
                    if bounds["maximum"] is None
                    else float(formatting.minor_to_major(bounds["maximum"], currency)),
                    step=f"{10**-precision:.{precision}f}" if precision else "1",
                    currency=currency,
                    **common,
                )
            )
        elif "enum" in spec:
            options = tuple(_option(v) for v in spec["enum"])
            widgets.append(Widget(control="select", options=options, **common))
        elif spec.get("type") == "boolean":
            widgets.append(Widget(control="checkbox", **common))
        elif spec.get("type") in ("integer", "number"):
            widgets.append(Widget(control="number", **_number_bounds(spec), **common))
        elif spec.get("type") == "array" and "prefixItems" in spec:
            widgets.append(
                Widget(control="range", **_number_bounds(spec["prefixItems"][0]), **common)
            )
        elif spec.get("type") == "array" and "enum" in spec.get("items", {}):
            options = tuple(_option(v) for v in spec["items"]["enum"])
            widgets.append(Widget(control="checkboxes", options=options, **common))
        elif spec.get("type") == "array" and known:
            widgets.append(Widget(control="checkboxes", options=tuple(known), **common))
        elif spec.get("type") == "array":
            widgets.append(Widget(control="list", **common))
        elif known and not optional:
            widgets.append(Widget(control="select", options=tuple(known), **common))
        else:
            suggestions = (
                tuple((n, TRAIT_LABELS[n]) for n in TRAIT_NAMES)
                if (kind, name) == ("trait", "field")
                else ()
            )
            widgets.append(
                Widget(
                    control="text",
                    max_length=spec.get("maxLength"),
                    suggestions=suggestions,
                    options=tuple(known or ()),
                    **common,
                )
            )
    return widgets


def _number_bounds(spec: Mapping[str, Any]) -> dict[str, Any]:
    minimum = spec.get("minimum", spec.get("exclusiveMinimum"))
    return {
        "minimum": minimum,
        "maximum": spec.get("maximum"),
        "step": "1" if spec.get("type") == "integer" else "any",
    }


# ------------------------------------------------------------------------- definition -> form


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _shown_item(value: Any, currency: str | None) -> str:
    """One value as a text input shows it: money (``currency``) in major units."""
    return _money_text(value, currency) if currency else _text(value)


def form_values(condition: Mapping[str, Any], widgets: Sequence[Widget]) -> dict[str, Any]:
    """A condition's values as its inputs show them: text for single inputs, a list of ticked
    options for ticks, a (low, high) pair for a range."""
    values: dict[str, Any] = {}
    fields = MODELS[str(condition.get("kind"))].model_fields
    for widget in widgets:
        # A field left out holds the model's default: show that.
        model_field = fields[widget.name]
        default = None if model_field.is_required() else model_field.get_default()
        value = condition.get(widget.name, default)
        if widget.control == "checkbox":
            values[widget.name] = bool(value)
        elif widget.control == "checkboxes":
            values[widget.name] = [_text(v) for v in value] if isinstance(value, list) else []
        elif widget.control == "range":
            pair = value if isinstance(value, list | tuple) and len(value) == 2 else ("", "")
            values[widget.name] = (_text(pair[0]), _text(pair[1]))
        elif widget.control in ("list", "value"):
            money = (
                widget.currency if widget.control == "value" and _money_trait(condition) else None
            )
            items = (
                [_shown_item(v, money) for v in value] if isinstance(value, list | tuple) else None
            )
            values[widget.name] = (
                list_text(items) if items is not None else _shown_item(value, money)
            )
        elif widget.currency:
            values[widget.name] = _money_text(value, widget.currency)
        else:
            values[widget.name] = _text(value)
    return values


def field_names(
    index: int, widgets: Sequence[Widget], values: Mapping[str, Any]
) -> dict[str, list[str]]:
    """The form fields a browser would submit for one condition (used by tests and to check
    that a condition survives the form unchanged)."""
    prefix = f"c{index}."
    submitted: dict[str, list[str]] = {}
    for widget in widgets:
        value = values.get(widget.name)
        key = prefix + widget.name
        if widget.control == "checkbox":
            submitted[key] = ["false", "true"] if value else ["false"]
        elif widget.control == "checkboxes":
            # As a browser sends them: the ticked ones, in the order the options are shown.
            ticked = list(value or [])
            submitted[key] = [option for option, _ in widget.options if option in ticked]
        elif widget.control == "range":
            low, high = value or ("", "")
            submitted[key + ".low"], submitted[key + ".high"] = [low], [high]
        else:
            submitted[key] = [str(value or "")]
    return submitted


# ------------------------------------------------------------------------- form -> definition


def _number(text: str) -> int | float | str:
    """A typed number; text that is not one goes on as typed, so validation names it."""
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _last(fields: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = fields.get(key)
    return values[-1].strip() if values else None


def _money_trait(condition: Mapping[str, Any]) -> bool:
    return condition.get("field") in MONEY_TRAITS


def _trait_value(
    fields: Mapping[str, Sequence[str]], prefix: str, text: str, currency: str | None
) -> Any:
    trait = _last(fields, prefix + "field") or ""
    op = _last(fields, prefix + "op") or ""
    numeric = trait in NUMERIC_TRAITS or trait in DATE_TRAITS

    def typed(item: str) -> Any:
        if trait in MONEY_TRAITS and currency:
            return _money_value(item, currency)
        return _number(item) if numeric else item

    if op in ("between", "in"):
        try:
            items = typed_list(text)
        except ValueError:
            return text  # goes on as typed: validation names the field
        return [typed(item) for item in items]
    return typed(text)


def condition_from_fields(
    index: int, kind: str, widgets: Sequence[Widget], fields: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """One condition's JSON from its submitted inputs; an empty input leaves its field out
    (the model's default, or "required" named at that field)."""
    prefix = f"c{index}."
    condition: dict[str, Any] = {"kind": kind}
    for widget in widgets:
        key = prefix + widget.name
        if widget.control == "checkbox":
            condition[widget.name] = (_last(fields, key) or "false") == "true"
        elif widget.control == "checkboxes":
            condition[widget.name] = [v for v in fields.get(key, []) if v]
        elif widget.control == "range":
            low, high = _last(fields, key + ".low") or "", _last(fields, key + ".high") or ""
            if low or high:
                condition[widget.name] = [
                    _number(low) if low else None,
                    _number(high) if high else None,
                ]
        else:
            text = _last(fields, key) or ""
            if not text:
                continue
            if widget.control == "number" and widget.currency:
                condition[widget.name] = _money_value(text, widget.currency)
            elif widget.control == "number":
                condition[widget.name] = _number(text)
            elif widget.control == "list":
                try:
                    condition[widget.name] = typed_list(text)
                except ValueError:
                    condition[widget.name] = text  # validation names the field
            elif widget.control == "value":
                condition[widget.name] = _trait_value(fields, prefix, text, widget.currency)
            else:
                condition[widget.name] = text
    return condition


def _normal(condition: Mapping[str, Any]) -> Any:
    """A condition as it would be stored (defaults filled in), or as given when invalid."""
    model = MODELS.get(str(condition.get("kind")))
    if model is not None:
        try:
            return model.model_validate(dict(condition)).model_dump(mode="json", exclude_none=True)
        except ValidationError:
            pass
    return {k: v for k, v in condition.items() if v is not None}


def condition_form(
    index: int,
    condition: Any,
    *,
    choices: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    force_json: bool = False,
) -> ConditionForm:
    """How the builder shows one condition: its form when the form carries it exactly (its
    form values convert back to the same condition), otherwise its JSON."""
    if isinstance(condition, str):
        # JSON as typed that does not parse: shown again exactly as typed.
        return ConditionForm(
            index=index, kind="json", values={}, as_json=condition, summary="Edited as JSON"
        )
    kind = str(condition.get("kind", "")) if isinstance(condition, dict) else ""
    if kind not in MODELS or force_json:
        return ConditionForm(
            index=index,
            kind=kind or "json",
            values={},
            as_json=json.dumps(condition),
            summary=summary(condition, choices=choices) if kind in MODELS else "Edited as JSON",
        )
    widgets = _with_current_options(widgets_for(kind, choices=choices), condition)
    values = form_values(condition, widgets)
    back = condition_from_fields(index, kind, widgets, field_names(index, widgets, values))
    if _normal(back) != _normal(condition):
        return ConditionForm(
            index=index,
            kind=kind,
            values={},
            as_json=json.dumps(condition),
            summary=summary(condition, choices=choices),
        )
    return ConditionForm(
        index=index,
        kind=kind,
        values=values,
        widgets=widgets,
        summary=summary(condition, choices=choices),
    )


def _with_current_options(widgets: list[Widget], condition: Mapping[str, Any]) -> list[Widget]:
    """A run-time list of options (stores, tiers) extended by the values the condition holds
    that the list lacks, so showing it never drops them; ticks list the ticked options in the
    order the condition holds them (in the places the ticked ones take), so a browser sends
    them back in that order and a save leaves the list as it was."""
    extended = []
    for widget in widgets:
        current = condition.get(widget.name)
        held = current if isinstance(current, list) else [current] if current else []
        known = {value for value, _ in widget.options}
        missing = tuple(_option(str(v)) for v in held if str(v) not in known)
        if missing and widget.control in ("select", "checkboxes"):
            widget = replace(widget, options=(*widget.options, *missing))
        if widget.control == "checkboxes" and held:
            labels = dict(widget.options)
            ticked = list(dict.fromkeys(str(v) for v in held))
            in_order = iter(ticked)
            options = tuple(
                (value, labels[value]) if value not in ticked else (t := next(in_order), labels[t])
                for value, _ in widget.options
            )
            widget = replace(widget, options=options)
        extended.append(widget)
    return extended


def conditions_from_form(
    fields: Mapping[str, Sequence[str]],
    *,
    choices: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    strict: bool = True,
) -> list[Any]:
    """The builder's conditions, in order: each from its inputs (``c<i>.kind`` and fields) or
    its JSON (``c<i>.json``). JSON that does not parse is refused naming the condition, or
    (not ``strict``, to show the builder again) kept as the text typed."""
    conditions: list[Any] = []
    for index in range(MAX_CONDITIONS_IN_FORM):
        prefix = f"c{index}."
        text = _last(fields, prefix + "json")
        kind = _last(fields, prefix + "kind")
        if text is not None:
            try:
                conditions.append(json.loads(text))
            except json.JSONDecodeError as error:
                if not strict:
                    conditions.append(text)
                    continue
                position = len(conditions)
                raise InvalidInput(
                    f"conditions.{position}: not JSON ({error.msg})",
                    field=f"conditions.{position}",
                ) from None
        elif kind in MODELS:
            widgets = widgets_for(kind, choices=choices)
            conditions.append(condition_from_fields(index, kind, widgets, fields))
    return conditions


# ------------------------------------------------------------------------------- summaries


def _names(values: Any) -> str:
    items = values if isinstance(values, list) else [values]
    labels = [OPTION_LABELS.get(str(v), str(v)) for v in items]
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " or " + labels[-1]


def _amount(value: Any, currency: str = formatting.DEFAULT_CURRENCY) -> str:
    return formatting.money(value, currency) if isinstance(value, int) else str(value)


def summary(
    condition: Any, *, choices: Mapping[str, Sequence[tuple[str, str]]] | None = None
) -> str:
    """One line of plain language for a condition (tolerant of one still being edited);
    ``choices`` names tiers and stores as the builder lists them."""
    choices = choices or {}
    if not isinstance(condition, dict):
        return "Edited as JSON"
    c = condition
    kind = c.get("kind")
    if kind == "trait":
        value = c.get("value")
        if _money_trait(c):
            currency = currency_of(choices)
            value = (
                [_amount(v, currency) for v in value]
                if isinstance(value, list)
                else _amount(value, currency)
            )
        shown = (
            " and ".join(map(str, value))
            if c.get("op") == "between" and isinstance(value, list)
            else _names(value)
        )
        trait = TRAIT_LABELS.get(str(c.get("field")), str(c.get("field", "")).replace("_", " "))
        unit = " days ago" if c.get("field") in DATE_TRAITS else ""
        # The comparison as a phrase: without the typing hint its option carries.
        op = str(OPTION_LABELS.get(str(c.get("op")), c.get("op"))).split(" (")[0]
        return f"{trait[:1].upper()}{trait[1:]} {op} {shown}{unit}"
    if kind == "consent":
        purpose = OPTION_LABELS.get(str(c.get("purpose")), str(c.get("purpose"))).lower()
        return f"{'Granted' if c.get('granted', True) else 'Has not granted'} {purpose} consent"
    if kind == "tier":
        names = dict(choices.get("tier.tiers") or ())
        return f"In loyalty tier {_names([names.get(t, t) for t in c.get('tiers') or []])}"
    if kind == "membership":
        if not c.get("member", True):
            return "Not a paying member"
        plans = c.get("plans")
        return f"A paying member of {_names(plans)}" if plans else "A paying member"
    if kind == "rfm":
        parts = [
            f"{name} {pair[0]} to {pair[1]}"
            for name in ("recency", "frequency", "monetary")
            if isinstance(pair := c.get(name), list | tuple) and len(pair) == 2
        ]
        return "RFM scores: " + (", ".join(parts) or "none given")
    if kind == "predicted_value":
        return "Predicted value (next 365 days) " + _bounds(
            c.get("min_minor"), c.get("max_minor"), lambda v: _amount(v, currency_of(choices))
        )
    if kind == "value_tier":
        return f"Value tier {_names(c.get('tiers') or [])}"
    if kind == "p_alive":
        return "Probability still active " + _bounds(c.get("min"), c.get("max"), str)
    if kind == "bought_category":
        return f"Bought from {c.get('category')} in the last {c.get('days')} days"
    if kind == "spent_more_than":
        where = f" in {c.get('category')}" if c.get("category") else ""
        amount = _amount(c.get("amount_minor"), currency_of(choices))
        return f"Spent more than {amount}{where} in the last {c.get('days')} days"
    if kind == "event":
        times = c.get("min_count", 1)
        count = "" if times in (1, None) else f" at least {times} times"
        what = str(c.get("type", "")).replace("_", " ")
        if c.get("did", True):
            return (
                f"{what.capitalize()}{count or ' at least once'} in the last {c.get('days')} days"
            )
        return f"No {what}{count} in the last {c.get('days')} days"
    if kind == "store":
        which = "Nearest store to home" if c.get("by") == "nearest" else "Most visited store"
        store = dict(choices.get("store_id") or ()).get(str(c.get("store_id")), c.get("store_id"))
        return f"{which} is {store}"
    if kind == "near":
        point = (
            f"store {c.get('store_id')}"
            if c.get("store_id")
            else f"{c.get('latitude')}, {c.get('longitude')}"
        )
        use = c.get("use") or ["last_location", "home", "home_store"]
        return f"Within {c.get('radius_km')} km of {point} (by {_names(use).lower()})"
    return f"Unknown condition kind {kind!r}"


def _bounds(low: Any, high: Any, show: Any) -> str:
    if low is not None and high is not None:
        return f"between {show(low)} and {show(high)}"
    if low is not None:
        return f"at least {show(low)}"
    if high is not None:
        return f"at most {show(high)}"
    return "(no bound given)"
