"""The customers domain's background work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.customers import service
from rapport.customers.processor import process_profile_events
from rapport.events import service as events
from rapport.platform import jobs

events.processor("customers.profile", batch_size=500)(process_profile_events)


@jobs.job("customers.refresh_rfm_boundaries")
def refresh_rfm_boundaries(db: Session, payload: dict[str, Any]) -> None:
    """Recompute the RFM quintile boundaries from the current traits."""
    service.refresh_rfm_boundaries(db)


jobs.scheduled("customers.refresh_rfm_boundaries", every=timedelta(days=1))
