"""Tracking events from site, app and tills."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from rapport.events import service
from rapport.events.schemas import EventIn, EventReceipt
from rapport.platform.auth import IngestKey
from rapport.platform.db import DbSession

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": EventReceipt, "description": "Already stored (same event_id)"}},
)
def track_event(
    incoming: EventIn, db: DbSession, response: Response, _key: IngestKey
) -> EventReceipt:
    """Store one tracking event. Sending the same ``event_id`` again stores nothing new."""
    result = service.ingest_event(db, incoming=incoming)
    if result.duplicate:
        response.status_code = status.HTTP_200_OK
    return EventReceipt(
        event_id=result.event.event_id, position=result.event.position, duplicate=result.duplicate
    )
