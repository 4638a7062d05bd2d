"""``GET /v1/orders/tracked/refusals``: the tracked "Order Completed" and "Order Refunded"
messages that did not become an order or a return, newest first, with their reasons (an admin
key). The orders router (prefix ``/v1/orders``) includes this one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from rapport.orders.tracked.mapping import Reason
from rapport.orders.tracked.outcomes import MAX_PAGE, list_refusals
from rapport.platform.auth import AdminKey
from rapport.platform.db import DbSession
from rapport.platform.schemas import ReadModel

router = APIRouter(prefix="/tracked", tags=["orders"])


class TrackedRefusalOut(ReadModel):
    id: int
    event_id: str = Field(description="The message's messageId")
    event_type: str = Field(description="order_completed or order_refunded")
    order_id: str | None
    reason: str | None = Field(
        description="totals_disagree, unknown_product, unknown_currency, no_products, "
        "order_exists, unknown_order, not_enough_stock, ... (docs/tracking-ecommerce.md)"
    )
    field: str | None = Field(description="The message field at fault, e.g. properties.total")
    message: str | None
    customer_ref: str | None = Field(description="userId, else anonymousId, as sent")
    customer_id: str | None
    occurred_at: datetime
    recorded_at: datetime


class TrackedRefusalsOut(BaseModel):
    refusals: list[TrackedRefusalOut]
    counts: dict[str, int] = Field(description="Refusals kept, by reason (all pages)")
    next_before: int | None = Field(description="Pass as `before` for the next page")


@router.get("/refusals")
def tracked_refusals(
    db: DbSession,
    _key: AdminKey,
    reason: Annotated[
        Reason | None, Query(description="Only the refusals of this reason (one of those listed)")
    ] = None,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> TrackedRefusalsOut:
    """Tracked orders and refunds Rapport refused, newest first, and how many of each
    reason are kept. Fix the cause (the catalogue, the shop's totals) and post the order to
    ``/v1/orders``; a refused message is not retried."""
    page = list_refusals(db, reason=reason, before=before, limit=limit)
    return TrackedRefusalsOut(
        refusals=[TrackedRefusalOut.model_validate(row) for row in page.refusals],
        counts=page.counts,
        next_before=page.next_before,
    )
