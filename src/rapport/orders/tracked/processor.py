"""The ``orders.tracked`` processor: Segment's "Order Completed", "Order Refunded" and "Order
Cancelled" as orders, returns and cancellations, each applied once.

It reads the log in order (registered in ``orders.tasks``) and handles only events whose
``source`` is ``"segment"``: the Segment routes stamp that on messages from keys whose
``orders_from_tracking`` is on, and ``"segment-no-orders"`` otherwise, so a shop that posts
its orders to ``/v1/orders`` switches the key off and nothing is counted twice.

An order is placed, a return recorded and an order cancelled by the domain's own verbs
(``placing``, ``returns``, ``cancelling``): the same checks, the same ``order_placed``,
``order_returned`` and ``order_cancelled`` events, so loyalty earns and takes back points as
for any order. The verbs commit their own
transaction; here they must not (the batch and the cursor commit together), so each runs in
a savepoint and its ``before_commit`` hook hands the result back instead of letting it
commit. An order id the log already holds is never placed twice (the order's primary key),
and a message that cannot become an order or a return is kept with its reason
(``outcomes``), never lost. Each event's outcome is recorded too, so an event handled again
(a processor cursor moved back) is passed over.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from contextlib import suppress
from typing import Any, NoReturn

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.events.service import LoggedEvent
from rapport.orders.cancelling import cancel_order
from rapport.orders.models import Order, OrderLine
from rapport.orders.placing import place_order
from rapport.orders.records import get_lines
from rapport.orders.returns import RecordedReturn, record_return
from rapport.orders.schemas import ReturnIn
from rapport.orders.tracked.mapping import (
    Refusal,
    TrackedProduct,
    build_order,
    catalog_sku,
    order_currency,
    order_id_of,
    products_of,
)
from rapport.orders.tracked.outcomes import handled_positions, record_outcome
from rapport.platform.errors import Conflict, InvalidInput

log = logging.getLogger(__name__)

PROCESSOR = "orders.tracked"
# The source the Segment routes give events whose sender's e-commerce events become orders
# (``rapport.events.segment.SOURCE``; a test holds the two together).
TRACKING_SOURCE = "segment"
ORDER_COMPLETED = "order_completed"
ORDER_REFUNDED = "order_refunded"
# Segment's "Order Cancelled", as the Segment routes store it (``events.segment.TYPE_ALIASES``:
# ``order_cancelled`` is Rapport's own fact, logged when the order is cancelled).
ORDER_CANCELLED = "tracked_order_cancelled"
HANDLED = frozenset((ORDER_COMPLETED, ORDER_REFUNDED, ORDER_CANCELLED))
# Where a tracked order's units are taken from, as for a shipped order posted without a store.
WEB_LOCATION = "web"
# ``orders.source`` of an order placed from tracking.
ORDER_SOURCE = "tracking"


class _Held(Exception):
    """Raised from a verb's ``before_commit`` hook: the batch commits, not the verb."""

    def __init__(self, result: Any) -> None:
        super().__init__("held for the processor's transaction")
        self.result = result


def process_tracked_orders(db: Session, events: list[LoggedEvent]) -> None:
    """The processor's handler: one batch of the log, in order, in the batch's transaction.

    Each event is handled in a savepoint of its own. An unexpected error while handling one
    (a bug, a message no check foresaw) undoes that event's writes and keeps it as refused
    with reason ``error``, so the cursor moves on and the messages after it are still placed;
    a database error (a lost connection, a serialisation failure) fails the batch instead,
    which the next tick retries."""
    ours = [e for e in events if e.source == TRACKING_SOURCE and e.type in HANDLED]
    done = handled_positions(db, (e.position for e in ours))
    for event in ours:
        if event.position in done:
            continue
        try:
            with db.begin_nested():
                if event.type == ORDER_COMPLETED:
                    _order_completed(db, event)
                elif event.type == ORDER_REFUNDED:
                    _order_refunded(db, event)
                elif event.type == ORDER_CANCELLED:
                    _order_cancelled(db, event)
        except SQLAlchemyError:
            raise
        except Exception as error:
            log.exception("tracked %s at log position %s failed", event.type, event.position)
            order_id = (event.properties or {}).get("order_id")
            _refused(
                db,
                event,
                _unexpected(error),
                order_id=str(order_id) if isinstance(order_id, str | int) else None,
                customer_id=event.customer_id,
            )


def _order_completed(db: Session, event: LoggedEvent) -> None:
    properties: Mapping[str, Any] = event.properties or {}
    order_id: str | None = None
    customer_id: str | None = event.customer_id
    try:
        order_id = order_id_of(properties)
        if db.get(Order, order_id) is not None:
            raise _exists(order_id)
        products = products_of(properties, required=True)
        known = catalog.get_products(db, skus=[i for p in products for i in p.ids])
        currencies = {sku: product.currency for sku, product in known.items()}
        skus = [catalog_sku(product, currencies) for product in products]
        currency = order_currency(properties, {currencies[sku] for sku in skus})
        order = build_order(
            properties,
            order_id=order_id,
            products=products,
            skus=skus,
            currency=currency,
            customer_id=None,
            channel=event.channel,
            placed_at=event.occurred_at,
        )
        _check_stock(products, skus, db)
        try:
            with db.begin_nested():
                customer_id = _customer(db, event)
                order = order.model_copy(update={"customer_id": customer_id})
                with suppress(_Held):
                    place_order(db, order=order, before_commit=_hold_order)
        except IntegrityError:
            # Placed by POST /v1/orders while this batch ran; anything else is retried.
            if db.get(Order, order_id) is None:
                raise
            raise _exists(order_id) from None
    except Refusal as refusal:
        _refused(db, event, refusal, order_id=order_id, customer_id=customer_id)
        return
    except InvalidInput as problem:
        _refused(db, event, _refusal_from(problem), order_id=order_id, customer_id=customer_id)
        return
    record_outcome(db, event, "placed", order_id=order_id)


def _unexpected(error: Exception) -> Refusal:
    """An error no check foresaw, as the refusal kept for the operator (the log has the rest)."""
    return Refusal(
        "error",
        f"Rapport could not handle this message ({type(error).__name__}): it was not "
        "recorded. Post the order or return to /v1/orders, and report the error with the "
        "worker's log",
    )


def _refused(
    db: Session,
    event: LoggedEvent,
    refusal: Refusal,
    *,
    order_id: str | None,
    customer_id: str | None,
) -> None:
    if isinstance(refusal, _NotTheirs):  # kept under its sender, not the order's customer
        customer_id = refusal.sender
    record_outcome(
        db, event, "refused", order_id=order_id, refusal=refusal, customer_id=customer_id
    )


def _hold_order(db: Session, order: Order) -> NoReturn:
    # The shop's own systems deliver a tracked order: Rapport promised no date, so it is never
    # flagged late (a late delivery would send an apology and apology points).
    order.promised_delivery = None
    order.source = ORDER_SOURCE
    db.flush()
    raise _Held(order)


def _exists(order_id: str) -> Refusal:
    return Refusal(
        "order_exists",
        f"Order {order_id!r} is already recorded (posted to /v1/orders, or completed twice): "
        "it was not counted again. A key whose shop posts its orders should have "
        "orders-from-tracking off",
        field="properties.order_id",
    )


def _customer(db: Session, event: LoggedEvent) -> str:
    """Who ordered: ``userId`` (Rapport's id or the shop's own, found or created and linked by
    the order verb as for ``POST /v1/orders``), else the visitor's ``anonymousId`` (their
    anonymous profile, merged into the customer's when they identify, as the profile
    processor does), else the profile the event was filed under (an erased person's event
    keeps only that)."""
    if event.user_id:
        return event.user_id
    if event.anonymous_id:
        return customers.resolve_identities(
            db, identities={"anonymous_id": event.anonymous_id}, source=f"event:{event.type}"
        ).customer_id
    if event.customer_id:
        return event.customer_id
    raise Refusal("no_customer", "The message names no person (userId or anonymousId)")


def _check_stock(products: list[TrackedProduct], skus: list[str], db: Session) -> None:
    """Refuse before placing when the web warehouse, where it keeps a stock level, holds too
    few units (the order verb would then roll back the whole batch)."""
    wanted: Counter[str] = Counter()
    for product, sku in zip(products, skus, strict=True):
        wanted[sku] += product.quantity or 1
    for sku, quantity in sorted(wanted.items()):
        level = catalog.get_stock(db, sku=sku, store_id=WEB_LOCATION)
        if level is not None and level.on_hand - level.reserved < quantity:
            index = skus.index(sku)
            raise Refusal(
                "not_enough_stock",
                f"{WEB_LOCATION} has fewer than {quantity} x {sku} available: correct the stock "
                "count (PUT /v1/stock), then post the order to /v1/orders",
                field=f"properties.products.{index}.quantity",
            )


def _refusal_from(problem: InvalidInput) -> Refusal:
    """A verb's refusal as a tracked one. An erased person's is named without their id."""
    if problem.field in {"customer_id", "identities"} or problem.extra.get("code") == "suppressed":
        return Refusal(
            "customer_erased",
            "The person was erased: their order is not recorded",
            field="userId",
        )
    return Refusal("invalid", problem.detail, field=_message_field(problem.field or ""))


def _message_field(field: str) -> str:
    if field.startswith("lines."):
        return "properties.products." + field.removeprefix("lines.").split(".")[0]
    return f"properties.{field}" if field else ""


def _order_refunded(db: Session, event: LoggedEvent) -> None:
    properties: Mapping[str, Any] = event.properties or {}
    order_id: str | None = None
    customer_id: str | None = event.customer_id
    try:
        order_id = order_id_of(properties)
        customer_id = _senders_order(
            db, event, order_id, what="refund", instead=f"/v1/orders/{order_id}/returns"
        ).customer_id
        returned = _returned_units(get_lines(db, order_id=order_id), properties)
        request = ReturnIn.model_validate(
            {
                "lines": [
                    {"sku": sku, "quantity": quantity, "reason": "other"}
                    for sku, quantity in returned.items()
                ],
                "channel": "app" if event.channel == "app" else "web",
                "returned_at": event.occurred_at,
            }
        )
        recorded: RecordedReturn | None = None
        with db.begin_nested():
            try:
                record_return(db, order_id=order_id, request=request, before_commit=_hold_return)
            except _Held as held:
                recorded = held.result
    except Refusal as refusal:
        _refused(db, event, refusal, order_id=order_id, customer_id=customer_id)
        return
    except InvalidInput as problem:
        _refused(db, event, _refusal_from(problem), order_id=order_id, customer_id=customer_id)
        return
    except Conflict as problem:
        # The return verb's refusal of an order whose goods the customer was not given (a
        # pick-up not collected, a cancelled order).
        not_given = Refusal("not_handed_over", problem.detail, field="properties.order_id")
        _refused(db, event, not_given, order_id=order_id, customer_id=customer_id)
        return
    assert recorded is not None
    record_outcome(db, event, "returned", order_id=order_id, return_id=recorded.return_id)


class _NotTheirs(Refusal):
    """``not_the_customer``: kept under the person who sent the message, not the order's."""

    def __init__(self, message: str, *, field: str, sender: str | None) -> None:
        super().__init__("not_the_customer", message, field=field)
        self.sender = sender


def _senders_order(
    db: Session, event: LoggedEvent, order_id: str, *, what: str, instead: str
) -> Order:
    """The order ``event`` names, if its sender may act on it: the order's customer or a
    profile merged with them (a guest's order names no one to check); else a refusal
    (``unknown_order``, or :class:`_NotTheirs`)."""
    order = db.get(Order, order_id)
    if order is None:
        raise Refusal(
            "unknown_order",
            f"No order {order_id!r} to {what}: its Order Completed was refused or never "
            "sent, or the order was posted elsewhere",
            field="properties.order_id",
        )
    sender = _sender(db, event)
    if order.customer_id is not None and sender != _survivor(db, order.customer_id):
        raise _NotTheirs(
            f"Order {order_id!r} is not this person's: a {what} is applied only when sent "
            "by the order's customer (its userId, or an id merged with it). Send it with "
            f"the order's customer, or use {instead}",
            field="userId" if event.user_id else "anonymousId",
            sender=sender,
        )
    return order


def _filed_under(refusal: Refusal, customer_id: str | None) -> str | None:
    return refusal.sender if isinstance(refusal, _NotTheirs) else customer_id


def _order_cancelled(db: Session, event: LoggedEvent) -> None:
    """Segment's "Order Cancelled": the order is cancelled by the verb behind
    ``POST /v1/orders/{id}/cancel`` (its reservation released, its units back, its points
    taken back), when the order's customer sent it and the order was not handed over yet."""
    properties: Mapping[str, Any] = event.properties or {}
    order_id: str | None = None
    customer_id: str | None = event.customer_id
    try:
        order_id = order_id_of(properties)
        order = _senders_order(
            db, event, order_id, what="cancellation", instead=f"/v1/orders/{order_id}/cancel"
        )
        customer_id = order.customer_id
        reason = properties.get("reason")
        with db.begin_nested(), suppress(_Held):
            cancel_order(
                db,
                order_id=order.order_id,
                reason=reason[:500] if isinstance(reason, str) and reason.strip() else None,
                before_commit=_hold_cancelled,
            )
    except Refusal as refusal:
        _refused(db, event, refusal, order_id=order_id, customer_id=customer_id)
        return
    except Conflict as problem:
        # Already cancelled, or handed over (shipped, delivered, collected, a till sale).
        not_now = Refusal("not_cancellable", problem.detail, field="properties.order_id")
        _refused(db, event, not_now, order_id=order_id, customer_id=customer_id)
        return
    record_outcome(db, event, "cancelled", order_id=order_id)


def _hold_cancelled(db: Session, order: Order) -> NoReturn:
    raise _Held(order)


def _survivor(db: Session, customer_id: str) -> str:
    """The profile ``customer_id`` is now (itself, or the one it was merged into)."""
    return customers.find_customer_ref(db, ref=customer_id) or customer_id


def _sender(db: Session, event: LoggedEvent) -> str | None:
    """Rapport's id of the person who sent ``event``, as their profile is now (merges
    followed), creating nobody: ``userId`` (Rapport's id or the shop's own number), else the
    profile holding the ``anonymousId``, else the profile the event was filed under; ``None``
    when none of them names a profile."""
    if event.user_id:
        return customers.find_customer_ref(db, ref=event.user_id)
    if event.anonymous_id:
        holder = customers.find_customer(db, kind="anonymous_id", value=event.anonymous_id)
        return _survivor(db, holder.customer_id) if holder is not None else None
    return _survivor(db, event.customer_id) if event.customer_id else None


def _hold_return(db: Session, recorded: RecordedReturn) -> NoReturn:
    raise _Held(recorded)


def _returned_units(lines: list[OrderLine], properties: Mapping[str, Any]) -> dict[str, int]:
    """Units to return per SKU: the ``products`` given (a product without ``quantity`` gives
    back what is left of its line), else everything not returned yet."""
    # A SKU may be on several lines (sent at two prices): the return verb takes from each.
    left: dict[str, int] = {}
    for line in lines:
        left[line.sku] = left.get(line.sku, 0) + line.quantity - line.returned_quantity
    products = products_of(properties, required=False)
    wanted: dict[str, int] = {}
    if not products:
        wanted = {sku: units for sku, units in left.items() if units > 0}
    for product in products:
        sku = next((i for i in product.ids if i in left), None)
        if sku is None:
            raise Refusal(
                "not_on_order",
                f"{' or '.join(repr(i) for i in product.ids)} is not on this order",
                field=f"properties.products.{product.index}.sku",
            )
        wanted[sku] = wanted.get(sku, 0) + (product.quantity or left[sku])
        if wanted[sku] > left[sku]:
            raise Refusal(
                "nothing_to_return" if left[sku] == 0 else "invalid",
                f"Only {left[sku]} of {sku} can still be returned",
                field=f"properties.products.{product.index}.quantity",
            )
    wanted = {sku: units for sku, units in wanted.items() if units > 0}
    if not wanted:
        raise Refusal(
            "nothing_to_return",
            "Every unit of this order was already returned",
            field="properties.order_id",
        )
    return wanted
