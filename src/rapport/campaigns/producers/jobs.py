"""The producers' processor, jobs and schedules, registered for the worker (imported by
``rapport.campaigns.tasks``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.campaigns.producers import announcements, late_deliveries
from rapport.campaigns.producers.processor import PROCESSOR, produce_messages
from rapport.events import service as events
from rapport.platform import jobs

STAMP_NOTICES_JOB = "campaigns.stamp_sent_notices"
ANNOUNCEMENT_COUNTS_JOB = "campaigns.announcement_counts"

events.processor(PROCESSOR)(produce_messages)


@jobs.job(announcements.QUEUE_JOB)
def queue_announcement(db: Session, payload: dict[str, Any]) -> None:
    """Queue an announcement's deliveries for its audience (idempotent)."""
    announcements.queue_announcement(db, announcement_id=int(payload["announcement_id"]))


@jobs.job(STAMP_NOTICES_JOB)
def stamp_sent_notices(db: Session, payload: dict[str, Any]) -> None:
    """Stamp the orders' late-delivery notices whose message went out."""
    late_deliveries.stamp_sent_notices(db)


@jobs.job(ANNOUNCEMENT_COUNTS_JOB)
def announcement_counts(db: Session, payload: dict[str, Any]) -> None:
    """Report recent announcements' queued and sent counts to loyalty."""
    announcements.refresh_announcement_counts(db)


jobs.scheduled(STAMP_NOTICES_JOB, every=timedelta(minutes=1))
jobs.scheduled(ANNOUNCEMENT_COUNTS_JOB, every=timedelta(minutes=1))
