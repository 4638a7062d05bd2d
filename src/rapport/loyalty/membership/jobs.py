"""Background work for paid membership, and announcement jobs queued by earlier versions.
``rapport.loyalty.tasks`` imports this module so the worker knows the handlers and the renewal
schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.loyalty.membership import announcements
from rapport.loyalty.membership import lifecycle as memberships
from rapport.platform import jobs

RENEW_JOB = "loyalty.renew_memberships"


@jobs.job(RENEW_JOB)
def renew_memberships(db: Session, payload: dict[str, Any]) -> None:
    """Renew memberships whose period ended and lapse the cancelled ones (idempotent)."""
    memberships.renew_due(db)


@jobs.job(announcements.QUEUE_JOB)
def queue_announcement(db: Session, payload: dict[str, Any]) -> None:
    """A job an earlier version queued to write an announcement's deliveries: publish the
    announcement again, so that the campaigns domain sends it (once per member)."""
    announcements.requeue_announcement(db, announcement_id=int(payload["announcement_id"]))


jobs.scheduled(RENEW_JOB, every=timedelta(hours=1))
