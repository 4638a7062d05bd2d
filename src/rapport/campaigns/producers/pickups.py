"""Pick-up-in-store notices: ``order_ready_for_pickup`` (orders) becomes the "ready for
collection" email, naming the store and the last day the order is kept, and
``order_not_collected`` the email saying it was cancelled after that day. Each goes only for
an order notice the orders domain recorded (it records one only for a customer the service
gate allowed), as the late-delivery notice does; the stamping job
(:func:`rapport.campaigns.producers.late_deliveries.stamp_sent_notices`) stamps it sent once
the email went out. A ready notice whose order was collected or cancelled before it went
out is withdrawn (:func:`overtaken`, asked by the dispatcher). An order whose ready email was
never queued (loaded back-dated: its ready fact older than the producers' ``MAX_AGE``) gets no
"not collected" email either."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.models import Campaign, Delivery
from rapport.campaigns.producers.messages import (
    PICKUP_NOT_COLLECTED,
    PICKUP_READY,
    dates_in_languages,
    system_campaign,
    with_control_group,
)
from rapport.events.service import LoggedEvent
from rapport.orders import service as orders
from rapport.platform import formatting


def _days(text: str) -> dict[str, str]:
    """The collection deadline as each language's emails write it ("14 December 2026",
    "14 décembre 2026", "14. Dezember 2026")."""
    return dates_in_languages(
        "collect_by_date", text, lambda day, locale: formatting.day(day, locale, width="long")
    )


def _queue(db: Session, event: LoggedEvent, *, notice_kind: str, campaign_key: str) -> None:
    props = event.properties or {}
    order_id = str(props.get("order_id") or "")
    if not order_id or event.customer_id is None:
        return
    notices = [n for n in orders.notices_for(db, order_id=order_id) if n.kind == notice_kind]
    if not notices:
        return  # the service gate refused the customer when the notice was due
    notice = notices[-1]
    order = orders.get_order(db, order_id=order_id)
    collect_by = str(props.get("collect_by") or "")
    campaign = system_campaign(db, campaign_key)
    recipient = Recipient(
        customer_id=notice.customer_id or event.customer_id,
        occasion=f"order:{order_id}",
        context={
            "order_id": order_id,
            "store_name": str(props.get("store_name") or props.get("store_id") or ""),
            "collect_by": collect_by,
            **_days(collect_by),
            "pickup_code": (order.pickup_code if order is not None else None) or "",
            "notice_id": notice.id,
        },
    )
    queue_deliveries(db, campaign=campaign, recipients=with_control_group(campaign, [recipient]))


def on_order_ready_for_pickup(db: Session, event: LoggedEvent) -> None:
    _queue(db, event, notice_kind=orders.READY_NOTICE, campaign_key=PICKUP_READY)


def on_order_not_collected(db: Session, event: LoggedEvent) -> None:
    """The "not collected" email, only to a customer Rapport told the order was ready (a ready
    delivery was queued for it, whatever became of it): an order loaded back-dated (an import
    of history, whose ready fact was passed over as stale) emails no one when it is released."""
    order_id = str((event.properties or {}).get("order_id") or "")
    if not order_id or not _ready_queued(db, order_id):
        return
    _queue(db, event, notice_kind=orders.NOT_COLLECTED_NOTICE, campaign_key=PICKUP_NOT_COLLECTED)


def _ready_queued(db: Session, order_id: str) -> bool:
    return (
        db.scalar(
            select(Delivery.id)
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(Campaign.key == PICKUP_READY, Delivery.occasion == f"order:{order_id}")
            .limit(1)
        )
        is not None
    )


def overtaken(db: Session, rows: Iterable[tuple[int, Campaign, str]]) -> dict[int, str]:
    """The ready-for-collection notices among claimed deliveries (delivery id, campaign,
    occasion) whose order is no longer waiting at its store (collected, cancelled, or no
    longer known), with why, by delivery id: the dispatcher suppresses them."""
    withdrawn: dict[int, str] = {}
    for delivery_id, campaign, occasion in rows:
        if campaign.key != PICKUP_READY or not occasion.startswith("order:"):
            continue
        order_id = occasion.removeprefix("order:")
        order = orders.get_order(db, order_id=order_id)
        if order is None:
            withdrawn[delivery_id] = f"ready notice withdrawn: order {order_id} no longer known"
        elif order.status != "ready_for_pickup":
            withdrawn[delivery_id] = f"ready notice withdrawn: order {order_id} {order.status}"
    return withdrawn
