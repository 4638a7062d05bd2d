"""The ``campaigns.subscriptions`` processor: each logged event of an offered type becomes one
webhook delivery per active subscription that wants it, in the processor's transaction.

A delivery is unique per (campaign, recipient, occasion): the occasion is ``event:<event
id>`` and each subscription has its own campaign, so a replayed batch queues nothing twice.
The delivery's context is the webhook body itself (the dispatcher sends a subscription
campaign's context as it is):

``{"id", "type", "occurred_at", "customer_id", "external_id" (when the customer has one),
"data": <the event's properties>}``

``customer_erased`` carries the random customer id and nothing else (no external id, empty
``data``), and its delivery names no customer (the contact gate would refuse an erased
profile, and erasure must not empty it): it is keyed to the subscription instead.

Only the domains' own facts count (``source`` ``command``): a tracked event that happens to
share a name is a sender's claim. The processor starts at the head of the log when migrated,
and a subscription gets only the events logged since it was created.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.models import Campaign, WebhookSubscription
from rapport.campaigns.subscriptions.managing import EVENT_TYPES
from rapport.customers import service as customers
from rapport.events.service import LoggedEvent
from rapport.platform import clock

PROCESSOR = "campaigns.subscriptions"
ERASED = "customer_erased"


def event_payload(event: LoggedEvent, external_id: str | None) -> dict[str, Any]:
    """The webhook body for ``event``."""
    payload: dict[str, Any] = {
        "id": event.event_id,
        "type": event.type,
        "occurred_at": clock.as_utc(event.occurred_at).isoformat(),
        "customer_id": event.customer_id,
        "data": {} if event.type == ERASED else dict(event.properties or {}),
    }
    if external_id and event.type != ERASED:
        payload["external_id"] = external_id
    return payload


def _external_ids(db: Session, customer_ids: set[str]) -> dict[str, str]:
    table = customers.Customer
    wanted = sorted(customer_ids)
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 1000):
        for customer_id, external_id in db.execute(
            select(table.customer_id, table.external_id).where(
                table.customer_id.in_(wanted[start : start + 1000]),
                table.external_id.is_not(None),
            )
        ):
            found[str(customer_id)] = str(external_id)
    return found


def deliver_events(db: Session, events: list[LoggedEvent]) -> None:
    """Queue a delivery per (matching event, active subscription wanting its type)."""
    offered = [e for e in events if e.type in EVENT_TYPES and e.source == "command"]
    if not offered:
        return
    subscriptions = list(
        db.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.active.is_(True))
            .order_by(WebhookSubscription.id)
        )
    )
    if not subscriptions:
        return
    campaigns = {
        c.id: c
        for c in db.scalars(
            select(Campaign).where(Campaign.id.in_([s.campaign_id for s in subscriptions]))
        )
    }
    external = _external_ids(
        db, {e.customer_id for e in offered if e.customer_id and e.type != ERASED}
    )
    payloads = {e.position: event_payload(e, external.get(e.customer_id or "")) for e in offered}
    for subscription in subscriptions:
        campaign = campaigns.get(subscription.campaign_id)
        wanted = set(subscription.event_types or [])
        if campaign is None or not wanted:
            continue
        # Events logged before the subscription existed are not its (the processor may lag).
        since = clock.as_utc(subscription.created_at)
        recipients = [
            Recipient(
                customer_id=None if e.type == ERASED else e.customer_id,
                address=f"subscription:{subscription.id}",
                occasion=f"event:{e.event_id}",
                context=payloads[e.position],
            )
            for e in offered
            if e.type in wanted and clock.as_utc(e.received_at) >= since
        ]
        if recipients:
            queue_deliveries(db, campaign=campaign, recipients=recipients)
