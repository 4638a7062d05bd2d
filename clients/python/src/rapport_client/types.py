"""What Rapport's API takes and answers, as TypedDicts (results are the decoded JSON, typed;
nothing is copied into other objects). Field names and types follow the OpenAPI document."""

from __future__ import annotations

from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar

ItemT = TypeVar("ItemT")

Channel = Literal["web", "app", "store", "call_center"]
EventChannel = Literal["web", "app", "store", "call_center", "email"]
ConsentPurpose = Literal[
    "analytics", "personalization", "marketing_email", "marketing_push", "location"
]
IdentityKind = Literal["email", "phone", "loyalty_card", "anonymous_id", "external_id", "device_id"]
Fulfilment = Literal["ship", "pickup_in_store", "in_store"]
Placement = Literal["home", "discover", "product_similar", "product_complements", "cart", "email"]
ReturnReason = Literal[
    "too_small",
    "too_large",
    "damaged",
    "not_as_described",
    "changed_mind",
    "late_delivery",
    "wrong_item",
    "other",
]


class Page(TypedDict, Generic[ItemT]):
    """One page of a cursor-paged list; pass ``next_cursor`` for the next (``None``: last)."""

    items: list[ItemT]
    next_cursor: str | None


# --- Customers ------------------------------------------------------------------------------


class Consent(TypedDict):
    purpose: ConsentPurpose
    granted: bool
    source: str
    updated_at: str


class ConsentChange(TypedDict):
    purpose: ConsentPurpose
    granted: bool
    source: str
    changed_at: str


class Identity(TypedDict):
    kind: IdentityKind
    value: str
    source: str
    created_at: str


class Preference(TypedDict):
    field: str
    value: Any
    source: str
    updated_at: str


class Profile(TypedDict):
    """The customer 360 (``GET /v1/customers/{customer}``)."""

    customer_id: str
    external_id: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    locale: str
    home_city: str | None
    home_latitude: float | None
    home_longitude: float | None
    time_zone: str | None
    created_at: str
    updated_at: str
    consents: list[Consent]
    is_anonymous: bool
    status: str
    attributes: dict[str, Any]
    identities: list[Identity]
    preferences: list[Preference]
    traits: dict[str, Any] | None


class PrivacyRequest(TypedDict):
    customer_id: str
    kind: str
    requested_by: str
    reason: str | None
    requested_at: str
    completed_at: str | None


# --- Events ---------------------------------------------------------------------------------


class Event(TypedDict):
    """A tracking event for :meth:`events.track_batch`; ``event_id`` and ``occurred_at`` are
    filled in (a new UUID, now) when left out."""

    type: str
    channel: EventChannel
    event_id: NotRequired[str]
    occurred_at: NotRequired[str]
    customer_id: NotRequired[str]
    anonymous_id: NotRequired[str]
    properties: NotRequired[dict[str, Any]]
    context: NotRequired[dict[str, Any]]


class EventReceipt(TypedDict):
    event_id: str
    position: int | None  # None: acknowledged, not stored (its person refused analytics)
    duplicate: bool


class BatchItemResult(TypedDict):
    index: int
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    errors: list[dict[str, Any]] | None


class BatchReceipt(TypedDict):
    accepted: int
    duplicates: int
    rejected: int
    results: list[BatchItemResult]


# --- Orders ---------------------------------------------------------------------------------


class OrderLineIn(TypedDict):
    sku: str
    quantity: int
    unit_price_minor: int
    discount_minor: NotRequired[int]


class PaymentIn(TypedDict):
    method: str
    amount_minor: int


class CheckoutLoyaltyIn(TypedDict, total=False):
    """Loyalty at checkout, as ``POST /v1/loyalty/checkout`` answered it."""

    coupons: list[str]
    points_to_use: int
    shipping_before_minor: int


class OrderLine(TypedDict):
    line_no: int
    sku: str
    category: str | None
    quantity: int
    unit_price_minor: int
    discount_minor: int
    total_minor: int
    returned_quantity: int


class StatusChange(TypedDict):
    status: str
    at: str
    note: str | None


class Order(TypedDict):
    order_id: str
    customer_id: str | None
    channel: Channel
    fulfilment: Fulfilment
    store_id: str | None
    status: str
    currency: str
    subtotal_minor: int
    discount_minor: int
    shipping_minor: int
    total_minor: int
    placed_at: str
    promised_delivery: str | None
    delivered_at: str | None
    carrier: str | None
    pickup_code: str | None
    lines: list[OrderLine]
    pickup_qr_url: str | None
    status_history: list[StatusChange]  # oldest first


class ReturnLineIn(TypedDict):
    sku: str
    quantity: int
    reason: ReturnReason
    restock: NotRequired[bool]


class Return(TypedDict):
    return_id: str
    order_id: str
    refund_minor: int
    money_refund_minor: int
    points_refund_minor: int
    lines: list[dict[str, Any]]


# --- Loyalty --------------------------------------------------------------------------------


class Lot(TypedDict):
    lot_id: int
    amount: int
    remaining: int
    earned_at: str
    expires_at: str
    order_id: str | None


class Member(TypedDict):
    customer_id: str
    balance: int
    debt: int
    lots: list[Lot]  # the 20 soonest to expire
    more_lots: int  # open lots not in ``lots``


class Movement(TypedDict):
    """One line of a member's statement (ledger)."""

    transaction_id: int
    kind: str
    points: int
    debt_change: int
    reason: str
    order_id: str | None
    rule_id: str | None
    created_at: str


class Posted(TypedDict):
    """What an earn, redeem or adjustment posted, with the balance after it."""

    transaction_id: int
    customer_id: str
    kind: str
    points: int
    balance: int
    debt: int
    debt_change: int
    expires_at: str | None
    written_off: int


# --- Recommendations ------------------------------------------------------------------------


class Recommendation(TypedDict):
    sku: str
    name: str
    category: str
    price_minor: int
    currency: str | None  # ISO 4217 code of price_minor
    score: float
    reason: str
    explanation: str


class Recommendations(TypedDict):
    placement: Placement
    model_version: str | None
    personalized: bool
    store_id: str | None
    items: list[Recommendation]
