"""What planning says about a delivery at send time, for the delivery part's gates to ask:
a triggered campaign's message that missed its window is dropped (suppressed, "expired"),
and a paused or cancelled campaign's messages do not go out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rapport.campaigns.models import Campaign
from rapport.campaigns.planning.editing import EXPIRES_AT
from rapport.platform import clock


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
