"""Order tables: orders from every channel, their lines, payments, status history, returns
and the notices sent about them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rapport.platform.clock import as_utc
from rapport.platform.db import Base, JsonDocument, UTCDateTime

CHANNELS = ("web", "app", "store", "call_center")
FULFILMENTS = ("ship", "pickup_in_store", "in_store")
STATUSES = (
    "placed",
    "ready_for_pickup",
    "collected",
    "packed",
    "shipped",
    "out_for_delivery",
    "delivered",
    "delayed",
    "failed",
    "completed",
    "cancelled",
)


def local_day(moment: datetime, offset_minutes: int | None) -> date:
    """The day ``moment`` falls on at the UTC offset an order was placed with (null: UTC): the
    day its promise was read in, so the day it is judged in. ``moment`` is first brought to UTC
    (an aware value sent at another offset too, as placing holds it before it is stored), so
    the offset is added once, whether the value came from the sender or from the database."""
    return (as_utc(moment).astimezone(UTC) + timedelta(minutes=offset_minutes or 0)).date()


class Order(Base):
    """One order. Money is integer minor units; totals are recomputed server-side."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("total_minor >= 0", name="total_not_negative"),
        CheckConstraint("channel IN ('web', 'app', 'store', 'call_center')", name="channel_known"),
        CheckConstraint(
            "fulfilment IN ('ship', 'pickup_in_store', 'in_store')", name="fulfilment_known"
        ),
        Index("ix_orders_customer_placed", "customer_id", "placed_at"),
        # Segments' purchase windows ("bought ... in the last N days") over every customer.
        Index("ix_orders_placed_at", "placed_at"),
        Index("ix_orders_open_deliveries", "fulfilment", "status", "promised_delivery"),
        Index("ix_orders_waiting_pickups", "fulfilment", "status", "collect_by"),
    )

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    channel: Mapped[str] = mapped_column(String(20))
    fulfilment: Mapped[str] = mapped_column(String(20))
    store_id: Mapped[str | None] = mapped_column(String(40), default=None)
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int] = mapped_column(Integer)
    discount_minor: Mapped[int] = mapped_column(Integer, default=0)
    shipping_minor: Mapped[int] = mapped_column(Integer, default=0)
    total_minor: Mapped[int] = mapped_column(Integer)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The UTC offset (minutes) ``placed_at`` was sent with, the clock its promise was read by;
    # null: UTC (placed without one, loaded from history, or placed before it was kept).
    placed_offset_minutes: Mapped[int | None] = mapped_column(Integer, default=None)
    promised_delivery: Mapped[date | None] = mapped_column(Date, default=None)
    # A pick-up's collection deadline, the last day it is kept, as the customer was told it when
    # the order was placed (a later RAPPORT_PICKUP_HOLD_DAYS does not move it); null otherwise.
    collect_by: Mapped[date | None] = mapped_column(Date, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    carrier: Mapped[str | None] = mapped_column(String(40), default=None)
    pickup_code: Mapped[str | None] = mapped_column(String(16), unique=True, default=None)
    late_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    source: Mapped[str] = mapped_column(String(20), default="api")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @property
    def delivered_day(self) -> date | None:
        """The day it was delivered, at the offset it was placed with (as its promise)."""
        if self.delivered_at is None:
            return None
        return local_day(self.delivered_at, self.placed_offset_minutes)

    @property
    def promise_kept(self) -> bool | None:
        """Delivered by the promised day, both read at the offset it was placed with; None
        while it has no promise or is not delivered."""
        day = self.delivered_day
        if self.promised_delivery is None or day is None:
            return None
        return day <= self.promised_delivery


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "returned_quantity >= 0 AND returned_quantity <= quantity",
            name="returns_within_quantity",
        ),
    )

    order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.order_id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), index=True)
    category: Mapped[str | None] = mapped_column(String(300), default=None)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(Integer)
    discount_minor: Mapped[int] = mapped_column(Integer, default=0)
    total_minor: Mapped[int] = mapped_column(Integer)
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0)


class OrderPayment(Base):
    __tablename__ = "order_payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.order_id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(String(30))
    amount_minor: Mapped[int] = mapped_column(Integer)


class OrderStatusChange(Base):
    """The order's own timeline across channels (also in the event log)."""

    __tablename__ = "order_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.order_id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text, default=None)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReturnLine(Base):
    """Units of one order line brought back, why, where and for how much."""

    __tablename__ = "return_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    return_id: Mapped[str] = mapped_column(String(64), index=True)
    order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.order_id", ondelete="CASCADE"), index=True
    )
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(40))
    refund_minor: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    returned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The location whose stock the units went back into (None: not restocked, e.g. damaged).
    restocked_to: Mapped[str | None] = mapped_column(String(40), default=None)


class CustomerNotice(Base):
    """A message queued to a customer about their order (a service message, not marketing)."""

    __tablename__ = "customer_notices"
    __table_args__ = (Index("ix_customer_notices_unsent", "sent_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class CustomerValueScore(Base):
    """A customer's lifetime value as last fitted (``orders.customer_value``): BG/NBD expected
    purchases and probability alive, Gamma-Gamma spend, the value for the next 365 days and
    the tier by its rank. Rebuilt whole at every fit; a customer without orders has no row."""

    __tablename__ = "customer_values"
    __table_args__ = (
        CheckConstraint("value_tier IN ('top1', 'top5', 'top20', 'rest')", name="value_tier_known"),
        Index("ix_customer_values_tier", "value_tier"),
        Index("ix_customer_values_predicted", "predicted_value_minor"),
    )

    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    frequency: Mapped[int] = mapped_column(Integer)  # repeat purchase days
    recency_days: Mapped[float] = mapped_column(Float)
    age_days: Mapped[float] = mapped_column(Float)
    monetary_minor: Mapped[int] = mapped_column(Integer)  # mean of repeat purchase days
    expected_purchases_90d: Mapped[float] = mapped_column(Float)
    p_alive: Mapped[float] = mapped_column(Float)
    # At least one purchase in the next 90 days: falls for long-silent one-off buyers, whose
    # BG/NBD p_alive stays 1 (they can only drop out after a repeat purchase).
    p_purchase_90d: Mapped[float] = mapped_column(Float)
    expected_spend_minor: Mapped[int] = mapped_column(Integer)  # per future purchase
    predicted_value_minor: Mapped[int] = mapped_column(Integer)  # next 365 days
    value_tier: Mapped[str] = mapped_column(String(8))
    fitted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CustomerValueFit(Base):
    """One fit of the customer-value models: their parameters (time in days, money in minor
    units) and how many customers they were fitted on. The newest row is the one in use."""

    __tablename__ = "customer_value_fits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    customers: Mapped[int] = mapped_column(Integer)
    repeat_customers: Mapped[int] = mapped_column(Integer)
    r: Mapped[float] = mapped_column(Float)
    alpha: Mapped[float] = mapped_column(Float)
    a: Mapped[float] = mapped_column(Float)
    b: Mapped[float] = mapped_column(Float)
    log_likelihood: Mapped[float] = mapped_column(Float)
    p: Mapped[float | None] = mapped_column(Float, default=None)
    q: Mapped[float | None] = mapped_column(Float, default=None)
    gamma: Mapped[float | None] = mapped_column(Float, default=None)
    spend_log_likelihood: Mapped[float | None] = mapped_column(Float, default=None)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class TrackedOrderEvent(Base):
    """A tracked "Order Completed" or "Order Refunded" the ``orders.tracked`` processor handled
    (one row per event: handled again after a replay or a cursor reset, it is passed over),
    and what became of it: ``placed``, ``returned``, or ``refused`` with the reason, kept for
    the operator (``GET /v1/orders/tracked/refusals``). Only a refusal names the person, as
    the sender did (``customer_ref``: ``userId``, else ``anonymousId``), for erasure to find."""

    __tablename__ = "tracked_order_events"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('placed', 'returned', 'refused', 'cancelled')", name="outcome_known"
        ),
        Index("ix_tracked_order_events_outcome_reason", "outcome", "reason"),
        Index("ix_tracked_order_events_customer_ref", "customer_ref"),
        Index("ix_tracked_order_events_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_position: Mapped[int] = mapped_column(BigInteger, unique=True)
    event_id: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(60))
    order_id: Mapped[str | None] = mapped_column(String(100), default=None)
    outcome: Mapped[str] = mapped_column(String(10))
    return_id: Mapped[str | None] = mapped_column(String(64), default=None)
    reason: Mapped[str | None] = mapped_column(String(40), default=None)
    field: Mapped[str | None] = mapped_column(String(200), default=None)
    message: Mapped[str | None] = mapped_column(String(500), default=None)
    customer_ref: Mapped[str | None] = mapped_column(String(100), default=None)
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
