"""Late-delivery notices and apologies for points.

``delivery_late`` (orders) becomes the late-delivery message, by email and in the app inbox,
for the order's notice (orders records one only for a customer the service gate allowed). The
loyalty apology rule reacts to the same fact in its own processor, which may run after this
one: when the award is not there yet, the notice waits ``APOLOGY_GRACE`` before it goes, and
the ``points_earned`` of the apology adds the points to it. Points awarded once the notice has
gone (or for a failed delivery, which has no notice) get their own apology message, as do the
apology points of a resolved ticket.

Once a notice's message went out, the orders notice is stamped sent
(:func:`stamp_sent_notices`, a scheduled job): orders keeps the record, campaigns the channel.

A notice must not tell a customer their parcel is late once it has arrived: a ``delivery_late``
handled after the order was delivered (held by the processor, then applied by ``rapport events
retry``) or cancelled is queued as ``suppressed`` with the reason, and the dispatcher asks
again before sending (:func:`overtaken`), both through ``orders.service.late_notice_outdated``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.models import Campaign, Delivery, DeliveryStatus
from rapport.campaigns.producers.messages import (
    APOLOGY,
    LATE_DELIVERY,
    LATE_DELIVERY_INBOX,
    PICKUP_NOT_COLLECTED,
    PICKUP_READY,
    dates_in_languages,
    system_campaign,
    with_control_group,
)
from rapport.events.service import LoggedEvent
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform import clock, formatting

# How long a late notice waits for the apology points the loyalty processor may still award.
APOLOGY_GRACE = timedelta(minutes=2)
# Sent notices looked at by the stamping job (it runs every minute; a worker down longer than
# this leaves older notices unstamped, their messages sent all the same).
STAMP_WINDOW = timedelta(days=2)
_WAITING = ("queued", "deferred")
_LATE_KEYS = (LATE_DELIVERY, LATE_DELIVERY_INBOX)
_WITHDRAWN = "late notice withdrawn: "


def _occasion(order_id: str) -> str:
    return f"order:{order_id}"


def _promised_dates(text: str) -> dict[str, str]:
    """The promised day as each language's notices write it ("4 March", "4 mars", "4. März")."""
    return dates_in_languages("promised_date", text, formatting.day_of_month)


def on_delivery_late(db: Session, event: LoggedEvent) -> None:
    props = event.properties or {}
    order_id = str(props.get("order_id") or "")
    if not order_id or event.customer_id is None:
        return
    notices = [n for n in orders.notices_for(db, order_id=order_id) if n.kind == "delivery_delay"]
    if not notices:
        return  # the service gate refused the customer when the order was flagged
    notice = notices[-1]
    points = loyalty.apology_points(db, customer_id=event.customer_id, order_id=order_id)
    promised = str(props.get("promised_delivery") or "")
    context: dict[str, Any] = {
        "order_id": order_id,
        "promised_delivery": promised,
        **_promised_dates(promised),
        "reason": str(props.get("reason") or ""),
        "apology_points": points,
        "notice_id": notice.id,
    }
    recipient = Recipient(
        customer_id=notice.customer_id or event.customer_id,
        occasion=_occasion(order_id),
        context=context,
    )
    campaigns = [system_campaign(db, LATE_DELIVERY), system_campaign(db, LATE_DELIVERY_INBOX)]
    for campaign in campaigns:
        queue_deliveries(
            db, campaign=campaign, recipients=with_control_group(campaign, [recipient])
        )
    outdated = orders.late_notice_outdated(db, order_ids=[order_id])
    if order_id in outdated:
        # Delivered (or cancelled) before this fact was handled: kept, not sent, saying why.
        _withdraw(
            db, campaigns, occasion=_occasion(order_id), reason=_WITHDRAWN + outdated[order_id]
        )
    elif not points and loyalty.apology_rule_ids(db):
        _hold_for_apology(db, campaigns, occasion=_occasion(order_id))


def _withdraw(db: Session, campaigns: list[Campaign], *, occasion: str, reason: str) -> None:
    """The occasion's deliveries not sent yet become ``suppressed`` with ``reason``, with
    their history rows (the caller's transaction)."""
    now = clock.now()
    ids = list(
        db.scalars(
            update(Delivery)
            .where(
                Delivery.campaign_id.in_([c.id for c in campaigns]),
                Delivery.occasion == occasion,
                Delivery.status.in_(_WAITING),
            )
            .values(status="suppressed", reason=reason, updated_at=now)
            .returning(Delivery.id),
            execution_options={"synchronize_session": False},
        )
    )
    if ids:
        db.execute(
            insert(DeliveryStatus),
            [{"delivery_id": i, "status": "suppressed", "reason": reason, "at": now} for i in ids],
        )


def overtaken(db: Session, rows: Iterable[tuple[int, Campaign, str]]) -> dict[int, str]:
    """The late-delivery notices among claimed deliveries (delivery id, campaign, occasion)
    whose order was delivered or cancelled since they were queued, with why, by delivery id:
    the dispatcher suppresses them."""
    wanted = {
        delivery_id: occasion.removeprefix("order:")
        for delivery_id, campaign, occasion in rows
        if campaign.key in _LATE_KEYS and occasion.startswith("order:")
    }
    if not wanted:
        return {}
    outdated = orders.late_notice_outdated(db, order_ids=wanted.values())
    return {
        delivery_id: _WITHDRAWN + outdated[order_id]
        for delivery_id, order_id in wanted.items()
        if order_id in outdated
    }


def _hold_for_apology(db: Session, campaigns: list[Campaign], *, occasion: str) -> None:
    db.execute(
        update(Delivery)
        .where(
            Delivery.campaign_id.in_([c.id for c in campaigns]),
            Delivery.occasion == occasion,
            Delivery.status == "queued",
        )
        .values(next_attempt_at=clock.now() + APOLOGY_GRACE)
        .execution_options(synchronize_session=False)
    )


def on_points_earned(db: Session, event: LoggedEvent) -> None:
    """Apology points from the program's rules (the processor hands on only an apology rule's
    ``points_earned``): into the waiting notice, or their own message."""
    props = event.properties or {}
    order_id = props.get("order_id")
    points = int(props.get("points") or 0)
    if not order_id or points <= 0 or event.customer_id is None:
        return
    order_id = str(order_id)
    late = [system_campaign(db, LATE_DELIVERY), system_campaign(db, LATE_DELIVERY_INBOX)]
    notices = list(
        db.scalars(
            select(Delivery).where(
                Delivery.campaign_id.in_([c.id for c in late]),
                Delivery.occasion == _occasion(order_id),
            )
        )
    )
    told = [d for d in notices if int((d.context or {}).get("apology_points") or 0) > 0]
    waiting = [d for d in notices if d.status in _WAITING]
    if told:
        return  # the notice already says so
    if not notices and _promise_long_broken(db, order_id):
        # No notice because the lateness itself was history (points awarded while loading
        # past orders, an import): an apology for it now would puzzle more than please.
        return
    if notices and len(waiting) == len(notices):
        now = clock.now()
        for delivery in waiting:
            delivery.context = {**(delivery.context or {}), "apology_points": points}
            delivery.next_attempt_at = min(clock.as_utc(delivery.next_attempt_at), now)
            delivery.updated_at = now
        db.flush()
        return
    queue_apology(
        db,
        customer_id=event.customer_id,
        occasion=_occasion(order_id),
        points=points,
        order_id=order_id,
    )


def _promise_long_broken(db: Session, order_id: str) -> bool:
    order = orders.get_order(db, order_id=order_id)
    if order is None:
        return True
    # The ledger stamps points when it credits them, so the promise's own dates say when it
    # was broken: flagged late, else promised, else placed.
    if order.late_notified_at is not None:
        return clock.as_utc(order.late_notified_at) < clock.now() - STAMP_WINDOW
    broken_on = order.promised_delivery or clock.as_utc(order.placed_at).date()
    return broken_on < (clock.now() - STAMP_WINDOW).date()


def queue_apology(
    db: Session,
    *,
    customer_id: str,
    occasion: str,
    points: int,
    order_id: str | None = None,
    ticket_id: str | None = None,
) -> None:
    campaign = system_campaign(db, APOLOGY)
    queue_deliveries(
        db,
        campaign=campaign,
        recipients=with_control_group(
            campaign,
            [
                Recipient(
                    customer_id=customer_id,
                    occasion=occasion,
                    context={
                        "points": points,
                        "order_id": order_id or "",
                        "ticket_id": ticket_id or "",
                    },
                )
            ],
        ),
    )


def on_ticket_resolved(db: Session, event: LoggedEvent) -> None:
    props = event.properties or {}
    points = int(props.get("apology_points") or 0)
    ticket_id = props.get("ticket_id")
    if points <= 0 or not ticket_id or event.customer_id is None:
        return
    queue_apology(
        db,
        customer_id=event.customer_id,
        occasion=f"ticket:{ticket_id}",
        points=points,
        order_id=props.get("order_id"),
        ticket_id=str(ticket_id),
    )


def stamp_sent_notices(db: Session) -> int:
    """Stamp the orders notices whose message went out (email or inbox, whichever first):
    late deliveries', and pick-ups' ready and not-collected notices; returns how many were
    stamped. Commits."""
    keys = (LATE_DELIVERY, LATE_DELIVERY_INBOX, PICKUP_READY, PICKUP_NOT_COLLECTED)
    since = clock.now() - STAMP_WINDOW
    rows = db.execute(
        select(Delivery.context, Delivery.sent_at)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Campaign.key.in_(keys), Delivery.status == "sent", Delivery.sent_at >= since)
    ).all()
    first_sent: dict[int, datetime] = {}
    for context, sent_at in rows:
        notice_id = (context or {}).get("notice_id")
        if isinstance(notice_id, int) and sent_at is not None:
            at = clock.as_utc(sent_at)
            first_sent[notice_id] = min(first_sent.get(notice_id, at), at)
    stamped = sum(
        orders.mark_notice_sent(db, notice_id=notice_id, sent_at=at, commit=False)
        for notice_id, at in sorted(first_sent.items())
    )
    db.commit()
    return stamped
