"""Jobs, schedules and event processors for campaigns' planning (imported by
rapport.campaigns.tasks): the launch of a campaign, the check every minute that launches
scheduled campaigns whose time has come, and the processor that fires triggered campaigns."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.campaigns.planning import launching
from rapport.campaigns.planning.triggers import process_trigger_events
from rapport.events import service as events
from rapport.platform import jobs

SCHEDULED_CHECK_JOB = "campaigns.launch_scheduled"
TRIGGERS_PROCESSOR = "campaigns.triggers"
# The customers domain's processor (customers/tasks.py) that assigns each event its customer.
PROFILE_PROCESSOR = "customers.profile"


@jobs.job(launching.LAUNCH_JOB)
def launch_campaign(db: Session, payload: dict[str, Any]) -> None:
    """Queue a launched campaign's audience (idempotent: a rerun queues only the rest)."""
    launching.launch_campaign(db, campaign_id=int(payload["campaign_id"]))


@jobs.job(SCHEDULED_CHECK_JOB)
def launch_scheduled(db: Session, payload: dict[str, Any]) -> None:
    """Launch the scheduled campaigns whose time has come."""
    launching.launch_due(db)


jobs.scheduled(SCHEDULED_CHECK_JOB, every=timedelta(minutes=1))
# A trigger reaches the event's customer, which the profile processor assigns the event (from
# its user or visitor id): it reads only events that processor has passed.
events.processor(TRIGGERS_PROCESSOR, batch_size=200, after=(PROFILE_PROCESSOR,))(
    process_trigger_events
)
