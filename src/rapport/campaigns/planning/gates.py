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
    deadline = expires_at(context)
    if deadline is not None and now > deadline:
        return ("suppress", f"expired: due by {deadline:%Y-%m-%d %H:%M} UTC")
    return None
