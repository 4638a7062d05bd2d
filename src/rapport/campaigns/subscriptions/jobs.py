"""The subscriptions' event processor, registered for the worker (imported by
``rapport.campaigns.tasks``)."""

from __future__ import annotations

from rapport.campaigns.subscriptions.processor import PROCESSOR, deliver_events
from rapport.events import service as events

events.processor(PROCESSOR)(deliver_events)
