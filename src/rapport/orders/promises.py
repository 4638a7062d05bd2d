"""Delivery promises: late deliveries flagged once (``delivery_late``) with a notice to the
customer, the notices themselves, and the promise-kept report.

The notice is the order's record of what the customer is told. The campaigns domain sends it
(it reacts to ``delivery_late`` with its late-delivery message, by email, with any apology
points) and stamps the notice sent once the message has gone out on a channel
(:func:`mark_notice_sent`); nothing here pretends to send it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import append_event
from rapport.orders import events as order_events
from rapport.orders.models import (
    CustomerNotice,
    Order,
    local_day,
)
from rapport.platform import clock
from rapport.platform.errors import InvalidInput

# How far back a delivery reported late is still apologised for: a delivery time past its
# promise reported after the order arrived counts as late, but a promise broken weeks ago
# (orders an earlier version recorded without flagging) is history, not news.
LATE_DELIVERED_WINDOW = timedelta(days=14)


def _late_reason(order: Order, today: date) -> str | None:
    if order.promised_delivery is None:
        return None
    if order.delivered_at is not None:
        # Late by the times, whichever came first: the report of the delivery or the check.
        delivered_on = local_day(clock.as_utc(order.delivered_at), order.placed_offset_minutes)
        if delivered_on > order.promised_delivery and order.status != "failed":
            return "delivered after the promised date"
        return None
    if order.status == "failed":
        return "delivery failed"
    if order.promised_delivery < today:
        return "promised date passed"
    if order.status == "delayed":
        return "carrier reported a delay"
    if order.promised_delivery == today and order.status in ("placed", "packed"):
        return "not shipped on the promised day"
    return None


def flag_late_deliveries(db: Session) -> list[str]:
    """Find shipped orders that missed or will miss their promise; for each, once: log
    ``delivery_late`` (the loyalty apology rule and the campaigns late-delivery message react
    to it) and record the notice the customer is sent (unsent until campaigns sends it)."""
    now = clock.now()
    today = now.date()
    # Each order's today is read at the offset it was placed with (up to a day ahead of UTC's).
    candidates = db.scalars(
        select(Order).where(
            Order.fulfilment == "ship",
            Order.status != "cancelled",
            Order.delivered_at.is_(None),
            Order.late_notified_at.is_(None),
            Order.promised_delivery <= today + timedelta(days=1),
        )
    ).all()
    candidates = [
        *candidates,
        *db.scalars(
            select(Order).where(
                Order.status == "delayed",
                Order.late_notified_at.is_(None),
                Order.promised_delivery > today,
            )
        ).all(),
        # Delivered after the promise before the check ran (or reported so afterwards).
        *db.scalars(
            select(Order).where(
                Order.fulfilment == "ship",
                Order.status != "cancelled",
                Order.delivered_at.is_not(None),
                Order.delivered_at >= now - LATE_DELIVERED_WINDOW,
                Order.late_notified_at.is_(None),
                Order.promised_delivery < today + timedelta(days=1),
            )
        ).all(),
    ]
    flagged = []
    for order in candidates:
        reason = _late_reason(order, local_day(now, order.placed_offset_minutes))
        if reason is None:
            continue
        # Claim the order with a guarded update, so two workers cannot both notify.
        claimed = db.execute(
            update(Order)
            .where(Order.order_id == order.order_id, Order.late_notified_at.is_(None))
            .values(late_notified_at=now)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            continue
        append_event(
            db,
            order_events.DeliveryLate(
                order_id=order.order_id,
                promised_delivery=str(order.promised_delivery),
                reason=reason,
                failed=order.status == "failed",
            ),
            channel=order.channel,
            customer_id=order.customer_id,
        )
        # An erased (or merged-into-erased) customer is told nothing; the event stays,
        # pseudonymous, for the promise-keeping figures.
        if order.customer_id is None or customers.may_contact(
            db, customer_id=order.customer_id, purpose=customers.SERVICE
        ):
            arrived = order.delivered_at is not None
            notice = CustomerNotice(
                order_id=order.order_id,
                customer_id=order.customer_id,
                kind="delivery_delay",
                message=(
                    f"We're sorry: your order {order.order_id} arrived after "
                    f"{order.promised_delivery:%d %B}, the day we promised."
                    if arrived
                    else f"We're sorry: your order {order.order_id} will not arrive by "
                    f"{order.promised_delivery:%d %B} as promised ({reason}). We're on it."
                ),
                details={"reason": reason, "carrier": order.carrier},
                created_at=now,
            )
            db.add(notice)
        flagged.append(order.order_id)
    db.commit()
    return flagged


# Statuses after which the goods reached the customer (a shipped order delivered, then
# completed; a pick-up collected).
_ARRIVED = frozenset({"delivered", "completed", "collected"})


def late_notice_outdated(db: Session, *, order_ids: Iterable[str]) -> dict[str, str]:
    """The orders among ``order_ids`` that a late-delivery notice would misreport now, each
    with why (``"order O-1 delivered"``): delivered since it was flagged (``delivered_at``
    stamped, or delivered, completed or collected), cancelled, or no longer known. Campaigns
    asks before it queues the notice and again before it sends it; a failed delivery is still
    news."""
    wanted = sorted(set(order_ids))
    if not wanted:
        return {}
    found = {
        order_id: (status, delivered_at)
        for order_id, status, delivered_at in db.execute(
            select(Order.order_id, Order.status, Order.delivered_at).where(
                Order.order_id.in_(wanted)
            )
        )
    }
    outdated: dict[str, str] = {}
    for order_id in wanted:
        if order_id not in found:
            outdated[order_id] = f"order {order_id} no longer known"
            continue
        status, delivered_at = found[order_id]
        if delivered_at is not None or status in _ARRIVED:
            outdated[order_id] = f"order {order_id} {status if status in _ARRIVED else 'delivered'}"
        elif status == "cancelled":
            outdated[order_id] = f"order {order_id} cancelled"
    return outdated


def mark_notice_sent(
    db: Session,
    *,
    notice_id: int,
    sent_at: datetime | None = None,
    commit: bool = True,
) -> bool:
    """Stamp a notice sent, at ``sent_at`` (default now): the campaigns domain calls it once
    the message went out on a channel. Safe to run twice. A notice whose customer may no
    longer be contacted (erased since it was recorded) is dropped, not stamped.
    ``commit=False`` joins the caller's transaction."""
    notice = db.get(CustomerNotice, notice_id)
    if notice is None or notice.sent_at is not None:
        return False
    stamped = True
    if notice.customer_id is not None and not customers.may_contact(
        db, customer_id=notice.customer_id, purpose=customers.SERVICE
    ):
        db.delete(notice)
        stamped = False
    else:
        notice.sent_at = sent_at or clock.now()
    if commit:
        db.commit()
    else:
        db.flush()
    return stamped


def notices_for(db: Session, *, order_id: str) -> list[CustomerNotice]:
    return list(
        db.scalars(
            select(CustomerNotice)
            .where(CustomerNotice.order_id == order_id)
            .order_by(CustomerNotice.id)
        )
    )


@dataclass(frozen=True)
class PromiseKept:
    key: str
    due: int
    on_time: int

    @property
    def share(self) -> float:
        return self.on_time / self.due if self.due else 0.0


def promise_kept(db: Session, *, by: str, since: date | None = None) -> list[PromiseKept]:
    """On-time share of shipped orders whose promised date has come, by channel, store or
    carrier. Delivered after the promise, failed, or still out past the promise: not kept.
    Days are read at the offset each order was placed with, as its promise was."""
    column = {"channel": Order.channel, "store": Order.store_id, "carrier": Order.carrier}.get(by)
    if column is None:
        raise InvalidInput("Group by channel, store or carrier", field="by")
    now = clock.now()
    query = select(
        column,
        Order.promised_delivery,
        Order.delivered_at,
        Order.status,
        Order.placed_offset_minutes,
    ).where(
        Order.fulfilment == "ship",
        # Each order's today is read at the offset it was placed with (a day ahead at most).
        Order.promised_delivery <= now.date() + timedelta(days=1),
        Order.status != "cancelled",
    )
    if since is not None:
        query = query.where(Order.promised_delivery >= since)
    due: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    for key, promised, delivered_at, status, offset in db.execute(query):
        if promised is None or promised > local_day(now, offset):
            continue
        name = key or "unknown"
        due[name] += 1
        # Delivered on the promised day at the sender's clock, the one the promise was read by.
        on_time = delivered_at is not None and local_day(delivered_at, offset) <= promised
        if on_time and status != "failed":
            kept[name] += 1
    return [PromiseKept(key=k, due=due[k], on_time=kept[k]) for k in sorted(due)]


def late_deliveries(db: Session, *, limit: int = 100) -> list[Order]:
    """Orders flagged late, most recent first."""
    return list(
        db.scalars(
            select(Order)
            .where(Order.late_notified_at.is_not(None))
            .order_by(Order.late_notified_at.desc())
            .limit(limit)
        )
    )
