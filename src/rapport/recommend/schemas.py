"""Recommendation shapes on the wire."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.platform import clock
from rapport.platform.errors import FieldInvalid
from rapport.platform.schemas import StrictModel

MAX_CART_ITEMS = 100
MAX_SKU_LENGTH = 64
Placement = Literal["home", "discover", "product_similar", "product_complements", "cart", "email"]
Action = Literal["pin", "boost", "bury", "exclude", "filter"]
Attribute = Literal["category", "brand", "country_of_origin"]
# The devices a request may name (ranking.DEVICE_CHANNELS maps each to its sales channel).
Device = Literal["mobile", "tablet", "app", "desktop", "pos"]
Sku = Field(min_length=1, max_length=64)
# The ranges of the query's numbers, each refused with the whole range.
QUERY_RANGES = {"lat": (-90.0, 90.0), "lon": (-180.0, 180.0), "margin_weight": (0.0, 1.0)}
# The moments a request may be asked for (`at`): from the Unix epoch to a day ahead (a
# storefront's clock a little fast, a page prepared for tomorrow morning).
EARLIEST_AT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_AT_AHEAD = timedelta(days=1)


class RecommendationQuery(BaseModel):
    """The query string of ``GET /v1/recommendations`` (unknown parameters are ignored)."""

    placement: Placement = Field(description="Where the items will be shown")
    customer_id: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=customers.CUSTOMER_REF_MAX_LENGTH,
            description=customers.CUSTOMER_REF_DESCRIPTION,
        ),
    ] = None
    anonymous_id: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    item_id: Annotated[
        str | None,
        Field(min_length=1, max_length=64, description="The product on the page (product_*)"),
    ] = None
    cart: Annotated[
        # Each value may hold several SKUs joined with commas: lengths are checked per SKU.
        list[Annotated[str, Field(max_length=MAX_CART_ITEMS * (MAX_SKU_LENGTH + 1))]] | None,
        Field(
            max_length=MAX_CART_ITEMS,
            description="SKUs in the cart: repeat the key (cart=A&cart=B) or separate them "
            "with commas (cart=A,B)",
        ),
    ] = None
    limit: Annotated[int, Field(ge=1, le=50)] = 10
    store_id: Annotated[
        str | None,
        Field(min_length=1, max_length=40, description="Only items in stock at this store"),
    ] = None
    lat: Annotated[
        float | None,
        Field(ge=-90, le=90, description="Latitude; with lon, binds to the nearest store"),
    ] = None
    lon: Annotated[
        float | None,
        Field(ge=-180, le=180, description="Longitude; with lat, binds to the nearest store"),
    ] = None
    device: Annotated[
        Device | None,
        Field(description="Favours categories that sell on this device's channel"),
    ] = None
    at: Annotated[
        AwareDatetime | None,
        Field(
            description="Moment of the request (ISO 8601 with offset), from "
            "1970-01-01T00:00:00Z to a day after now; default: now"
        ),
    ] = None
    margin_weight: Annotated[
        float, Field(ge=0, le=1, description="How much margin counts (0: not at all)")
    ] = 0.0
    exclude_purchased: bool = Field(
        default=False,
        description="Only items the customer has never bought (and the blend weighed for "
        "discovery); the `discover` placement always does this. Meaningful only for a known "
        "customer whose answer is personal (`customer_id`, or an `anonymous_id` linked to "
        "one, with `personalization` consent): for anyone else there is no purchase to leave "
        "out, and the answer is the one without it",
    )

    @field_validator("cart")
    @classmethod
    def _cart_items(cls, cart: list[str] | None) -> list[str] | None:
        # Storefronts send ``cart=`` for an empty cart: a blank SKU is no item. A SKU never
        # holds a comma, so ``cart=A,B`` (how many clients join a list) is the two items; read
        # as one unknown SKU it answered an empty list without saying why.
        items = [sku.strip() for value in cart or () for sku in value.split(",") if sku.strip()]
        if len(items) > MAX_CART_ITEMS:
            raise ValueError(f"at most {MAX_CART_ITEMS} cart items, not {len(items)}")
        for sku in items:
            if len(sku) > MAX_SKU_LENGTH:
                raise ValueError(
                    f"a SKU has at most {MAX_SKU_LENGTH} characters: {sku[:20]}… has {len(sku)}"
                )
        return items or None

    @field_validator("lat", "lon", "margin_weight", mode="before")
    @classmethod
    def _number_in_range(cls, value: object, info: ValidationInfo) -> object:
        # NaN compares as neither below nor above a bound: pydantic's own check then said
        # "should be less than or equal to 1" of it. Every value out of range, NaN, an
        # infinity or a word, is told the whole range instead.
        low, high = QUERY_RANGES[str(info.field_name)]
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = math.nan
        if not low <= number <= high:
            raise ValueError(f"Input should be a number from {low:g} to {high:g}")
        return value

    @field_validator("at")
    @classmethod
    def _moment_in_range(cls, at: datetime | None) -> datetime | None:
        # A moment far from now reads nothing (no browsing, no rule that runs then) and
        # overflowed the windows measured back from it.
        if at is not None and not EARLIEST_AT <= at <= clock.now() + LATEST_AT_AHEAD:
            raise ValueError(
                f"Input should be a moment from {EARLIEST_AT:%Y-%m-%dT%H:%M:%SZ} to a day after now"
            )
        return at

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, device: object) -> object:
        # Mobile and mobile are one device, as ranking always read them.
        return device.strip().lower() if isinstance(device, str) else device

    @model_validator(mode="after")
    def _point(self) -> RecommendationQuery:
        # Half a point binds to no store: refused rather than quietly ignored.
        if (self.lat is None) != (self.lon is None):
            missing = "lat" if self.lat is None else "lon"
            raise FieldInvalid(missing, "lat and lon go together: give both, or neither")
        return self


class TrainIn(StrictModel):
    """``POST /v1/recommendations/models`` takes no settings: send no body, or ``{}``."""


_ONE_SKU = "a pin places one sku"
_POSITION = "only a pin has one"
_FACTOR = "only boost and bury have one"
# What each action ignores, in the order the form shows the fields, and why.
NOT_TAKEN: dict[str, dict[str, str]] = {
    "pin": {"attribute": _ONE_SKU, "value": _ONE_SKU, "factor": _FACTOR},
    "boost": {"position": _POSITION},
    "bury": {"position": _POSITION},
    "exclude": {"position": _POSITION, "factor": _FACTOR},
    "filter": {
        "sku": "a filter keeps the items whose attribute has a value",
        "position": _POSITION,
        "factor": _FACTOR,
    },
}


# The factors of a boost (score x factor) and a bury (score ÷ factor) that mean something: a
# tenth more or less at least (1 does nothing), a hundredfold at most (beyond, a boost buries
# everything else and a bury hides the item, which is what exclude is for).
FACTOR_RANGE = (1.1, 100.0)


def factor_problem(action: object, factor: object) -> str | None:
    """Why a boost's or bury's factor means nothing or hides what it says, saying what to use
    instead; None when it is in :data:`FACTOR_RANGE` (or the action takes no factor)."""
    if action not in ("boost", "bury") or not isinstance(factor, int | float):
        return None
    low, high = FACTOR_RANGE
    if low <= factor <= high:
        return None
    word = "multiplies" if action == "boost" else "divides"
    # What a factor beyond the range amounts to: a boost puts items first, a bury hides them.
    first, hide = "to put the items first use a pin", "to never show the items use exclude"
    if factor < 1:
        other, way = ("bury", "lower") if action == "boost" else ("boost", "raise")
        instead = f"to {way} items use {other} with {1 / factor:.3g}"
        if 1 / factor > high:
            instead = hide if action == "boost" else first
    elif factor < low:
        instead = f"a factor this close to 1 changes (almost) nothing: use {low:g} or more"
    else:
        instead = first if action == "boost" else hide
    # The factor as sent: short when that is exact (1, 1e-300), never rounded into the range
    # it is refused for (100.0001 is not "100", 1.0999999 not "1.1").
    sent = f"{factor:g}" if float(f"{factor:g}") == factor else repr(float(factor))
    return f"{action} {word} the score by a factor from {low:g} to {high:g}, not {sent}: {instead}"


def rule_value(attribute: object, value: str) -> str:
    """A rule's value as it is stored and compared: a category path loses any trailing ``/``
    (``Wine/`` is ``Wine``, ``Wine/Red/`` is ``Wine/Red``), which matching always ignored and
    no product's path ends in; anything else is kept as written."""
    if attribute == "category":
        return value.strip().rstrip(catalog.CATEGORY_SEPARATOR)
    return value


class RuleIn(StrictModel):
    """A merchandising rule. ``pin`` needs ``sku`` and ``position``; ``boost`` and ``bury``
    need ``factor`` and either ``sku`` or ``attribute`` + ``value``; ``exclude`` needs ``sku``
    or ``attribute`` + ``value``; ``filter`` (keep only matching items) needs ``attribute`` +
    ``value``. A category value matches that category and everything under it (a trailing
    ``/`` is dropped). A setting the action does not take (a boost's position, a pin's
    attribute) is refused."""

    name: str = Field(min_length=1, max_length=200, examples=["Summer rosé on the home page"])
    action: Action
    placement: Placement | None = Field(default=None, description="Default: every placement")
    segment: str | None = Field(
        default=None,
        min_length=1,
        max_length=60,
        description=(
            "Who the rule applies to: `customers` (a known customer), `anonymous` (a visitor"
            " not identified) or a loyalty tier id; default: everyone"
        ),
    )
    sku: str | None = Field(default=None, min_length=1, max_length=64)
    attribute: Attribute | None = None
    value: str | None = Field(default=None, min_length=1, max_length=300)
    position: int | None = Field(default=None, ge=1, le=100)
    factor: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="boost: the score times this; bury: the score divided by it; from 1.1 to 100",
    )
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    active: bool = True

    @field_validator("factor")
    @classmethod
    def _factor(cls, factor: float | None, info: ValidationInfo) -> float | None:
        problem = factor_problem(info.data.get("action"), factor)
        if problem is not None:
            raise ValueError(problem)
        return factor

    @field_validator("value")
    @classmethod
    def _value(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        kept = rule_value(info.data.get("attribute"), value)
        if not kept:
            raise ValueError("a category path, such as 'Wine' or 'Wine/Red'")
        return kept

    @model_validator(mode="after")
    def _complete(self) -> RuleIn:
        # A setting the action ignores would be kept and shown ("boost at 3") while doing
        # nothing: refused, naming it.
        problems = rule_problems({name: getattr(self, name) for name in type(self).model_fields})
        if problems:
            field, message = problems[0]
            raise FieldInvalid(field, message)
        return self


def rule_problems(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every setting a rule's action refuses or lacks, as ``(field, why)``, at most one per
    field, in the order :class:`RuleIn` checks them (it refuses the first): a form shows them
    all at once. ``settings`` holds a rule's settings, ``None`` (or absent) where not given;
    only whether each is given counts, and the moments' order when both are datetimes."""
    action = settings.get("action")
    if action not in NOT_TAKEN:
        return []
    problems: dict[str, str] = {}
    refused = NOT_TAKEN[action]
    for name, why in refused.items():
        if settings.get(name) is not None:
            problems[name] = f"{action} takes no {name}: {why}"

    # What the action takes, a refused setting counted as not given: its own message says it all.
    def given(name: str) -> bool:
        return name not in refused and settings.get(name) is not None

    def problem(field: str, message: str) -> None:
        problems.setdefault(field, message)

    if given("attribute") != given("value"):
        problem("value" if given("attribute") else "attribute", "attribute and value go together")
    if action == "pin":
        for name in ("sku", "position"):
            if not given(name):
                problem(name, "a pin needs sku and position")
    if action in ("boost", "bury") and not given("factor"):
        problem("factor", f"{action} needs factor")
    if action in ("boost", "bury", "exclude") and given("sku") == given("attribute"):
        problem("sku", f"{action} needs either sku or attribute and value")
    if action == "filter" and not given("attribute"):
        problem("attribute", "filter needs attribute and value")
        if not given("value"):
            problem("value", "filter needs attribute and value")
    starts, ends = settings.get("starts_at"), settings.get("ends_at")
    if isinstance(starts, datetime) and isinstance(ends, datetime) and ends <= starts:
        problem("ends_at", "must be after starts_at")
    return list(problems.items())


class RuleOut(StrictModel):
    id: int
    name: str
    action: Action
    placement: Placement | None
    segment: str | None
    sku: str | None
    attribute: Attribute | None
    value: str | None
    position: int | None
    factor: float | None
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


class RuleChangeOut(StrictModel):
    rule_id: int
    change: str
    changed_by: str
    changed_at: datetime
    before: dict[str, object] | None
    after: dict[str, object] | None


class Recommendation(StrictModel):
    sku: str
    name: str
    category: str
    price_minor: int = Field(description="The catalogue's price now, in minor units of currency")
    currency: str | None = Field(
        description="ISO 4217 code of price_minor, the catalogue product's currency"
    )
    score: float
    reason: str = Field(
        description="bought_together, similar, buy_again, because_you_bought, "
        "customers_like_you, popular_near_you, popular_in_tier, trending, popular, pinned, and "
        "for consenting customers' browsing: recently_viewed, in_your_basket, "
        "because_you_viewed, goes_with_your_basket"
    )
    explanation: str


class Recommendations(StrictModel):
    placement: Placement
    model_version: str | None = Field(
        description="The model that answered; null (and no items) before the first training"
    )
    personalized: bool = Field(
        description="False when the customer is unknown or has not consented to personalisation"
    )
    store_id: str | None
    items: list[Recommendation]


class ModelVersionOut(StrictModel):
    version: str
    trained_at: datetime
    customers: int
    items: int
    purchases: int
    train_seconds: float
    metrics: dict[str, Any] = Field(
        description="How the version measured on the history's last weeks: per protocol "
        "(`repeat`, `discover`) the customers scored, each part's Recall@20 alone, the weights "
        "chosen (with `season`, the power of the in-season boost; 0: none) and the served "
        "blend's Recall@20"
    )
    active: bool


class TrainOut(StrictModel):
    job_id: int
