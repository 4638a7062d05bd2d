"""Placing an order with its loyalty effects, as one verb for the API, CLI, admin pages and jobs.

An order may carry a ``loyalty`` block: the checkout effects the shop showed the member (points
to pay with, coupons, the shipping before benefits). :func:`place_order` records the order and
makes exactly those effects true in the order's own transaction: the points paid are redeemed,
the coupons consumed, and what the member saved recorded. All or nothing: an effect loyalty
refuses (a coupon already used, too few points, totals that differ from the effects) leaves no
order, no stock moved and no event. A ``points`` payment comes only with that block: points
are spent through the checkout, never on the order's word alone.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform.errors import InvalidInput

# The payment method that spends loyalty points (``OrderPlaced.points_payment_minor``).
POINTS = "points"


def place_order(
    db: Session, *, order: orders.OrderIn, before_commit: orders.BeforeCommit | None = None
) -> orders.Order:
    """Place ``order`` (``orders.place_order``) and apply its loyalty checkout effects with it,
    all or nothing. ``before_commit`` runs last in the same transaction (the API stores its
    idempotent answer there). On any refusal the transaction is rolled back and the error
    raised. A ``points`` payment without the ``loyalty`` block is refused before anything is
    stored (422 naming ``payments``): no points would be taken for it, yet a return would
    give them back."""
    if order.loyalty is None and any(p.method == POINTS for p in order.payments):
        raise InvalidInput(
            "A points payment needs the loyalty block, so the points are taken with the "
            "order: ask POST /v1/loyalty/checkout with points_to_use and send its effects as "
            'loyalty {"points_to_use": ...}, or pay the amount by another method',
            field="payments",
        )

    def with_loyalty(session: Session, placed: orders.Order) -> None:
        if order.loyalty is not None:
            apply_loyalty_effects(session, order=order, placed=placed)
        if before_commit is not None:
            before_commit(session, placed)

    try:
        return orders.place_order(db, order=order, before_commit=with_loyalty)
    except Exception:
        # The verb owns its transaction: an order or effect refused leaves nothing behind for
        # any caller (the API's idempotency release rolled back too; a CLI or job may not).
        db.rollback()
        raise


def apply_loyalty_effects(db: Session, *, order: orders.OrderIn, placed: orders.Order) -> None:
    """The order's ``loyalty`` block made true for ``placed`` in the caller's transaction (no
    commit): the order's discounts, shipping and points payment must be the checkout's."""
    assert order.loyalty is not None
    loyalty.apply_to_order(
        db,
        order_id=placed.order_id,
        customer_id=placed.customer_id,
        channel=order.channel,
        store_id=order.store_id,
        lines=loyalty.CartItem.of(order.lines),
        discount_minor=order.discount_minor + sum(line.discount_minor for line in order.lines),
        shipping_minor=order.shipping_minor,
        points_payment_minor=sum(p.amount_minor for p in order.payments if p.method == "points"),
        coupons=order.loyalty.coupons,
        points_to_use=order.loyalty.points_to_use,
        shipping_before_minor=order.loyalty.shipping_before_minor,
        at=placed.placed_at,
        currency=order.currency,
    )
