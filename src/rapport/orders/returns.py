"""Returns: units brought back per line, the refund owed (split between money and the points
the order was partly paid with), restocking, ``order_returned``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.events.service import append_event
from rapport.orders import events as order_events
from rapport.orders.models import Order, OrderLine, OrderPayment, ReturnLine
from rapport.orders.records import get_lines, lock_order
from rapport.orders.schemas import ReturnIn
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput
from rapport.platform.ids import new_id


@dataclass(frozen=True)
class RecordedReturn:
    return_id: str
    order_id: str
    refund_minor: int
    """The value of what came back: ``money_refund_minor`` plus ``points_refund_minor``."""
    lines: list[ReturnLine]
    points_refund_minor: int = 0
    """The part of the refund the order paid with points: loyalty gives those points back."""

    @property
    def money_refund_minor(self) -> int:
        """The part to pay back by the order's other payment methods."""
        return self.refund_minor - self.points_refund_minor


@dataclass(frozen=True)
class PointsShare:
    """The order's points payment, and how much of it its returns refund up to now."""

    paid_minor: int
    refunded_before_minor: int
    refunded_to_date_minor: int

    @property
    def this_return_minor(self) -> int:
        return self.refunded_to_date_minor - self.refunded_before_minor


def split_in_proportion(amount: int, weights: Sequence[int]) -> list[int]:
    """``amount`` split in proportion to ``weights`` in whole minor units that add up to it
    exactly (largest remainder): each part is the floor of its exact share, and the units
    left over go one each to the parts with the largest remainders (ties to the earlier).
    All weights 0 (or none) gives every part 0."""
    whole = sum(weights)
    if whole <= 0 or amount <= 0:
        return [0] * len(weights)
    parts = [amount * weight // whole for weight in weights]
    remainders = [amount * weight % whole for weight in weights]
    left = amount - sum(parts)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[index] += 1
    return parts


@dataclass(frozen=True)
class LineRefunds:
    """What one order line's units refund, fixed once for the order: the line's share of the
    goods paid for (the lines' totals less the order discount, split over the lines in
    proportion to their totals), split over its units, the first ``extra`` units one minor
    unit more than the rest. Units come back in that order, so every unit is refunded once
    and the refunds of all of an order's units add up to what was paid for its goods."""

    quantity: int
    amount_minor: int

    def units(self, *, already_returned: int, quantity: int) -> int:
        """The refund for the next ``quantity`` units of the line, ``already_returned``
        having come back before."""
        base, extra = divmod(self.amount_minor, self.quantity)
        start, end = already_returned, already_returned + quantity
        return quantity * base + max(0, min(end, extra) - min(start, extra))


def line_refunds(order: Order, lines: Sequence[OrderLine]) -> dict[int, LineRefunds]:
    """Each line's refunds by ``line_no``: the goods paid for (the lines' totals less the order
    discount; shipping is not refunded by a return) split over the lines by
    :func:`split_in_proportion` of their totals."""
    goods = sum(line.total_minor for line in lines)
    paid = max(0, goods - order.discount_minor)
    amounts = split_in_proportion(paid, [max(0, line.total_minor) for line in lines])
    return {
        line.line_no: LineRefunds(quantity=line.quantity, amount_minor=amount)
        for line, amount in zip(lines, amounts, strict=True)
    }


def units_restocked_at(db: Session, *, order_id: str, store_id: str) -> dict[int, int]:
    """The order's returned units put back into ``store_id``'s stock, by ``line_no``."""
    return {
        int(line_no): int(units)
        for line_no, units in db.execute(
            select(ReturnLine.line_no, func.sum(ReturnLine.quantity))
            .where(ReturnLine.order_id == order_id, ReturnLine.restocked_to == store_id)
            .group_by(ReturnLine.line_no)
        )
    }


def _refunded_before(db: Session, *, order_id: str) -> int:
    """What the order's earlier returns refunded."""
    return int(
        db.scalar(
            select(func.coalesce(func.sum(ReturnLine.refund_minor), 0)).where(
                ReturnLine.order_id == order_id
            )
        )
        or 0
    )


def _points_share(
    db: Session, *, order_id: str, total_minor: int, refund_minor: int
) -> PointsShare:
    """What part of a return's refund the order paid with points: the points payment's share of
    the order's total, over every return of the order so far, rounded down (the money part
    gets the rounding), so the returns of a whole order add up to its share exactly."""
    paid = int(
        db.scalar(
            select(func.coalesce(func.sum(OrderPayment.amount_minor), 0)).where(
                OrderPayment.order_id == order_id, OrderPayment.method == "points"
            )
        )
        or 0
    )
    if paid <= 0 or total_minor <= 0:
        return PointsShare(paid_minor=0, refunded_before_minor=0, refunded_to_date_minor=0)
    before = _refunded_before(db, order_id=order_id)
    return PointsShare(
        paid_minor=paid,
        refunded_before_minor=min(before * paid // total_minor, paid),
        refunded_to_date_minor=min((before + refund_minor) * paid // total_minor, paid),
    )


def not_handed_over(order: Order) -> str | None:
    """Why nothing of ``order`` can come back, or None when it was handed over: a return brings
    back what the customer was given, so a pick-up order not collected yet (its units still
    reserved in the shop) or a cancelled order has nothing to bring back. A shipped order is
    returnable whatever its delivery status: a shop need not send statuses (a tracked order
    never has them), and a parcel that came back undelivered is recorded as a return."""
    if order.status == "cancelled":
        return (
            f"Order {order.order_id} was cancelled: nothing of it was handed over, so there "
            "is nothing to return"
        )
    if order.fulfilment == "pickup_in_store" and order.status != "collected":
        return (
            f"Order {order.order_id} has not been collected (it is {order.status} at "
            f"{order.store_id}): its units are still in the shop, so there is nothing to "
            "return. Hand them over and confirm the pick-up at the till "
            f"(POST /v1/orders/{order.order_id}/pickup) before recording a return"
        )
    return None


def returnable(order: Order, lines: Sequence[OrderLine]) -> bool:
    """Whether a return of ``order`` can be recorded now: handed over, with units of its
    ``lines`` not yet brought back."""
    return not_handed_over(order) is None and any(
        line.quantity > line.returned_quantity for line in lines
    )


def _check_handed_over(order: Order) -> None:
    """Nothing of an order not handed over can come back (409 naming ``order_id``; see
    :func:`not_handed_over`)."""
    refusal = not_handed_over(order)
    if refusal is not None:
        raise Conflict(refusal, field="order_id")


def _cap(recorded: list[ReturnLine], most: int) -> None:
    """Lower the return's refunds, last line first, until they add up to at most ``most``."""
    over = sum(r.refund_minor for r in recorded) - max(0, most)
    for returned in reversed(recorded):
        if over <= 0:
            break
        cut = min(over, returned.refund_minor)
        returned.refund_minor -= cut
        over -= cut


def record_return(
    db: Session,
    *,
    order_id: str,
    request: ReturnIn,
    recorded_by: str | None = None,
    before_commit: Callable[[Session, RecordedReturn], None] | None = None,
) -> RecordedReturn:
    """Units brought back: the refund is what was paid for those units, less their share of
    any order discount, each unit's amount fixed once for the order (:func:`line_refunds`),
    so no set of returns refunds more than the goods were paid and all of them refund that
    exactly; of it, the points payment's share of the order's total is refunded in points
    (``order_returned`` carries it, and loyalty gives the points back). A SKU on several
    lines is returned from them in line order (a return line for each line it takes from).
    Lines marked
    ``restock`` go back into the stock of ``store_id`` (by default the order's own location)
    in the same transaction. Logs ``order_returned`` with the lines and ``recorded_by``, who
    recorded it (an admin user's login, or ``api:<key name>``). The order is held first
    (:func:`lock_order`): a cancellation or another return of it at the same moment waits,
    or this one reads what it did (cancelled: 409; units already back: 422)."""
    order = lock_order(db, order_id)
    _check_handed_over(order)
    order_lines = get_lines(db, order_id=order_id, fresh=True)
    refunds = line_refunds(order, order_lines)
    # A SKU may be on several lines (two prices, a line split by the till): a return of it
    # takes from them in line order.
    lines: dict[str, list[OrderLine]] = {}
    for order_line in order_lines:
        lines.setdefault(order_line.sku, []).append(order_line)
    restock_at = request.store_id or order.store_id or "web"
    if request.store_id is not None and catalog.get_store(db, store_id=request.store_id) is None:
        raise InvalidInput(
            f"Unknown store {request.store_id!r}: name a store of the catalogue, or leave "
            "store_id out for the order's own location",
            field="store_id",
        )
    if any(item.restock for item in request.lines) and (
        catalog.get_store(db, store_id=restock_at) is None
    ):
        raise InvalidInput(f"Unknown store {restock_at!r} to restock", field="store_id")
    now = clock.now()
    returned_at = request.returned_at or now
    if clock.is_in_future(returned_at):
        raise InvalidInput(
            "returned_at is more than 5 minutes in the future; check the sending till's clock",
            field="returned_at",
        )
    if returned_at < clock.as_utc(order.placed_at):
        raise InvalidInput(
            f"returned_at is before order {order_id} was placed "
            f"({clock.as_utc(order.placed_at).isoformat()})",
            field="returned_at",
        )
    return_id = new_id("ret")
    recorded = []
    for index, item in enumerate(request.lines):
        of_sku = lines.get(item.sku)
        if of_sku is None:
            raise InvalidInput(
                f"{item.sku!r} is not on order {order_id}", field=f"lines.{index}.sku"
            )
        left = sum(line.quantity - line.returned_quantity for line in of_sku)
        if item.quantity > left:
            raise InvalidInput(
                f"Only {left} of {item.sku} can still be returned",
                field=f"lines.{index}.quantity",
            )
        wanted = item.quantity
        for line in of_sku:
            units = min(wanted, line.quantity - line.returned_quantity)
            if units <= 0:
                continue
            refund = refunds[line.line_no].units(
                already_returned=line.returned_quantity, quantity=units
            )
            line.returned_quantity += units
            wanted -= units
            recorded.append(
                ReturnLine(
                    return_id=return_id,
                    order_id=order_id,
                    line_no=line.line_no,
                    sku=item.sku,
                    quantity=units,
                    reason=item.reason,
                    refund_minor=refund,
                    channel=request.channel,
                    customer_id=order.customer_id,
                    returned_at=returned_at,
                    restocked_to=restock_at if item.restock else None,
                )
            )
    # Returns recorded before each unit's refund was fixed (an earlier version rounded each
    # return on its own) may have refunded a little more: never past what the goods cost.
    _cap(
        recorded,
        sum(r.amount_minor for r in refunds.values()) - _refunded_before(db, order_id=order_id),
    )
    refund_total = sum(r.refund_minor for r in recorded)
    # Read before this return's lines are added: the refunds of the order's earlier returns.
    points = _points_share(
        db, order_id=order_id, total_minor=order.total_minor, refund_minor=refund_total
    )
    for returned in recorded:
        if returned.restocked_to is not None:
            catalog.return_to_stock(
                db, sku=returned.sku, store_id=returned.restocked_to, quantity=returned.quantity
            )
    db.add_all(recorded)
    append_event(
        db,
        order_events.OrderReturned(
            order_id=order_id,
            return_id=return_id,
            refund_minor=refund_total,
            points_refund_minor=points.this_return_minor,
            points_paid_minor=points.paid_minor,
            points_refunded_to_date_minor=points.refunded_to_date_minor,
            recorded_by=recorded_by,
            currency=order.currency,
            lines=[
                order_events.ReturnedLine(
                    sku=r.sku,
                    line_no=r.line_no,
                    quantity=r.quantity,
                    reason=r.reason,
                    refund_minor=r.refund_minor,
                    restocked_to=r.restocked_to,
                )
                for r in recorded
            ],
        ),
        channel=request.channel,
        customer_id=order.customer_id,
        occurred_at=returned_at,
    )
    result = RecordedReturn(
        return_id=return_id,
        order_id=order_id,
        refund_minor=refund_total,
        lines=recorded,
        points_refund_minor=points.this_return_minor,
    )
    db.flush()
    if before_commit is not None:
        before_commit(db, result)
    db.commit()
    return result
