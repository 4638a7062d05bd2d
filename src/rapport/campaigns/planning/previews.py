"""What a campaign's deliveries carry besides what every template gets, for previews and
test sends: a sample of the triggering event, the local invitation's store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.campaigns.models import Campaign
from rapport.campaigns.planning.editing import EVENT_CONTEXT, EXPIRES_AT, STORE_CONTEXT
from rapport.campaigns.planning.local import store_context
from rapport.catalog import service as catalog
from rapport.platform import clock

SAMPLE_EVENT: dict[str, Any] = {
    "name": "Sample event",
    "venue": "Sample venue",
    "latitude": 0.0,
    "longitude": 0.0,
}


def sample_context(db: Session, campaign: Campaign) -> dict[str, Any]:
    """Values like those the campaign's real deliveries will carry."""
    if campaign.kind == "triggered":
        within = int(campaign.trigger.get("within_minutes") or 120)
        event = {**SAMPLE_EVENT, **dict(campaign.trigger.get("filters") or {})}
        deadline = clock.now() + timedelta(minutes=within)
        return {EVENT_CONTEXT: event, EXPIRES_AT: deadline.isoformat()}
    if campaign.store_id is not None:
        store = catalog.get_store(db, store_id=campaign.store_id)
        if store is not None:
            return {STORE_CONTEXT: store_context(store)}
    return {}
