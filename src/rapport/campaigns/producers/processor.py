"""The ``campaigns.producers`` processor's handler: each event type another domain appends
that becomes a message, routed to its producer, in log order, in the processor's transaction
(a replayed batch queues nothing twice: deliveries are unique per campaign, recipient and
occasion).

Facts older than ``MAX_AGE`` are passed over: a late-delivery notice, an apology or an alert
days after the fact helps no one, and history loaded from files (the demo, an import) must not
turn into messages. Invitations carry their own expiry and announcements are always current.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from rapport.campaigns.producers.alerts import on_score_below_target
from rapport.campaigns.producers.announcements import on_announcement_published
from rapport.campaigns.producers.late_deliveries import (
    on_delivery_late,
    on_points_earned,
    on_ticket_resolved,
)
from rapport.campaigns.producers.pickups import on_order_not_collected, on_order_ready_for_pickup
from rapport.campaigns.producers.surveys import on_survey_invited
from rapport.events.service import LoggedEvent
from rapport.loyalty import service as loyalty
from rapport.platform import clock

PROCESSOR = "campaigns.producers"
MAX_AGE = timedelta(days=2)

Handler = Callable[[Session, LoggedEvent], None]

_HANDLERS: dict[str, Handler] = {
    "delivery_late": on_delivery_late,
    "points_earned": on_points_earned,
    "order_ready_for_pickup": on_order_ready_for_pickup,
    "order_not_collected": on_order_not_collected,
    "ticket_resolved": on_ticket_resolved,
    "score_below_target": on_score_below_target,
    "survey_invited": on_survey_invited,
    "announcement_published": on_announcement_published,
}
_ALWAYS_CURRENT = frozenset({"survey_invited", "announcement_published"})


def produce_messages(db: Session, events: list[LoggedEvent]) -> None:
    """Queue the messages a batch of the log stands for."""
    oldest = clock.now() - MAX_AGE
    apology_rules: frozenset[str] | None = None
    for event in events:
        handler = _HANDLERS.get(event.type)
        if handler is None or event.source != "command":
            continue  # tracked events of the same name are a sender's claim, not our fact
        if event.type not in _ALWAYS_CURRENT and clock.as_utc(event.occurred_at) < oldest:
            continue
        if event.type == "points_earned":
            if apology_rules is None:
                apology_rules = loyalty.apology_rule_ids(db)
            if (event.properties or {}).get("rule_id") not in apology_rules:
                continue
        handler(db, event)
