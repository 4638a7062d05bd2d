"""What planning says about a delivery at send time, for the delivery part's gates to ask:
a triggered campaign's message that missed its window is dropped (suppressed, "expired"),
a paused or cancelled campaign's messages do not go out, and a message to a customer picked
by what they bought or browsed who has withdrawn ``personalization`` since is dropped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.models import Campaign, Delivery, Segment
from rapport.campaigns.planning.editing import EXPIRES_AT
from rapport.campaigns.segments.conditions import (
    PROFILING_PURPOSE,
    SegmentDefinition,
    is_behavioural,
    parse_definition,
)
from rapport.campaigns.segments.evaluation import segment_query
from rapport.customers import service as customers
from rapport.platform import clock
from rapport.platform.errors import InvalidInput

PROFILING_WITHDRAWN = (
    "no personalization consent: the segment picks by purchase or browsing history"
)


def expires_at(context: Mapping[str, Any]) -> datetime | None:
    """When a delivery stops being worth sending (stored by the trigger), if ever."""
    raw = context.get(EXPIRES_AT)
    if not isinstance(raw, str):
        return None
    try:
        return clock.as_utc(datetime.fromisoformat(raw))
    except ValueError:
        return None


def expiry_reason(context: Mapping[str, Any], *, now: datetime) -> str | None:
    """Why a delivery must not go out any more (its triggered campaign's window has passed),
    or None. The delivery part's dispatcher asks this for every claimed delivery."""
    deadline = expires_at(context)
    if deadline is not None and now > deadline:
        return f"expired: due by {deadline:%Y-%m-%d %H:%M} UTC"
    return None


def planning_verdict(
    campaign: Campaign, context: Mapping[str, Any], *, now: datetime
) -> tuple[str, str] | None:
    """None when planning has no objection; otherwise (action, reason) with action
    "suppress" (never send: expired, campaign cancelled) or "defer" (wait: campaign
    paused)."""
    if campaign.status == "cancelled":
        return ("suppress", "campaign cancelled")
    if campaign.status == "paused":
        return ("defer", "campaign paused")
    expired = expiry_reason(context, now=now)
    return ("suppress", expired) if expired is not None else None


def _profiling_definition(db: Session, campaign: Campaign) -> SegmentDefinition | None:
    """The campaign's segment when one of its conditions is behavioural, else None."""
    segment = db.get(Segment, campaign.segment_id) if campaign.segment_id is not None else None
    if segment is None:
        return None
    try:
        definition = parse_definition(segment.definition)
    except InvalidInput:
        return None
    return definition if any(is_behavioural(c) for c in definition.conditions) else None


def _is_local_invitation(campaign: Campaign) -> bool:
    return campaign.store_id is not None and bool(campaign.categories)


def profiling_withdrawn(db: Session, rows: Iterable[tuple[int, Campaign, str]]) -> dict[int, str]:
    """Among claimed deliveries (delivery id, campaign, occasion), those that must not go out
    because the customer no longer grants ``personalization`` and their campaign picked them
    by what they did: a local invitation always (by the categories they bought), a segment
    when one of its conditions is behavioural, where each such customer is evaluated again
    (a behavioural condition never holds for them) and dropped if it no longer holds. Each
    by delivery id, with why. A withdrawal so takes effect at the next send, also for a
    campaign launched or scheduled before it. Reads only; the dispatcher marks them."""
    by_campaign: dict[int, list[int]] = {}
    campaigns: dict[int, Campaign] = {}
    for delivery_id, campaign, _occasion in rows:
        if campaign.segment_id is not None or _is_local_invitation(campaign):
            by_campaign.setdefault(campaign.id, []).append(delivery_id)
            campaigns[campaign.id] = campaign
    refused: dict[int, str] = {}
    for campaign_id, delivery_ids in by_campaign.items():
        # a local invitation picks everyone by what they bought in its categories
        local = _is_local_invitation(campaigns[campaign_id])
        definition = _profiling_definition(db, campaigns[campaign_id])
        if definition is None and not local:
            continue
        recipients = {
            int(delivery_id): str(customer_id)
            for delivery_id, customer_id in db.execute(
                select(Delivery.id, Delivery.customer_id).where(
                    Delivery.id.in_(delivery_ids), Delivery.customer_id.is_not(None)
                )
            )
        }
        people = sorted(set(recipients.values()))
        granted = customers.contactable(db, customer_ids=people, purpose=PROFILING_PURPOSE)
        lacking = [customer_id for customer_id in people if customer_id not in granted]
        if not lacking:
            continue
        still: set[str] = set()  # those the segment picks without what they did
        if definition is not None and not local:
            for start in range(0, len(lacking), 500):
                chunk = lacking[start : start + 500]
                still.update(
                    str(c) for c in db.scalars(segment_query(db, definition, customer_ids=chunk))
                )
        refused.update(
            {
                delivery_id: PROFILING_WITHDRAWN
                for delivery_id, customer_id in recipients.items()
                if customer_id in lacking and customer_id not in still
            }
        )
    return refused
