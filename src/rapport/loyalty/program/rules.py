"""Earning rules: declarative JSON, validated with a clear error, evaluated on facts.

A rule set is a list of rules, each of one ``kind``. Evaluation is a pure function of the rule
set, one fact (an order placed, a preference shared, a verified review, a birthday, a late
delivery or an unfulfilled order) and what the caller knows of the member (tier, earlier
orders, points already given under each capped rule this period, awards already made). It
answers a decision per rule, fired or not and why, so the simulator and the earning processor
share one code path: what the simulator shows is what the processor awards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Annotated, Literal, cast

from pydantic import (
    AwareDatetime,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from rapport.catalog.service import in_any_category, in_category
from rapport.platform import formatting
from rapport.platform.errors import FieldInvalid, invalid_document
from rapport.platform.formatting import minor_unit_digits
from rapport.platform.schemas import StrictModel

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,59}$", examples=["base-earn"])]
Points = Annotated[int, Field(ge=1, le=1_000_000)]
Period = Literal["day", "week", "month", "year"]
FactKind = Literal[
    "order_placed",
    "preference_shared",
    "review_verified",
    "birthday",
    "delivery_late",
    "order_unfulfilled",
]


class Cap(StrictModel):
    """At most ``points`` from this rule per customer per calendar ``period`` (UTC)."""

    points: Points
    period: Period


class Multiplier(StrictModel):
    """Multiply the points of lines (category, brand) or orders (channel, tier) that match.
    Give exactly one of ``category``, ``brand``, ``channel``, ``tier``."""

    category: str | None = Field(default=None, max_length=120)
    brand: str | None = Field(default=None, max_length=120)
    channel: str | None = Field(default=None, max_length=20)
    tier: str | None = Field(default=None, max_length=60)
    factor: Annotated[Decimal, Field(gt=0, le=20, max_digits=6, decimal_places=3)]

    @model_validator(mode="after")
    def _one_condition(self) -> Multiplier:
        named = [name for name in ("category", "brand", "channel", "tier") if getattr(self, name)]
        if len(named) != 1:
            raise FieldInvalid(
                named[1] if named else "category",
                "a multiplier names exactly one of category, brand, channel, tier",
            )
        return self

    def matches(self, line: OrderLine | None, fact: Fact, tier: str | None) -> bool:
        if self.category is not None:
            return line is not None and in_category(line.category, self.category)
        if self.brand is not None:
            return line is not None and line.brand == self.brand
        if self.channel is not None:
            return fact.channel == self.channel
        return tier is not None and tier == self.tier


class _Rule(StrictModel):
    id: RuleId
    name: str = Field(min_length=1, max_length=200)
    active: bool = True
    starts_at: AwareDatetime | None = Field(default=None, description="First moment it applies.")
    ends_at: AwareDatetime | None = Field(default=None, description="It applies before this.")
    cap: Cap | None = None

    @model_validator(mode="after")
    def _window_in_order(self) -> _Rule:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise FieldInvalid("ends_at", "must be after starts_at")
        return self


class SpendRule(_Rule):
    """Points per unit of the program's currency spent on an order (after its discount,
    before shipping): per euro (100 cents), per yen (1 minor unit), per dinar (1,000 fils for
    KWD), as ISO 4217 sets its minor unit; times every multiplier that matches the line or
    the order. A category (in a multiplier or ``exclude_categories``) covers everything filed
    under it: "Wine" covers "Wine/Red"."""

    kind: Literal["spend"]
    points_per_unit: Annotated[Decimal, Field(gt=0, le=1000, max_digits=8, decimal_places=3)]
    multipliers: list[Multiplier] = Field(default_factory=list, max_length=50)
    exclude_categories: list[str] = Field(default_factory=list, max_length=100)


# The once key of the first-purchase bonus: one award per member and rule. The award of an
# order cancelled since is kept under another key, so a later order can be the first.
FIRST_ORDER = "first-order"


class FirstPurchaseRule(_Rule):
    """A bonus on the customer's first order, once. An order cancelled before it was handed
    over is no purchase: its bonus is taken back and it does not count as an earlier order."""

    kind: Literal["first_purchase"]
    points: Points
    min_total_minor: int = Field(default=0, ge=0)


class PreferenceRule(_Rule):
    """Points for each preference the customer shares, once per field."""

    kind: Literal["preference_shared"]
    points_per_field: Points
    fields: list[str] | None = Field(
        default=None, description="Only these fields (default: any field)."
    )


class ReviewRule(_Rule):
    """Points for a verified review, once per review."""

    kind: Literal["verified_review"]
    points: Points


class BirthdayRule(_Rule):
    """Points on the customer's birthday, once a year."""

    kind: Literal["birthday"]
    points: Points


Trigger = Literal["delivery_late", "order_unfulfilled"]


def _both_triggers() -> list[Trigger]:
    return ["delivery_late", "order_unfulfilled"]


class ApologyRule(_Rule):
    """Points when a promise is broken: a late delivery or an unfulfilled order, once per
    order whichever happens (or both)."""

    kind: Literal["apology"]
    points: Points
    on: list[Trigger] = Field(default_factory=_both_triggers, min_length=1)


Rule = Annotated[
    SpendRule | FirstPurchaseRule | PreferenceRule | ReviewRule | BirthdayRule | ApologyRule,
    Field(discriminator="kind"),
]


class RuleSet(StrictModel):
    """The program's earning rules. Ids are unique; a changed rule keeps its id."""

    rules: list[Rule] = Field(max_length=200)

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return rules


_RULE_SET = TypeAdapter(RuleSet)


def parse_rule_set(document: object, *, prefix: tuple[str | int, ...] = ()) -> RuleSet:
    """A rule set from JSON (already decoded), or a 422 problem naming each bad field, such as
    ``rules.2.points_per_unit`` (after ``prefix``, where the rule set sits in a request)."""
    try:
        return _RULE_SET.validate_python(document)
    except ValidationError as failure:
        raise invalid_document(failure, prefix=prefix, locate=_readable) from None


def _readable(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    # The discriminated union adds the kind to the location ("rules.0.spend.points"): drop it.
    kinds = {"spend", "first_purchase", "preference_shared", "verified_review", "birthday"}
    kinds.add("apology")
    return tuple(
        part
        for index, part in enumerate(loc)
        if not (index == 2 and loc[0] == "rules" and part in kinds)
    )


# --- facts and decisions -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_no: int
    sku: str
    quantity: int
    unit_price_minor: int
    category: str | None = None
    brand: str | None = None

    @property
    def total_minor(self) -> int:
        return self.quantity * self.unit_price_minor


def minor_per_unit(currency: str) -> int:
    """Minor units in one unit of ``currency`` ("points per unit" counts in these): 100 for
    EUR, 1 for JPY, 1,000 for KWD, as ISO 4217 sets the minor unit (2 digits for a code it
    does not list)."""
    return int(10 ** minor_unit_digits(currency))


@dataclass(frozen=True, slots=True)
class Fact:
    """Something that may earn points. Orders carry lines; the others a key of their own."""

    kind: FactKind
    customer_id: str
    occurred_at: datetime
    channel: str = "web"
    order_id: str | None = None
    lines: Sequence[OrderLine] = ()
    discount_minor: int = 0
    total_minor: int = 0
    preference_field: str | None = None
    review_id: str | None = None
    # An order's currency and the program's (None: the program's). Amounts in another
    # currency are not converted (Rapport keeps no exchange rates): they earn nothing.
    currency: str | None = None
    program_currency: str | None = None

    @property
    def minor_per_unit(self) -> int:
        """Minor units in one unit of the program's currency (ISO 4217): 100 for EUR, 1 for
        JPY, 1,000 for KWD; 100 where no currency is named."""
        return minor_per_unit(self.program_currency or self.currency or "")

    @property
    def unconverted(self) -> str | None:
        """Why the order's amounts cannot be read in the program's currency, or None."""
        if self.currency and self.program_currency and self.currency != self.program_currency:
            return f"order in {self.currency}, program in {self.program_currency}: no points"
        return None


@dataclass(frozen=True, slots=True)
class Member:
    """What evaluation needs to know of the member, read by the caller beforehand."""

    tier: str | None = None
    # The tier's own points multiplier (a tier benefit), on top of the rules' multipliers.
    tier_multiplier: Decimal = Decimal(1)
    # The paid plan's name where its multiplier won over the tier's (then ``tier_multiplier``
    # is the plan's); None: the tier's.
    multiplier_plan: str | None = None
    earlier_orders: int = 0
    # Points already given under each capped rule in the period containing the fact.
    cap_used: Mapping[str, int] = field(default_factory=dict)
    # (rule id, once key) of awards already made.
    awarded: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    """One rule's verdict on one fact."""

    rule_id: str
    rule_name: str
    kind: str
    fired: bool
    points: int
    why: str
    once_key: str | None = None
    # Points per order line (spend rules), so a return can reverse exactly what its lines earned.
    line_points: Mapping[int, int] = field(default_factory=dict)
    capped: bool = False
    # Spend rules: what counts toward a points-based tier, the points a member with no tier
    # bonus and no paid plan would earn (the rule's category, brand and channel multipliers
    # count; the member's tier or plan multiplier and tier-only multipliers do not).
    qualifying_points: int = 0


# The facts an event type (other than an order) stands for, for the simulators.
EVENT_FACTS: dict[str, FactKind] = {
    "preference_shared": "preference_shared",
    "review_verified": "review_verified",
    "birthday": "birthday",
    "delivery_late": "delivery_late",
    "delivery_failed": "order_unfulfilled",
}

_TRIGGERS: dict[str, frozenset[str]] = {
    "spend": frozenset({"order_placed"}),
    "first_purchase": frozenset({"order_placed"}),
    "preference_shared": frozenset({"preference_shared"}),
    "verified_review": frozenset({"review_verified"}),
    "birthday": frozenset({"birthday"}),
    "apology": frozenset({"delivery_late", "order_unfulfilled"}),
}


def evaluate(rules: RuleSet, fact: Fact, member: Member) -> list[Decision]:
    """A decision for every rule that listens to this kind of fact, in rule order."""
    decisions = []
    for rule in rules.rules:
        if fact.kind not in _TRIGGERS[rule.kind]:
            continue
        decisions.append(_decide(rule, fact, member))
    return decisions


def _decide(rule: Rule, fact: Fact, member: Member) -> Decision:
    def no(why: str, once_key: str | None = None) -> Decision:
        return Decision(rule.id, rule.name, rule.kind, False, 0, why, once_key)

    if not rule.active:
        return no("the rule is switched off")
    if rule.starts_at is not None and fact.occurred_at < rule.starts_at:
        return no(f"the rule starts {rule.starts_at.isoformat()}")
    if rule.ends_at is not None and fact.occurred_at >= rule.ends_at:
        return no(f"the rule ended {rule.ends_at.isoformat()}")
    found = _points(rule, fact, member)
    if isinstance(found, str):
        return no(found)
    points, once_key, why, line_points = found
    if (rule.id, once_key) in member.awarded:
        return no(f"already awarded for {once_key}", once_key)
    if points <= 0:
        return no(why or "nothing to earn on", once_key)
    capped = False
    if rule.cap is not None:
        room = rule.cap.points - member.cap_used.get(rule.id, 0)
        if room <= 0:
            return Decision(
                rule.id,
                rule.name,
                rule.kind,
                False,
                0,
                f"the cap of {rule.cap.points} points per {rule.cap.period} is reached",
                once_key,
                capped=True,
            )
        if points > room:
            why += f"; capped at {room} (cap {rule.cap.points} per {rule.cap.period})"
            line_points = _scaled(line_points, room)
            points, capped = room, True
    qualifying = min(_spend(rule, fact, Member())[0], points) if isinstance(rule, SpendRule) else 0
    return Decision(
        rule.id, rule.name, rule.kind, True, points, why, once_key, line_points, capped, qualifying
    )


def _points(rule: Rule, fact: Fact, member: Member) -> tuple[int, str, str, dict[int, int]] | str:
    """(points, once key, why, points per line) or why the rule does not apply."""
    if isinstance(rule, SpendRule):
        return _spend(rule, fact, member)
    if isinstance(rule, FirstPurchaseRule):
        if member.earlier_orders > 0:
            return "not the customer's first order"
        if fact.unconverted:
            # The program cannot tell what the order bought: it earns nothing, bonus included.
            return fact.unconverted
        if fact.total_minor < rule.min_total_minor:
            return f"the order is under {rule.min_total_minor} minor units"
        return rule.points, FIRST_ORDER, "first order", {}
    if isinstance(rule, PreferenceRule):
        name = fact.preference_field
        if name is None:
            return "no preference field named"
        if rule.fields is not None and name not in rule.fields:
            return f"{name} is not one of the rewarded fields"
        return rule.points_per_field, f"field:{name}", f"shared their {name}", {}
    if isinstance(rule, ReviewRule):
        if fact.review_id is None:
            return "no review named"
        return rule.points, f"review:{fact.review_id}", "verified review", {}
    if isinstance(rule, BirthdayRule):
        year = fact.occurred_at.year
        return rule.points, f"birthday:{year}", f"birthday {year}", {}
    if fact.kind not in rule.on:
        return f"this rule does not apologise for {fact.kind.replace('_', ' ')}"
    if fact.order_id is None:
        return "no order named"
    reason = "late delivery" if fact.kind == "delivery_late" else "unfulfilled order"
    return rule.points, f"order:{fact.order_id}", f"apology for the {reason}", {}


def _spend(rule: SpendRule, fact: Fact, member: Member) -> tuple[int, str, str, dict[int, int]]:
    order_key = f"order:{fact.order_id}"
    if fact.unconverted:
        return 0, order_key, fact.unconverted, {}
    gross = sum(line.total_minor for line in fact.lines)
    if gross <= 0:
        return 0, order_key, "nothing paid", {}
    # The order's discount lowers every line's eligible amount in proportion.
    paid_share = Decimal(max(gross - fact.discount_minor, 0)) / Decimal(gross)
    order_factor = member.tier_multiplier
    applied: list[str] = []
    if member.tier_multiplier != 1:
        applied.append(
            f"{member.tier_multiplier} for plan {member.multiplier_plan}"
            if member.multiplier_plan is not None
            else f"{member.tier_multiplier} for the {member.tier} tier"
        )
    for multiplier in rule.multipliers:
        line_level = multiplier.category is not None or multiplier.brand is not None
        if not line_level and multiplier.matches(None, fact, member.tier):
            order_factor *= multiplier.factor
            applied.append(_describe(multiplier))
    exact: dict[int, Decimal] = {}
    for line in fact.lines:
        if in_any_category(line.category, rule.exclude_categories):
            continue
        factor = order_factor
        for multiplier in rule.multipliers:
            if (multiplier.category or multiplier.brand) and multiplier.matches(
                line, fact, member.tier
            ):
                factor *= multiplier.factor
                described = _describe(multiplier)
                if described not in applied:
                    applied.append(described)
        units = Decimal(line.total_minor) * paid_share / fact.minor_per_unit
        exact[line.line_no] = units * rule.points_per_unit * factor
    total = int(sum(exact.values(), Decimal(0)).to_integral_value(ROUND_FLOOR))
    why = f"{rule.points_per_unit} per currency unit on {len(exact)} line(s)"
    if applied:
        why += ", times " + ", ".join(applied)
    if len(exact) < len(fact.lines):
        why += f"; {len(fact.lines) - len(exact)} excluded line(s)"
    return total, order_key, why, _shares(exact, total)


def _describe(multiplier: Multiplier) -> str:
    for name in ("category", "brand", "channel", "tier"):
        value = getattr(multiplier, name)
        if value is not None:
            return f"{multiplier.factor} for {name} {value}"
    raise AssertionError("a multiplier always names one condition")


def _shares(exact: Mapping[int, Decimal], total: int) -> dict[int, int]:
    """Whole points per line summing to ``total`` (largest remainders get the rounding)."""
    floors = {line: int(value.to_integral_value(ROUND_FLOOR)) for line, value in exact.items()}
    left = total - sum(floors.values())
    by_remainder = sorted(exact, key=lambda line: (floors[line] - exact[line], line))
    for line in by_remainder[:left]:
        floors[line] += 1
    return floors


def _scaled(line_points: Mapping[int, int], total: int) -> dict[int, int]:
    whole = sum(line_points.values())
    if not whole:
        return dict(line_points)
    exact = {line: Decimal(points) * total / whole for line, points in line_points.items()}
    return _shares(exact, total)


def named_categories(rules: RuleSet, *, prefix: str = "") -> list[tuple[str, str]]:
    """(field, category) for every category a rule names: its multipliers and exclusions,
    with the field located as in validation errors (``rules.0.exclude_categories.1``)."""
    named: list[tuple[str, str]] = []
    for index, rule in enumerate(rules.rules):
        if not isinstance(rule, SpendRule):
            continue
        at = f"{prefix}rules.{index}"
        for position, multiplier in enumerate(rule.multipliers):
            if multiplier.category is not None:
                named.append((f"{at}.multipliers.{position}.category", multiplier.category))
        for position, category in enumerate(rule.exclude_categories):
            named.append((f"{at}.exclude_categories.{position}", category))
    return named


def period_start(moment: datetime, period: Period) -> datetime:
    """The start (UTC) of the calendar period that contains ``moment``."""
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def spend_rule_name(currency: str) -> str:
    """The default spend rule's name in a program counting ``currency``: "1 point per euro",
    "1 point per Japanese yen"."""
    return f"1 point per {formatting.currency_unit(currency)}"


def default_rules(currency: str) -> dict[str, object]:
    """The default earning rules (:data:`DEFAULT_RULES`) of a program in ``currency``, the
    spend rule named in it."""
    rules = cast(list[dict[str, object]], DEFAULT_RULES["rules"])
    return {
        "rules": [
            {**rule, "name": spend_rule_name(currency)} if rule["id"] == "base-earn" else rule
            for rule in rules
        ]
    }


DEFAULT_RULES: dict[str, object] = {
    "rules": [
        {
            "id": "base-earn",
            "name": spend_rule_name(formatting.DEFAULT_CURRENCY),
            "kind": "spend",
            "points_per_unit": "1",
            "multipliers": [{"channel": "app", "factor": "1.5"}],
            # Gift cards earn when they are spent, not when they are bought. Name your
            # catalogue's gift-card category here: saving rules warns while no product is in it.
            "exclude_categories": ["Gift cards"],
        },
        {"id": "welcome", "name": "First purchase bonus", "kind": "first_purchase", "points": 200},
        {
            "id": "tell-us",
            "name": "Share your preferences",
            "kind": "preference_shared",
            "points_per_field": 25,
            "cap": {"points": 150, "period": "year"},
        },
        {"id": "review", "name": "Verified review", "kind": "verified_review", "points": 50},
        {"id": "birthday", "name": "Birthday gift", "kind": "birthday", "points": 100},
        {"id": "sorry", "name": "Apology for a broken promise", "kind": "apology", "points": 150},
    ]
}
