"""The order a feedback command names (a survey answer, a review, a ticket): one of the
customer's own orders, or a guest order when no customer is named. Anything else is ``422``
naming ``order_id`` before anything is written, so an answer, a review or a ticket never
carries an order Rapport does not have or another customer's."""

from __future__ import annotations

from sqlalchemy.orm import Session

from rapport.orders import service as orders
from rapport.platform.errors import InvalidInput


def require_customers_order(db: Session, *, order_id: str, customer_id: str | None) -> orders.Order:
    """The order ``order_id`` when it is ``customer_id``'s (a guest order when
    ``customer_id`` is None), else :class:`InvalidInput` naming ``order_id``."""
    order = orders.get_order(db, order_id=order_id)
    if order is not None and order.customer_id == customer_id:
        return order
    if customer_id is None:
        raise InvalidInput(
            f"Order {order_id!r} is not a guest order Rapport has: name the customer whose "
            "order it is in customer_id, or leave order_id out",
            field="order_id",
        )
    raise InvalidInput(
        f"Order {order_id!r} is not an order of {customer_id}: name one of their orders, or "
        "leave order_id out",
        field="order_id",
    )
