"""The orders domain's part of a customer merge (registered with
``customers.service.merge_step`` in ``tasks.py``, run in the merge's transaction): the
merged-away profile's orders, returns and order notices become the survivor's, the
survivor's lifetime value is worked out again from all their orders, and this process's
return-risk history is rebuilt once the merge commits.

Refused tracked orders (``tracked_order_events``) stay as they were recorded: they keep what
the shop sent, and export and erasure find them under every profile merged into the person."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from rapport.orders.customer_value.serving import merge_customer_value
from rapport.orders.models import CustomerNotice, Order, ReturnLine
from rapport.orders.return_risk.serving import history_changed


def merge_customer_orders(db: Session, *, source_id: str, target_id: str) -> dict[str, int]:
    """Move ``source_id``'s orders (their lines, payments and status history go with them),
    return lines and notices to ``target_id``, in the caller's transaction; how many of each
    moved, and whether the survivor has a lifetime value now (``customer_value``: 1 or 0)."""
    moved = {
        name: int(
            db.execute(
                update(model).where(model.customer_id == source_id).values(customer_id=target_id)
            ).rowcount  # type: ignore[attr-defined]
            or 0
        )
        for name, model in _MOVED
    }
    moved["customer_value"] = int(
        merge_customer_value(db, source_id=source_id, target_id=target_id)
    )
    if moved["orders"]:
        history_changed(db)
    return moved


# The tables whose rows name their customer (the value is worked out once they moved).
_MOVED: tuple[tuple[str, type[Order] | type[ReturnLine] | type[CustomerNotice]], ...] = (
    ("orders", Order),
    ("return_lines", ReturnLine),
    ("order_notices", CustomerNotice),
)
