"""The customers domain's background work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.customers import service
from rapport.customers.location_consent import location_choices
from rapport.customers.processor import alias_identities, process_profile_events
from rapport.events import service as events
from rapport.platform import jobs


def _person_of(event: events.LoggedEvent) -> set[str]:
    """Whose profile an event changes: its person, and an alias's previous id (merged in)."""
    named = events.by_person(event)
    for kind, value in alias_identities(event):
        named.add(f"user:{value}" if kind == "external_id" else f"visitor:{value}")
    return named


# Traits, consent and groups keep the latest a person said: a held event of theirs holds their
# later ones behind it, so that a retry never puts an older statement over a newer one.
events.processor("customers.profile", batch_size=500, in_order_by=_person_of)(
    process_profile_events
)


@jobs.job("customers.refresh_rfm_boundaries")
def refresh_rfm_boundaries(db: Session, payload: dict[str, Any]) -> None:
    """Recompute the RFM quintile boundaries from the current traits."""
    service.refresh_rfm_boundaries(db)


jobs.scheduled("customers.refresh_rfm_boundaries", every=timedelta(days=1))

# Ingestion stores a tracking event's coordinates only where its person has granted location,
# and no browsing of a person who refused analytics.
events.location_consent_from(location_choices)
