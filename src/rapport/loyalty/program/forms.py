"""The program's admin forms: an earning rule, the tier ladder and the checkout caps as form
fields, turned into the same documents the JSON editor and the API save (and back).

Money is typed in the program currency's major units as the pages show amounts ("100.00",
"1,500.00"; ``platform.admin.typed_money``, the one reading of every admin money field) and
stored in minor units.
A form changes only the settings it carried: each document starts from what is stored and
only the fields the form sent replace it, so a setting the form does not show keeps its value.
Errors are keyed by the form's own field names, so each message sits next to its field.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

from babel.numbers import get_currency_symbol

from rapport.platform import formatting
from rapport.platform.admin import list_text, money_field, typed_list, typed_money
from rapport.platform.errors import Problem

FieldErrors = dict[str, str]

RULE_KINDS: dict[str, str] = {
    "spend": "Points per amount spent",
    "first_purchase": "First purchase bonus",
    "preference_shared": "Preferences shared",
    "verified_review": "Verified review",
    "birthday": "Birthday gift",
    "apology": "Apology for a broken promise",
}
# The single "points" setting of each kind (the spend rule has a rate instead).
POINTS_FIELD: dict[str, str] = {
    "first_purchase": "points",
    "preference_shared": "points_per_field",
    "verified_review": "points",
    "birthday": "points",
    "apology": "points",
}
CHANNELS = ("web", "app", "store", "call_center")
MULTIPLIER_ON = ("category", "brand", "channel", "tier")
PERIODS = ("day", "week", "month", "year")
TRIGGERS = {"delivery_late": "A late delivery", "order_unfulfilled": "An unfulfilled order"}
PRIORITIES = ("standard", "priority", "dedicated")
# Blank rows the forms offer for a new multiplier or tier.
SPARE_ROWS = 2
MAX_POINTS = 1_000_000


class FormInvalid(Exception):
    """The form's input, refused: a message per form field (``form`` for the whole form)."""

    def __init__(self, errors: FieldErrors) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# --- reading typed values -------------------------------------------------------------------


def _whole(text: str, *, low: int, high: int, noun: str) -> int:
    try:
        value = int(text.strip().replace(",", ""))
    except ValueError:
        raise ValueError(f"Give a whole number of {noun}") from None
    if value < low:
        raise ValueError(f"Give at least {low:,} {noun.removesuffix('s') if low == 1 else noun}")
    if value > high:
        raise ValueError(f"Give at most {high:,} {noun}")
    return value


def _decimal(text: str, *, low: Decimal, high: Decimal, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"Give {what} as a number, like 1.5") from None
    if not value.is_finite() or value <= low or value > high:
        raise ValueError(f"Give {what} above {low} and at most {high}")
    return value


def _money(text: str, currency: str) -> int:
    try:
        minor = typed_money(text, currency)
    except ValueError as unreadable:
        raise ValueError(f"Give {unreadable}") from None
    if minor < 0:
        raise ValueError(f"Give at least {formatting.money(0, currency)}")
    return minor


def money_text(minor: int | None, currency: str) -> str:
    """Minor units as the form shows them: 10000 → "100.00", 150000 → "1,500.00"."""
    return money_field(minor, currency)


def _moment(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("Give a date and time, like 2026-12-24 09:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _moment_text(value: object) -> str:
    """A stored moment as a ``datetime-local`` input shows it (UTC, to the minute; a form
    sending it back unchanged keeps the stored moment, seconds and all)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M")


class _Reader:
    """Reads the carried fields, collecting a message per field instead of stopping."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = fields
        self.errors: FieldErrors = {}

    def has(self, name: str) -> bool:
        return name in self.fields

    def text(self, name: str) -> str:
        return self.fields.get(name, "").strip()

    def read(self, name: str, parse: Any) -> Any:
        try:
            return parse(self.fields.get(name, ""))
        except ValueError as error:
            self.errors[name] = str(error)
            return None

    def done(self) -> None:
        if self.errors:
            raise FormInvalid(self.errors)


# --- earning rules --------------------------------------------------------------------------


def rule_fields(rule: Mapping[str, Any], currency: str) -> dict[str, str]:
    """A stored rule as its form's field values."""
    kind = str(rule.get("kind", ""))
    cap = rule.get("cap") or {}
    values: dict[str, str] = {
        "id": str(rule.get("id", "")),
        "name": str(rule.get("name", "")),
        "active": "false" if rule.get("active") is False else "true",
        "starts_at": _moment_text(rule.get("starts_at")),
        "ends_at": _moment_text(rule.get("ends_at")),
        "cap_points": str(cap.get("points", "")),
        "cap_period": str(cap.get("period", "")),
    }
    if kind == "spend":
        values["points_per_unit"] = str(rule.get("points_per_unit", ""))
        values["exclude_categories"] = list_text(rule.get("exclude_categories") or [])
        for index, multiplier in enumerate(rule.get("multipliers") or []):
            on = next((name for name in MULTIPLIER_ON if multiplier.get(name)), "category")
            values[f"m{index}_on"] = on
            values[f"m{index}_value"] = str(multiplier.get(on, ""))
            values[f"m{index}_factor"] = str(multiplier.get("factor", ""))
    elif kind in POINTS_FIELD:
        values["points"] = str(rule.get(POINTS_FIELD[kind], ""))
    if kind == "first_purchase":
        values["min_total"] = money_text(int(rule.get("min_total_minor") or 0), currency)
    if kind == "preference_shared":
        values["fields"] = list_text(rule.get("fields") or [])
    if kind == "apology":
        triggers = list(rule.get("on") or TRIGGERS)
        for trigger in TRIGGERS:
            values[f"on_{trigger}"] = "true" if trigger in triggers else "false"
    return values


def multiplier_rows(values: Mapping[str, str]) -> int:
    """How many multiplier rows the form shows: the stored ones and spare blank ones."""
    used = sum(1 for name in values if name.startswith("m") and name.endswith("_on"))
    return used + SPARE_ROWS


def rule_from_form(
    stored: Mapping[str, Any] | None, kind: str, fields: Mapping[str, str], currency: str
) -> dict[str, Any]:
    """The rule after its form is saved: ``stored`` (or a new rule of ``kind``) with each
    setting the form carried replaced. Raises :class:`FormInvalid`."""
    if kind not in RULE_KINDS:
        raise FormInvalid({"form": f"Unknown kind of rule {kind!r}"})
    rule: dict[str, Any] = copy.deepcopy(dict(stored)) if stored else {"kind": kind}
    form = _Reader(fields)
    if stored is None:
        rule["id"] = form.text("id")
        if not rule["id"]:
            form.errors["id"] = "Give the rule a short id, like summer-bonus"
    if form.has("name"):
        rule["name"] = form.text("name")
        if not rule["name"]:
            form.errors["name"] = "Give the rule a name members and staff recognise"
    if form.has("active"):
        rule["active"] = fields["active"] in ("true", "on", "1")
    for name in ("starts_at", "ends_at"):
        # A moment left as the form showed it (to the minute) keeps its stored seconds.
        if form.has(name) and (stored is None or form.text(name) != _moment_text(stored.get(name))):
            moment = form.read(name, _moment)
            if moment is None:
                rule.pop(name, None)
            else:
                rule[name] = moment
    if form.has("cap_points") or form.has("cap_period"):
        points_text, period = form.text("cap_points"), form.text("cap_period")
        if not points_text and not period:
            rule.pop("cap", None)
        elif not period:
            form.errors["cap_period"] = "Choose the period the cap counts over"
        elif period not in PERIODS:
            form.errors["cap_period"] = "Choose day, week, month or year"
        else:
            points = form.read(
                "cap_points",
                lambda text: _whole(text, low=1, high=MAX_POINTS, noun="points"),
            )
            rule["cap"] = {"points": points, "period": period}
    if kind == "spend":
        if form.has("points_per_unit"):
            rate = form.read(
                "points_per_unit",
                lambda text: _decimal(
                    text, low=Decimal(0), high=Decimal(1000), what="the points per unit"
                ),
            )
            rule["points_per_unit"] = str(rate) if rate is not None else None
        if form.has("exclude_categories"):
            rule["exclude_categories"] = form.read("exclude_categories", typed_list)
        if form.has("multiplier_rows"):
            rule["multipliers"] = _multipliers(form)
    elif form.has("points"):
        rule[POINTS_FIELD[kind]] = form.read(
            "points", lambda text: _whole(text, low=1, high=MAX_POINTS, noun="points")
        )
    if kind == "first_purchase" and form.has("min_total"):
        text = form.text("min_total")
        rule["min_total_minor"] = form.read("min_total", lambda _t: _money(text or "0", currency))
    if kind == "preference_shared" and form.has("fields"):
        named = form.read("fields", typed_list)
        if named:
            rule["fields"] = named
        else:
            rule.pop("fields", None)
    if kind == "apology" and any(form.has(f"on_{trigger}") for trigger in TRIGGERS):
        on = [t for t in TRIGGERS if fields.get(f"on_{t}", "false") in ("true", "on", "1")]
        if not on:
            form.errors["on_delivery_late"] = "Choose at least one broken promise"
        rule["on"] = on
    form.done()
    return rule


def _multipliers(form: _Reader) -> list[dict[str, Any]]:
    rows = form.read("multiplier_rows", lambda text: _whole(text, low=0, high=60, noun="rows"))
    found: list[dict[str, Any]] = []
    for index in range(rows or 0):
        on, value = form.text(f"m{index}_on"), form.text(f"m{index}_value")
        factor_text = form.text(f"m{index}_factor")
        if not value and not factor_text:
            continue  # a blank row
        if on not in MULTIPLIER_ON:
            form.errors[f"m{index}_on"] = "Choose category, brand, channel or tier"
            continue
        if not value:
            form.errors[f"m{index}_value"] = f"Name the {on} this multiplier applies to"
            continue
        factor = form.read(
            f"m{index}_factor",
            lambda text: _decimal(text, low=Decimal(0), high=Decimal(20), what="the factor"),
        )
        found.append({on: value, "factor": str(factor)})
    return found


def rules_with(
    document: Mapping[str, Any], editing: str | None, rule: Mapping[str, Any]
) -> tuple[dict[str, Any], int]:
    """The rule set with ``rule`` in place of the rule ``editing`` (or added at the end), and
    where it sits."""
    draft = copy.deepcopy(dict(document))
    rules: list[dict[str, Any]] = list(draft.get("rules") or [])
    for index, existing in enumerate(rules):
        if editing is not None and existing.get("id") == editing:
            rules[index] = dict(rule)
            draft["rules"] = rules
            return draft, index
    if any(existing.get("id") == rule.get("id") for existing in rules):
        raise FormInvalid({"id": f"A rule with the id {rule.get('id')!r} exists already"})
    rules.append(dict(rule))
    draft["rules"] = rules
    return draft, len(rules) - 1


def rules_without(document: Mapping[str, Any], rule_id: str) -> dict[str, Any]:
    draft = copy.deepcopy(dict(document))
    draft["rules"] = [rule for rule in draft.get("rules") or [] if rule.get("id") != rule_id]
    return draft


# Where each setting of a rule appears on its form (validation names the stored field).
_RULE_FIELD = {
    "points_per_unit": "points_per_unit",
    "points": "points",
    "points_per_field": "points",
    "min_total_minor": "min_total",
    "exclude_categories": "exclude_categories",
    "fields": "fields",
    "on": "on_delivery_late",
    "starts_at": "starts_at",
    "ends_at": "ends_at",
    "name": "name",
    "id": "id",
    "active": "active",
}


def rule_errors(problem: Problem, index: int) -> FieldErrors:
    """A validation problem of the whole rule set, keyed by the rule form's fields."""
    errors: FieldErrors = {}
    prefix = ["rules", str(index)]
    for entry in problem.errors or [{"field": problem.field or "", "message": problem.detail}]:
        parts = str(entry.get("field") or "").split(".")
        message = _sentence(str(entry.get("message", "")))
        if parts[:2] != prefix or len(parts) == 2:
            errors.setdefault("form", message)
            continue
        rest = parts[2:]
        if rest[0] == "cap":
            name = "cap_period" if rest[-1] == "period" else "cap_points"
        elif rest[0] == "multipliers" and len(rest) > 1:
            name = f"m{rest[1]}_factor" if rest[-1] == "factor" else f"m{rest[1]}_value"
        else:
            name = _RULE_FIELD.get(rest[0], "form")
        errors.setdefault(name, message)
    return errors


def _sentence(message: str) -> str:
    if message == "must be after starts_at":
        return "Give an end after the start"
    return message[:1].upper() + message[1:]


def describe_rule(rule: Mapping[str, Any], currency: str) -> str:
    """What the rule gives, in a line a loyalty manager reads ("200 points on a first order
    of at least €100.00")."""
    kind = rule.get("kind")
    if kind == "spend":
        rate = str(rule.get("points_per_unit"))
        word = "point" if rate in ("1", "1.0", "1.00", "1.000") else "points"
        text = f"{rate} {word} per {_symbol(currency)} spent"
        extra = [
            f"{m.get('factor')} times on {on} {m.get(on)}"
            for m in rule.get("multipliers") or []
            for on in MULTIPLIER_ON
            if m.get(on)
        ]
        if extra:
            text += ", " + ", ".join(extra)
        if rule.get("exclude_categories"):
            text += "; not on " + ", ".join(rule["exclude_categories"])
    elif kind == "first_purchase":
        text = f"{rule.get('points')} points on a first order"
        if rule.get("min_total_minor"):
            text += " of at least " + formatting.money(int(rule["min_total_minor"]), currency)
    elif kind == "preference_shared":
        text = f"{rule.get('points_per_field')} points per preference shared"
        if rule.get("fields"):
            text += " (" + ", ".join(rule["fields"]) + ")"
    elif kind == "apology":
        on = rule.get("on") or list(TRIGGERS)
        text = f"{rule.get('points')} points for " + " or ".join(
            TRIGGERS[t].lower().removeprefix("a ").removeprefix("an ") for t in on if t in TRIGGERS
        )
    else:
        text = f"{rule.get('points')} points"
    cap = rule.get("cap")
    if cap:
        text += f"; at most {cap.get('points')} points per {cap.get('period')}"
    return text


def _symbol(currency: str) -> str:
    return get_currency_symbol(currency, locale=formatting.DEFAULT_LOCALE)


# --- the tier ladder ------------------------------------------------------------------------

TIER_SETTINGS = (
    "name",
    "threshold",
    "multiplier",
    "discount",
    "free_shipping",
    "priority",
    "early_access",
)


def tier_fields(policy: Mapping[str, Any], currency: str) -> dict[str, str]:
    """A stored tier ladder as its form's field values."""
    basis = str(policy.get("basis", "spend"))
    values = {
        "basis": basis,
        "window_months": str(policy.get("window_months", 12)),
        "grace_days": str(policy.get("grace_days", 30)),
    }
    tiers = list(policy.get("tiers") or [])
    for index, tier in enumerate(tiers):
        benefits = tier.get("benefits") or {}
        threshold = int(tier.get("threshold") or 0)
        shipping = benefits.get("free_shipping_over_minor")
        values.update(
            {
                f"t{index}_id": str(tier.get("id", "")),
                f"t{index}_name": str(tier.get("name", "")),
                f"t{index}_threshold": (
                    money_text(threshold, currency) if basis == "spend" else str(threshold)
                ),
                f"t{index}_multiplier": str(benefits.get("points_multiplier", 1.0)),
                f"t{index}_discount": str(benefits.get("member_discount_percent", 0.0)),
                f"t{index}_free_shipping": money_text(shipping, currency),
                f"t{index}_priority": str(benefits.get("support_priority", "standard")),
                f"t{index}_early_access": str(benefits.get("early_access_hours", 0)),
            }
        )
    values["tier_rows"] = str(len(tiers) + 1)
    return values


def tiers_from_form(
    stored: Mapping[str, Any], fields: Mapping[str, str], currency: str
) -> tuple[dict[str, Any], list[int]]:
    """The tier ladder after its form is saved, lowest threshold first, and the form row of
    each tier in it. A tier's settings the form did not carry keep their stored values; a row
    ticked "remove" drops its tier; a filled blank row adds one, placed by its threshold. The
    stored tiers keep their order: thresholds that no longer rise are refused at the one
    changed, never reordered. Raises :class:`FormInvalid`."""
    form = _Reader(fields)
    policy: dict[str, Any] = copy.deepcopy(dict(stored))
    if form.has("basis"):
        if fields["basis"] not in ("spend", "points"):
            form.errors["basis"] = "Choose spend or points"
        else:
            policy["basis"] = fields["basis"]
    if form.has("window_months"):
        policy["window_months"] = form.read(
            "window_months", lambda text: _whole(text, low=1, high=36, noun="months")
        )
    if form.has("grace_days"):
        policy["grace_days"] = form.read(
            "grace_days", lambda text: _whole(text, low=0, high=365, noun="days")
        )
    by_id = {str(tier.get("id")): tier for tier in stored.get("tiers") or []}
    spend = policy.get("basis", "spend") == "spend"
    rows = form.read("tier_rows", lambda text: _whole(text, low=0, high=11, noun="rows"))
    if rows is None:
        rows = len(by_id)
    tiers: list[tuple[dict[str, Any], int]] = []
    seen: set[str] = set()
    for index in range(rows):
        p = f"t{index}_"
        tier_id = form.text(p + "id")
        if not tier_id and not form.text(p + "name"):
            continue  # a blank row
        if fields.get(p + "remove") in ("true", "on", "1"):
            continue
        if not tier_id:
            form.errors[p + "id"] = "Give the tier a short id, like platinum"
            continue
        new = tier_id not in by_id
        if tier_id in seen:
            form.errors[p + "id"] = f"The id {tier_id!r} is used twice"
            continue
        seen.add(tier_id)
        tier = copy.deepcopy(dict(by_id.get(tier_id) or {"id": tier_id}))
        benefits: dict[str, Any] = dict(tier.get("benefits") or {})
        if form.has(p + "name") or new:
            tier["name"] = form.text(p + "name")
            if not tier["name"]:
                form.errors[p + "name"] = "Give the tier a name"
        if form.has(p + "threshold") or new:
            tier["threshold"] = form.read(
                p + "threshold",
                (lambda text: _money(text or "0", currency))
                if spend
                else (lambda text: _whole(text or "0", low=0, high=10**12, noun="points")),
            )
        if form.has(p + "multiplier"):
            benefits["points_multiplier"] = form.read(
                p + "multiplier", lambda text: _ranged(text or "1", 1, 10, "the multiplier")
            )
        if form.has(p + "discount"):
            benefits["member_discount_percent"] = form.read(
                p + "discount", lambda text: _ranged(text or "0", 0, 50, "the discount (%)")
            )
        if form.has(p + "free_shipping"):
            text = form.text(p + "free_shipping")
            benefits["free_shipping_over_minor"] = (
                form.read(p + "free_shipping", lambda typed: _money(typed, currency))
                if text
                else None
            )
        if form.has(p + "priority"):
            if fields[p + "priority"] not in PRIORITIES:
                form.errors[p + "priority"] = "Choose standard, priority or dedicated"
            else:
                benefits["support_priority"] = fields[p + "priority"]
        if form.has(p + "early_access"):
            benefits["early_access_hours"] = form.read(
                p + "early_access",
                lambda text: _whole(text or "0", low=0, high=24 * 14, noun="hours"),
            )
        tier["benefits"] = benefits
        tiers.append((tier, index))
    if not tiers:
        form.errors["form"] = "Keep at least one tier: the one every member starts in"
    tiers = _ladder_order(tiers, by_id)
    _check_rising(form, tiers, by_id, spend, currency)
    form.done()
    policy["tiers"] = [tier for tier, _ in tiers]
    return policy, [row for _, row in tiers]


def _ladder_order(
    tiers: list[tuple[dict[str, Any], int]], by_id: Mapping[str, Any]
) -> list[tuple[dict[str, Any], int]]:
    """The ladder in the form's order, each new tier put where its threshold places it.

    The stored tiers keep their order: a threshold typed out of order is refused by
    :func:`_check_rising`, never moved silently to another rung."""
    ladder = [pair for pair in tiers if str(pair[0].get("id")) in by_id]
    for pair in tiers:
        if str(pair[0].get("id")) in by_id:
            continue
        threshold = pair[0].get("threshold")
        place = len(ladder)
        if threshold is not None:
            place = next(
                (
                    index
                    for index, (other, _) in enumerate(ladder)
                    if other.get("threshold") is not None and other["threshold"] > threshold
                ),
                len(ladder),
            )
        ladder.insert(place, pair)
    return ladder


def _check_rising(
    form: _Reader,
    tiers: list[tuple[dict[str, Any], int]],
    by_id: Mapping[str, Any],
    spend: bool,
    currency: str,
) -> None:
    """A message at the threshold that breaks the rising ladder: the one the form changed
    (a stored tier's new threshold, or a new tier's), next to its field."""

    def shown(threshold: int) -> str:
        if spend:
            return formatting.money(threshold, currency)
        return f"{formatting.number(threshold)} points"

    def changed(tier: Mapping[str, Any]) -> bool:
        stored = by_id.get(str(tier.get("id")))
        return stored is None or stored.get("threshold") != tier.get("threshold")

    for (lower, lower_row), (higher, higher_row) in pairwise(tiers):
        low, high = lower.get("threshold"), higher.get("threshold")
        if low is None or high is None or high > low:
            continue
        lower_name = lower.get("name") or lower.get("id")
        higher_name = higher.get("name") or higher.get("id")
        if changed(lower) and not changed(higher):
            form.errors.setdefault(
                f"t{lower_row}_threshold",
                f"Give less than {higher_name}'s threshold, {shown(high)}: "
                "each tier's threshold is above the one before",
            )
        else:
            form.errors.setdefault(
                f"t{higher_row}_threshold",
                f"Give more than {lower_name}'s threshold, {shown(low)}: "
                "each tier's threshold is above the one before",
            )


def _ranged(text: str, low: float, high: float, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"Give {what} as a number") from None
    if not low <= value <= high:
        raise ValueError(f"Give {what} between {low:g} and {high:g}")
    return value


_TIER_FIELD = {
    "name": "name",
    "threshold": "threshold",
    "id": "id",
    "points_multiplier": "multiplier",
    "member_discount_percent": "discount",
    "free_shipping_over_minor": "free_shipping",
    "support_priority": "priority",
    "early_access_hours": "early_access",
}


def tier_errors(problem: Problem, rows: list[int], ids: list[str] | None = None) -> FieldErrors:
    """A validation problem of the ladder, keyed by the tier form's fields (``rows``: the form
    row of each tier of the ladder, ``ids`` their ids)."""
    errors: FieldErrors = {}
    for entry in problem.errors or [{"field": problem.field or "", "message": problem.detail}]:
        parts = str(entry.get("field") or "").split(".")
        message = _sentence(str(entry.get("message", "")))
        named = re.search(r"(\S+) is not above", message)
        if parts[0] in ("basis", "window_months", "grace_days"):
            errors.setdefault(parts[0], message)
        elif parts[0] == "tiers" and len(parts) > 2 and parts[1].isdigit():
            row = rows[int(parts[1])] if int(parts[1]) < len(rows) else 0
            errors.setdefault(f"t{row}_{_TIER_FIELD.get(parts[-1], 'name')}", message)
        elif named and ids and named.group(1) in ids:
            errors.setdefault(f"t{rows[ids.index(named.group(1))]}_threshold", message)
        elif "threshold" in message.lower() and rows:
            errors.setdefault(f"t{rows[0]}_threshold", message)
        else:
            errors.setdefault("form", message)
    return errors


# --- checkout caps --------------------------------------------------------------------------

CHECKOUT_SETTINGS = ("max_line_discount_percent", "max_points_payment_percent")


def checkout_fields(policy: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(policy.get(name, "")) for name in CHECKOUT_SETTINGS}


def checkout_from_form(stored: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    form = _Reader(fields)
    policy = copy.deepcopy(dict(stored))
    for name in CHECKOUT_SETTINGS:
        if form.has(name):
            policy[name] = form.read(
                name, lambda text: _whole(text, low=0, high=100, noun="percent")
            )
    form.done()
    return policy


def checkout_errors(problem: Problem) -> FieldErrors:
    errors: FieldErrors = {}
    for entry in problem.errors or [{"field": problem.field or "", "message": problem.detail}]:
        name = str(entry.get("field") or "form").split(".")[0]
        key = name if name in CHECKOUT_SETTINGS else "form"
        errors.setdefault(key, _sentence(str(entry.get("message", ""))))
    return errors
