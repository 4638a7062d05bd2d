"""The feedback domain's background work: survey invitations from the event log, and the
daily check of scores against their targets, and the check for tickets past their SLA due
time (``ticket_breached``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.events import service as events
from rapport.feedback import service, tickets
from rapport.platform import jobs

events.processor("feedback.invitations", batch_size=200)(service.process_feedback_events)


@jobs.job("feedback.check_targets")
def check_targets(db: Session, payload: dict[str, Any]) -> None:
    """Raise an alert for every score below its target (once a day per target)."""
    service.check_targets(db)


jobs.scheduled("feedback.check_targets", every=timedelta(hours=6))


@jobs.job("feedback.flag_breached_tickets")
def flag_breached_tickets(db: Session, payload: dict[str, Any]) -> None:
    """Log ``ticket_breached`` for open tickets that passed their SLA due time."""
    tickets.flag_breached_tickets(db)


jobs.scheduled("feedback.flag_breached_tickets", every=timedelta(minutes=5))
