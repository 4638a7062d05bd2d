"""Campaigns' jobs, schedules and event processors, gathered for the worker."""

import rapport.campaigns.delivery.jobs
import rapport.campaigns.planning.jobs
import rapport.campaigns.producers.jobs
import rapport.campaigns.segments.jobs
import rapport.campaigns.subscriptions.jobs  # noqa: F401
