"""Invitations from the event log: the ``feedback.invitations`` processor's handler turns
deliveries, collections, store visits, purchases and resolved tickets into invitations to the
surveys with that trigger (one per survey and moment, so a replay invites nobody twice)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.feedback.models import Survey
from rapport.feedback.surveys.invitations import Occasion, invite_to_survey, order_signals
from rapport.platform import clock

# Which event prompts which survey trigger.
_EVENT_TRIGGERS = {
    "order_delivered": "after_delivery",
    "order_collected": "after_delivery",
    "store_visited": "after_store_visit",
    "ticket_resolved": "after_ticket_closed",
    "order_placed": "after_purchase",
}


def _moment_of(db: Session, event: Any) -> Occasion | None:
    props: dict[str, Any] = event.properties or {}
    kind = event.type
    if kind in ("order_delivered", "order_collected", "order_placed"):
        order_id = props.get("order_id")
        if not order_id:
            return None
        signals = order_signals(db, order_id=str(order_id))
        if kind == "order_collected" and isinstance(props.get("wait_minutes"), int | float):
            signals["pickup_wait_minutes"] = float(props["wait_minutes"])
        if kind == "order_placed" and props.get("fulfilment") not in (None, "in_store"):
            signals.pop("days_late", None)
        stage = "after_purchase" if kind == "order_placed" else "after_delivery"
        return Occasion(
            source_key=f"order:{order_id}",
            stage=stage,
            channel=event.channel,
            store_id=props.get("store_id"),
            order_id=str(order_id),
            signals=signals,
        )
    if kind == "store_visited":
        store_id = props.get("store_id")
        signals = {}
        if isinstance(props.get("wait_minutes"), int | float):
            signals["pickup_wait_minutes"] = float(props["wait_minutes"])
        return Occasion(
            source_key=f"visit:{event.event_id}",
            stage="after_store_visit",
            channel="store",
            store_id=str(store_id) if store_id else None,
            signals=signals,
        )
    if kind == "ticket_resolved":
        return Occasion(
            source_key=f"ticket:{props.get('ticket_id')}",
            stage="after_ticket_closed",
            channel="call_center",
            order_id=props.get("order_id"),
            ticket_id=props.get("ticket_id"),
            signals={"resolution_hours": props.get("resolution_hours")},
        )
    return None


def process_feedback_events(db: Session, events: Sequence[Any]) -> None:
    """Invite customers to the surveys whose trigger an event stands for (the processor's
    handler; idempotent: one invitation per survey and moment)."""
    surveys: dict[str, list[Survey]] = defaultdict(list)
    for survey in db.scalars(select(Survey).where(Survey.active.is_(True))):
        surveys[survey.trigger].append(survey)
    if not surveys:
        return
    for event in events:
        trigger = _EVENT_TRIGGERS.get(event.type)
        if trigger is None or not surveys.get(trigger) or event.customer_id is None:
            continue
        moment = _moment_of(db, event)
        if moment is None:
            continue
        for survey in surveys[trigger]:
            if survey.channel is not None and survey.channel != event.channel:
                continue
            if clock.as_utc(event.occurred_at) < clock.now() - timedelta(days=survey.link_days):
                continue  # history replayed: too late to ask about it
            try:
                with db.begin_nested():
                    invite_to_survey(db, survey, str(event.customer_id), moment)
            except IntegrityError:
                continue  # invited concurrently
