"""Pick-up-in-store orders waiting at their store: the customer told the order is ready (where,
and until when it is kept), and past that collection deadline the order released.

An order is ready for pick-up the moment it is placed (its units are reserved then). It is kept
``pickup_hold_days`` (setting ``RAPPORT_PICKUP_HOLD_DAYS``, 7 by default) whole days after the
day it was placed, read at the offset the order was placed with, as delivery promises are: its
``collect_by`` date, computed once when the order is placed (:func:`deadline_for`) and stored
on the order, so the answer, its reads, the event, the notice and the release all name the day
the customer was told, whatever the setting says later. Rapport logs ``order_ready_for_pickup``
when it records the order (the event keeps ``placed_at``), so a till syncing late still has its
customer told. An order whose deadline has already passed when Rapport records it (a historic
import, a till days late) is never ready: it is placed and cancelled as not collected in the
same transaction, with no ready or not-collected notice. Otherwise, the day after its deadline
the hourly job (:func:`release_uncollected_pickups`) cancels it through the cancelling verb
(the reserved units go back on sale, ``order_cancelled`` takes back its points as any
cancellation does) and tells the customer. As with late deliveries, the notices are the
order's record of what the customer is told; the campaigns domain sends them and stamps them
sent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.events.service import append_event
from rapport.orders import events as order_events
from rapport.orders.cancelling import cancel_order
from rapport.orders.models import CustomerNotice, Order, OrderStatusChange, local_day
from rapport.platform import clock
from rapport.platform.errors import Conflict, NotFound
from rapport.platform.settings import get_settings

READY_NOTICE = "ready_for_collection"
NOT_COLLECTED_NOTICE = "not_collected"


def deadline_for(placed_at: datetime, offset_minutes: int | None) -> date:
    """The collection deadline of a pick-up placed at ``placed_at`` with ``offset_minutes``:
    the day it was placed, at that offset, plus today's hold. Computed once, when the order
    is placed (and by the migration that stored it for the orders placed before)."""
    return local_day(placed_at, offset_minutes) + timedelta(days=get_settings().pickup_hold_days)


def collect_by(order: Order) -> date | None:
    """The last day a pick-up order is kept at its store, as the customer was told it (None for
    other orders)."""
    if order.fulfilment != "pickup_in_store":
        return None
    return order.collect_by


def deadline_passed(order: Order, now: datetime) -> bool:
    """Whether ``now`` is past the pick-up's last day, at the order's offset."""
    deadline = collect_by(order)
    return deadline is not None and local_day(now, order.placed_offset_minutes) > deadline


def not_collected_reason(deadline: date) -> str:
    """The note of the cancellation that releases a pick-up not collected by ``deadline``."""
    return f"not collected by {deadline.isoformat()}"


def released_words(db: Session, order: Order) -> str | None:
    """What a till scanning a pick-up released at its deadline is told; None for an order not
    released so."""
    deadline = collect_by(order)
    if order.status != "cancelled" or deadline is None:
        return None
    released = db.scalar(
        select(OrderStatusChange.id).where(
            OrderStatusChange.order_id == order.order_id,
            OrderStatusChange.status == "cancelled",
            OrderStatusChange.note == not_collected_reason(deadline),
        )
    )
    if released is None:
        return None
    return (
        f"Order {order.order_id} was not collected by its deadline, {deadline.day} "
        f"{deadline:%B %Y}, so it was released: cancelled, its units back on sale"
    )


def _store_name(db: Session, store_id: str) -> str:
    store = catalog.get_store(db, store_id=store_id)
    return store.name if store is not None and store.name else store_id


def _notice(db: Session, order: Order, *, kind: str, message: str, details: dict[str, str]) -> None:
    """Record what the customer is told, for a customer the service gate allows (an erased
    one is told nothing)."""
    if order.customer_id is not None and not customers.may_contact(
        db, customer_id=order.customer_id, purpose=customers.SERVICE
    ):
        return
    db.add(
        CustomerNotice(
            order_id=order.order_id,
            customer_id=order.customer_id,
            kind=kind,
            message=message,
            details=details,
            created_at=clock.now(),
        )
    )


def announce_ready(db: Session, order: Order) -> None:
    """In the placing transaction: log ``order_ready_for_pickup`` and record the "ready for
    collection" notice, naming the store and the last day the order is kept. The order is
    ready and waiting from when Rapport records it, so the event happens then (a till syncing
    days late still has its customer told); it keeps ``placed_at`` in its data."""
    deadline = collect_by(order)
    assert deadline is not None
    assert order.store_id is not None
    store = _store_name(db, order.store_id)
    append_event(
        db,
        order_events.OrderReadyForPickup(
            order_id=order.order_id,
            store_id=order.store_id,
            store_name=store,
            collect_by=str(deadline),
            placed_at=clock.as_utc(order.placed_at).astimezone(UTC).isoformat(),
        ),
        channel=order.channel,
        customer_id=order.customer_id,
    )
    _notice(
        db,
        order,
        kind=READY_NOTICE,
        message=(
            f"Your order {order.order_id} is ready for collection at {store}. We keep it for "
            f"you until {deadline.day} {deadline:%B %Y}."
        ),
        details={"store_id": order.store_id, "collect_by": str(deadline)},
    )


def release_uncollected_pickups(db: Session) -> list[str]:
    """Cancel every pick-up order still waiting after its ``collect_by`` day (at its offset):
    each through :func:`cancel_order` (its reservation released once, its points taken back
    as any cancellation's), with ``order_not_collected`` logged and a notice recorded in the
    same transaction. Safe to run twice or in two workers at once: the cancellation holds
    the order and claims it by its status, so the later run (or a till collecting it at the
    same moment) finds it changed and leaves it. Returns the orders released."""
    now = clock.now()
    # An offset moves a local day at most a day ahead of UTC's: read exactly below.
    waiting = db.scalars(
        select(Order.order_id)
        .where(
            Order.fulfilment == "pickup_in_store",
            Order.status == "ready_for_pickup",
            Order.collect_by <= now.astimezone(UTC).date(),
        )
        .order_by(Order.collect_by, Order.placed_at, Order.order_id)
    ).all()
    db.rollback()
    released = []
    for order_id in waiting:
        order = db.get(Order, order_id)
        deadline = collect_by(order) if order is not None else None
        if order is None or deadline is None or not deadline_passed(order, now):
            continue
        store_id = order.store_id or ""

        def tell(
            db: Session, order: Order, deadline: date = deadline, store_id: str = store_id
        ) -> None:
            store = _store_name(db, store_id)
            append_event(
                db,
                order_events.OrderNotCollected(
                    order_id=order.order_id,
                    store_id=store_id,
                    store_name=store,
                    collect_by=str(deadline),
                ),
                channel=order.channel,
                customer_id=order.customer_id,
            )
            _notice(
                db,
                order,
                kind=NOT_COLLECTED_NOTICE,
                message=(
                    f"Your order {order.order_id} was not collected at {store} by "
                    f"{deadline.day} {deadline:%B %Y}, so we have cancelled it and put its "
                    "items back on sale."
                ),
                details={"store_id": store_id, "collect_by": str(deadline)},
            )

        try:
            cancel_order(
                db,
                order_id=order_id,
                reason=not_collected_reason(deadline),
                before_commit=tell,
            )
        except (Conflict, NotFound):
            db.rollback()  # collected, cancelled or released by another run meanwhile
            continue
        released.append(order_id)
    return released
