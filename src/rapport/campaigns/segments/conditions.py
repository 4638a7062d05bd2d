"""What a segment is: ``match`` (all or any) over a list of conditions, each named by its
``kind``. Stored as JSON in ``campaign_segments.definition``; validated here, so a bad one is
refused with the condition and field named, dotted as the API names every field
(``conditions.2.days``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from rapport.platform.errors import FieldInvalid, InvalidInput, json_pointer, pinpointed
from rapport.platform.schemas import CONTROL_CHARACTER_CODE, control_character_message

MAX_CONDITIONS = 20
MAX_DAYS = 3650
CONSENT_PURPOSES = ("analytics", "personalization", "marketing_email", "marketing_push", "location")
VALUE_TIERS = ("top1", "top5", "top20", "rest")
NUMERIC_TRAITS = ("order_count", "spend_minor", "event_count", "points_balance")
DATE_TRAITS = ("last_order_at", "first_order_at", "last_seen_at", "first_seen_at")
TEXT_TRAITS = ("locale", "home_city", "time_zone")
Days = Annotated[int, Field(ge=1, le=MAX_DAYS, description="A window: the last N days")]
Identifier = Annotated[str, Field(min_length=1, max_length=100)]
Score = Annotated[int, Field(ge=1, le=5)]


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class TraitCondition(_Condition):
    """A trait of the profile compared with a value.

    ``field``: ``order_count``, ``spend_minor``, ``event_count``, ``points_balance``
    (numbers); ``last_order_at``, ``first_order_at``, ``last_seen_at``, ``first_seen_at``
    (compared as whole days ago); ``channels`` (``contains``); ``locale``, ``home_city``,
    ``time_zone`` (text: ``eq``, ``ne``, ``in``); ``attributes.<name>`` (a CRM attribute or
    custom trait, by its type: text or booleans with ``eq``, ``ne``, ``in``; numbers with
    every comparison)."""

    kind: Literal["trait"]
    field: Annotated[str, Field(min_length=1, max_length=120)]
    op: Literal["eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "contains"]
    # bool first: JSON true stays a boolean (an attribute may be one), never the number 1.
    value: bool | int | float | str | list[bool | int | float | str]

    @model_validator(mode="after")
    def _fits_field(self) -> TraitCondition:
        field, op, value = self.field, self.op, self.value
        numeric = field in NUMERIC_TRAITS or field in DATE_TRAITS
        if numeric:
            if op in ("in", "contains"):
                raise FieldInvalid("op", f"{field} takes eq, ne, lt, lte, gt, gte or between")
            if op == "between":
                numbers = (
                    [v for v in value if isinstance(v, int | float)]
                    if isinstance(value, list)
                    else []
                )
                if len(numbers) != 2 or len(numbers) != len(value) or numbers[0] > numbers[1]:  # type: ignore[arg-type]
                    raise FieldInvalid("value", "between takes [low, high] numbers, low <= high")
            elif isinstance(value, list | str | bool):
                raise FieldInvalid("value", f"{field} compares with a number")
            if field in DATE_TRAITS:
                days = value if isinstance(value, list) else [value]
                if any(not isinstance(v, int) or v < 0 or v > MAX_DAYS for v in days):
                    raise FieldInvalid("value", f"days ago, a whole number from 0 to {MAX_DAYS}")
            return self
        if field == "channels":
            if op != "contains" or not isinstance(value, str):
                raise FieldInvalid("op", 'channels takes "contains" with one channel name')
            return self
        attribute = field.startswith("attributes.") and len(field) > 11
        if attribute and op in ("lt", "lte", "gt", "gte", "between"):
            bounds = value if op == "between" and isinstance(value, list) else [value]
            numbers = [v for v in bounds if isinstance(v, int | float) and not isinstance(v, bool)]
            if len(numbers) != len(bounds) or len(bounds) != (2 if op == "between" else 1):
                raise FieldInvalid(
                    "value",
                    f"{op} on {field} takes a number"
                    + ("s [low, high]" if op == "between" else ""),
                )
            if op == "between" and numbers[0] > numbers[1]:
                raise FieldInvalid("value", "between takes [low, high] numbers, low <= high")
            return self
        if field in TEXT_TRAITS or attribute:
            if op not in ("eq", "ne", "in"):
                raise FieldInvalid("op", f"{field} takes eq, ne or in")
            if op == "in" and (not isinstance(value, list) or not value):
                raise FieldInvalid("value", "in takes a non-empty list")
            if op != "in" and isinstance(value, list):
                raise FieldInvalid("value", f"{op} takes one value")
            return self
        known = [*NUMERIC_TRAITS, *DATE_TRAITS, "channels", *TEXT_TRAITS, "attributes.<name>"]
        raise FieldInvalid("field", f"unknown trait {field!r}; known: {', '.join(known)}")


class ConsentCondition(_Condition):
    """The customer has granted (or, with ``granted`` false, has not granted) a consent."""

    kind: Literal["consent"]
    purpose: Literal[
        "analytics", "personalization", "marketing_email", "marketing_push", "location"
    ]
    granted: bool = True


class TierCondition(_Condition):
    """The customer's loyalty tier is one of ``tiers`` (the base tier holds everyone without
    a standing)."""

    kind: Literal["tier"]
    tiers: Annotated[list[Identifier], Field(min_length=1, max_length=20)]


class MembershipCondition(_Condition):
    """A paying member now (of one of ``plans`` when given); ``member`` false: not one."""

    kind: Literal["membership"]
    member: bool = True
    plans: Annotated[list[Identifier], Field(min_length=1, max_length=20)] | None = None


class RfmCondition(_Condition):
    """RFM scores (1-5, 5 best) within inclusive ranges, against the population's quintile
    boundaries; at least one of recency, frequency, monetary."""

    kind: Literal["rfm"]
    recency: tuple[Score, Score] | None = None
    frequency: tuple[Score, Score] | None = None
    monetary: tuple[Score, Score] | None = None

    @model_validator(mode="after")
    def _ranges(self) -> RfmCondition:
        given = {
            name: getattr(self, name)
            for name in ("recency", "frequency", "monetary")
            if getattr(self, name) is not None
        }
        if not given:
            raise FieldInvalid("recency", "give at least one of recency, frequency, monetary")
        for name, (low, high) in given.items():
            if low > high:
                raise FieldInvalid(name, "[low, high] with low <= high")
        return self


class PredictedValueCondition(_Condition):
    """Predicted value over the next 365 days (minor units), inclusive bounds."""

    kind: Literal["predicted_value"]
    min_minor: Annotated[int, Field(ge=0)] | None = None
    max_minor: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> PredictedValueCondition:
        if self.min_minor is None and self.max_minor is None:
            raise FieldInvalid("min_minor", "give min_minor, max_minor or both")
        low, high = self.min_minor, self.max_minor
        if low is not None and high is not None and low > high:
            raise FieldInvalid("max_minor", "must not be below min_minor")
        return self


class ValueTierCondition(_Condition):
    """The customer's value tier: top1, top5, top20 (percent of customers by predicted value)
    or rest."""

    kind: Literal["value_tier"]
    tiers: Annotated[list[Literal["top1", "top5", "top20", "rest"]], Field(min_length=1)]


class PAliveCondition(_Condition):
    """The probability that the customer is still active (0..1), inclusive bounds."""

    kind: Literal["p_alive"]
    min: Annotated[float, Field(ge=0, le=1)] | None = None
    max: Annotated[float, Field(ge=0, le=1)] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> PAliveCondition:
        if self.min is None and self.max is None:
            raise FieldInvalid("min", "give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise FieldInvalid("max", "must not be below min")
        return self


class BoughtCategoryCondition(_Condition):
    """Bought something in ``category`` (or under it: "Wine" holds "Wine/Red") in the last
    ``days`` days."""

    kind: Literal["bought_category"]
    category: Annotated[str, Field(min_length=1, max_length=300)]
    days: Days


class SpentMoreThanCondition(_Condition):
    """Spent more than ``amount_minor`` in the last ``days`` days (in ``category`` only, when
    given)."""

    kind: Literal["spent_more_than"]
    amount_minor: Annotated[int, Field(ge=0)]
    days: Days
    category: Annotated[str, Field(min_length=1, max_length=300)] | None = None


class EventCondition(_Condition):
    """Did (or, with ``did`` false, did not do) event ``type`` at least ``min_count`` times in
    the last ``days`` days."""

    kind: Literal["event"]
    type: Annotated[str, Field(min_length=1, max_length=60)]
    did: bool = True
    min_count: Annotated[int, Field(ge=1, le=100_000)] = 1
    days: Days


class StoreCondition(_Condition):
    """``by`` preferred: the store the customer visits most is ``store_id``; ``by`` nearest:
    the store nearest the customer's home is ``store_id``."""

    kind: Literal["store"]
    store_id: Identifier
    by: Literal["preferred", "nearest"] = "preferred"


class NearCondition(_Condition):
    """Within ``radius_km`` of a point (``latitude``/``longitude``, or a store's coordinates
    with ``store_id``), by the customer's last known location (with location consent), home
    address and/or home store (the preferred store's coordinates)."""

    kind: Literal["near"]
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    store_id: Identifier | None = None
    radius_km: Annotated[float, Field(gt=0, le=20_000)]
    use: Annotated[
        list[Literal["last_location", "home", "home_store"]], Field(min_length=1, max_length=3)
    ] = ["last_location", "home", "home_store"]

    @model_validator(mode="after")
    def _one_point(self) -> NearCondition:
        has_point = self.latitude is not None or self.longitude is not None
        if has_point and self.store_id is not None:
            raise FieldInvalid("store_id", "give latitude and longitude, or store_id, not both")
        if self.store_id is None and (self.latitude is None or self.longitude is None):
            missing = "latitude" if self.latitude is None else "longitude"
            raise FieldInvalid(missing, "give latitude and longitude, or store_id")
        return self


Condition = Annotated[
    TraitCondition
    | ConsentCondition
    | TierCondition
    | MembershipCondition
    | RfmCondition
    | PredictedValueCondition
    | ValueTierCondition
    | PAliveCondition
    | BoughtCategoryCondition
    | SpentMoreThanCondition
    | EventCondition
    | StoreCondition
    | NearCondition,
    Field(discriminator="kind"),
]
CONDITION_KINDS = (
    "trait",
    "consent",
    "tier",
    "membership",
    "rfm",
    "predicted_value",
    "value_tier",
    "p_alive",
    "bought_category",
    "spent_more_than",
    "event",
    "store",
    "near",
)


# Which conditions profile the customer: those that read what they bought, browsed, visited or
# were scored on (their purchase and browsing history), so select a customer only with their
# ``personalization`` consent (docs/campaigns-segments.md#consent-for-profiling). What they told
# (city, language, time zone, a CRM attribute), a consent itself, their loyalty standing (tier,
# points, membership: the program they joined shows them these) and where they live (with
# ``location``, asked by the condition itself) select without it. Every kind is named here,
# ``True`` (behavioural), ``False`` (not), or a function of the condition where it depends on
# its field or sources; a kind missing from this table fails the test that lists the union.
BEHAVIOURAL_TRAITS = (
    "order_count",
    "spend_minor",
    "event_count",
    "last_order_at",
    "first_order_at",
    "last_seen_at",
    "first_seen_at",
    "channels",
)
PROFILING_PURPOSE = "personalization"


def _trait_behavioural(condition: Any) -> bool:
    return bool(condition.field in BEHAVIOURAL_TRAITS)


def _store_behavioural(condition: Any) -> bool:
    return bool(condition.by == "preferred")  # the store visited most; nearest: by home


BEHAVIOURAL: dict[str, bool | Any] = {
    "trait": _trait_behavioural,
    "consent": False,
    "tier": False,
    "membership": False,
    "rfm": True,
    "predicted_value": True,
    "value_tier": True,
    "p_alive": True,
    "bought_category": True,
    "spent_more_than": True,
    "event": True,
    "store": _store_behavioural,
    # per source, in evaluation._near_parts: home_store (the store visited most) picks only
    # those with personalization; last_location and home need ``location`` (not profiling)
    "near": False,
}


def is_behavioural(condition: Any) -> bool:
    """Whether ``condition`` selects customers by their purchase or browsing history (so only
    those who granted ``personalization``). A ``near`` condition is not, but its
    ``home_store`` source is cut to those with the grant where it is evaluated."""
    rule = BEHAVIOURAL[condition.kind]
    return bool(rule(condition)) if callable(rule) else bool(rule)


class SegmentDefinition(BaseModel):
    """A segment: customers matching ``all`` of the conditions, or ``any`` of them; with no
    conditions, every active customer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: Literal["all", "any"] = "all"
    conditions: Annotated[list[Condition], Field(max_length=MAX_CONDITIONS)] = []

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


_DEFINITION = TypeAdapter(SegmentDefinition)


def _document_path(raw: Any, loc: tuple[str | int, ...], *, missing: bool) -> tuple[str | int, ...]:
    """pydantic's location as the path the document really has (``("conditions", 2, "days")``):
    the tags pydantic adds for a union's member (a condition's kind, ``list[...]`` or ``str``
    for a trait's value) are no part of the JSON and are dropped; a field left out (``missing``)
    is named last."""
    path: list[str | int] = []
    current = raw
    for position, part in enumerate(loc):
        in_object = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_object or in_list:
            path.append(part)
            current = current[part]
        elif isinstance(current, dict) and missing and position == len(loc) - 1:
            path.append(part)
    return tuple(path)


def field_name(path: Sequence[str | int]) -> str:
    """A path in the document as the API names every field, dotted: ``conditions.2.days``."""
    return ".".join(str(part) for part in path)


def _error(path: Sequence[str | int], message: str, code: str) -> dict[str, Any]:
    return {
        "field": field_name(path) or "definition",
        "pointer": json_pointer(path),
        "message": message,
        "code": code,
    }


def _control_characters(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[dict[str, Any]]:
    """An error for every text (or key) in the raw document holding a control character,
    naming where it is (``conditions.1.category``; a key, the object holding it)."""
    if isinstance(value, str):
        message = control_character_message(value)
        if message is not None:
            yield _error(path, message, CONTROL_CHARACTER_CODE)
    elif isinstance(value, dict):
        for key, item in value.items():
            key_message = control_character_message(str(key))
            if key_message is not None:
                yield _error(path, f"A field's name: {key_message}", CONTROL_CHARACTER_CODE)
                continue
            yield from _control_characters(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _control_characters(item, (*path, index))


def parse_definition(raw: Any) -> SegmentDefinition:
    """Validate a segment's JSON. Raises ``InvalidInput`` naming the field of the first
    problem (``conditions.2.days``), with every problem in ``errors`` (each with its JSON
    pointer in the document, ``/conditions/2/days``); text holding a control character is
    refused at its own field (``conditions.1.category``)."""
    if isinstance(raw, SegmentDefinition):
        return raw
    if not isinstance(raw, dict):
        raise InvalidInput("A segment definition is a JSON object", field="definition")
    # Control characters first (PostgreSQL stores no NUL), each named at its own field.
    errors = list(_control_characters(raw))
    refused = {error["field"] for error in errors}
    try:
        definition = _DEFINITION.validate_python(raw)
    except ValidationError as failure:
        for detail in failure.errors(include_url=False, include_input=False):
            where = tuple(detail["loc"])
            loc, message = pinpointed(detail)
            named = loc[len(where) :]  # the field a FieldInvalid names
            if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
                message = f"Unknown condition kind; known: {', '.join(CONDITION_KINDS)}"
                named = (*named, "kind")
            path = _document_path(raw, where, missing=detail["type"] == "missing") + named
            error = _error(path, message, detail["type"])
            if error["field"] not in refused:
                errors.append(error)
    else:
        if not errors:
            return definition
    first = errors[0]
    raise InvalidInput(
        f"{first['field']}: {first['message']}", field=first["field"], errors=errors
    ) from None
