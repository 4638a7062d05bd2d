"""The events the orders domain appends to the log: one class per event type.

These are the only order shapes other domains read (customer traits, loyalty earning and its
return reversal, survey triggers). Orders placed through the API and orders loaded from history
(imports, the demo) append the same :class:`OrderPlaced`; a value the history does not record
(a discount, points paid) is stored as ``0``, never left out.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from rapport.platform.domain_events import DomainEvent


class PlacedLine(BaseModel):
    """One line of a placed order as logged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line_no: int
    sku: str
    category: str | None
    quantity: int
    unit_price_minor: int
    discount_minor: int = 0


class OrderPlaced(DomainEvent):
    """An order from any channel, with its lines and their categories: profile traits count it,
    loyalty earns points on what was paid in money (total less discounts and points paid)."""

    event_type: ClassVar[str] = "order_placed"
    domain: ClassVar[str] = "orders"

    order_id: str
    total_minor: int
    discount_minor: int = 0
    shipping_minor: int = 0
    points_payment_minor: int = 0
    currency: str
    store_id: str | None
    fulfilment: str
    lines: list[PlacedLine]


class OrderCollected(DomainEvent):
    """A pick-up-in-store order handed over at the till (the pick-up code matched)."""

    event_type: ClassVar[str] = "order_collected"
    domain: ClassVar[str] = "orders"

    order_id: str
    store_id: str


class OrderCancelled(DomainEvent):
    """An order called off before it was handed over (not shipped, delivered or collected):
    traits take it off the customer's orders and spend, loyalty takes back the points it
    earned and gives back the points it was paid with."""

    event_type: ClassVar[str] = "order_cancelled"
    domain: ClassVar[str] = "orders"

    order_id: str
    reason: str | None
    total_minor: int
    """The order's total, money and points together, as placed."""
    points_paid_minor: int = 0
    """The order's points payment, all of which the member gets back."""
    currency: str
    store_id: str | None
    fulfilment: str
    released: bool
    """A pick-up's units reserved at ``store_id`` were released (False for other orders)."""


class DeliveryStatusChanged(DomainEvent):
    """Shared shape of a carrier or warehouse update for a shipped order (not appended itself:
    each status has its own event type below)."""

    order_id: str
    carrier: str | None
    # As logged since the first release: the promised date as text (``str(date)``).
    promised_delivery: str
    note: str | None


class OrderPacked(DeliveryStatusChanged):
    """A shipped order was packed at the warehouse."""

    event_type: ClassVar[str] = "order_packed"
    domain: ClassVar[str] = "orders"


class OrderShipped(DeliveryStatusChanged):
    """A shipped order left with its carrier."""

    event_type: ClassVar[str] = "order_shipped"
    domain: ClassVar[str] = "orders"


class OrderOutForDelivery(DeliveryStatusChanged):
    """The carrier is out delivering the order today."""

    event_type: ClassVar[str] = "order_out_for_delivery"
    domain: ClassVar[str] = "orders"


class OrderDelivered(DeliveryStatusChanged):
    """The order reached the customer (after-delivery surveys react to it)."""

    event_type: ClassVar[str] = "order_delivered"
    domain: ClassVar[str] = "orders"


class DeliveryDelayed(DeliveryStatusChanged):
    """The carrier reported a delay."""

    event_type: ClassVar[str] = "delivery_delayed"
    domain: ClassVar[str] = "orders"


class DeliveryFailed(DeliveryStatusChanged):
    """The carrier could not deliver the order."""

    event_type: ClassVar[str] = "delivery_failed"
    domain: ClassVar[str] = "orders"


DELIVERY_STATUS_EVENTS: dict[str, type[DeliveryStatusChanged]] = {
    "packed": OrderPacked,
    "shipped": OrderShipped,
    "out_for_delivery": OrderOutForDelivery,
    "delivered": OrderDelivered,
    "delayed": DeliveryDelayed,
    "failed": DeliveryFailed,
}


class DeliveryLate(DomainEvent):
    """A shipped order missed (or will miss) its promised date, logged once per order: the
    loyalty apology rule reacts to it."""

    event_type: ClassVar[str] = "delivery_late"
    domain: ClassVar[str] = "orders"

    order_id: str
    # As logged since the first release: the promised date as text (``str(date)``).
    promised_delivery: str
    reason: str
    failed: bool = False
    """The delivery failed (the order's status is ``failed``): the order is unfulfilled, not
    only late, and the loyalty apology rule counts it as ``order_unfulfilled``. False in events
    logged before December 2026 (their reason said "delivery failed")."""


class OrderReadyForPickup(DomainEvent):
    """A pick-up-in-store order waits at its store: the customer is told where, and until when
    it is kept (campaigns sends the notice). Logged when Rapport records the order (the moment
    it is known to be waiting, however late a till sent it), not at ``placed_at``; an order
    whose ``collect_by`` had already passed when recorded is never ready and logs none."""

    event_type: ClassVar[str] = "order_ready_for_pickup"
    domain: ClassVar[str] = "orders"

    order_id: str
    store_id: str
    store_name: str
    collect_by: str
    """The last day it is kept, as text (``str(date)``, at the order's offset)."""
    placed_at: str | None = None
    """When the order was placed (ISO 8601, UTC); None in events logged before December 2026,
    which occurred at it."""


class OrderNotCollected(DomainEvent):
    """A pick-up order's collection deadline passed: it was cancelled (``order_cancelled``,
    logged just before, released its units and takes back its points) and the customer is
    told."""

    event_type: ClassVar[str] = "order_not_collected"
    domain: ClassVar[str] = "orders"

    order_id: str
    store_id: str
    store_name: str
    collect_by: str


class ReturnedLine(BaseModel):
    """Units of one order line brought back. ``line_no`` is ``None`` for a returned SKU that an
    imported order's lines do not hold; ``refund_minor`` and ``restocked_to`` are known for
    returns recorded through Rapport, ``None`` for returns loaded from history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str
    line_no: int | None
    quantity: int
    reason: str
    refund_minor: int | None = None
    restocked_to: str | None = None


class OrderReturned(DomainEvent):
    """Units brought back with the refund owed: traits take the refund off spend, loyalty takes
    back the points the returned lines earned and gives back the points the order was paid
    with, for the part returned."""

    event_type: ClassVar[str] = "order_returned"
    domain: ClassVar[str] = "orders"

    order_id: str
    return_id: str
    refund_minor: int
    """The value of what came back, money and points together."""
    lines: list[ReturnedLine]
    points_refund_minor: int = 0
    """The part of ``refund_minor`` the order paid with points (given back as points)."""
    points_paid_minor: int = 0
    """The order's whole points payment."""
    points_refunded_to_date_minor: int = 0
    """How much of the points payment the order's returns refund so far, this one included."""
    recorded_by: str | None = None
    """Who recorded the return: an admin user's login, or ``api:<key name>``; None for one
    recorded before December 2026 or loaded from history."""
    currency: str | None = None
    """The order's currency, that of ``refund_minor`` (traits take the refund off the spend in
    it); None for a return logged before December 2026."""
