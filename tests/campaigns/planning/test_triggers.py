"""Triggered campaigns on a venue event: customers with location consent near the venue get
one delivery each, due within the campaign's window; others none; a replayed event none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Campaign, Delivery
from rapport.campaigns.planning import editing, launching
from rapport.campaigns.planning.editing import CampaignSettings
from rapport.campaigns.planning.gates import planning_verdict
from rapport.campaigns.planning.jobs import TRIGGERS_PROCESSOR
from rapport.campaigns.planning.triggers import process_trigger_events
from rapport.events import service as events
from rapport.events.processors import GAP_PATIENCE, run_batch
from rapport.platform import clock
from tests.campaigns.planning.factories import (
    frozen_clock,
    make_customer,
    place_customer,
    write_template,
)
from tests.campaigns.receivers import SmtpSink
from tests.conftest import auth
from tests.events.factories import tracked

STADIUM = (48.857, 2.352)
LOCATED = {"marketing_email": True, "location": True}


def _match_day(db: Session, **trigger: object) -> Campaign:
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Match won",
            kind="triggered",
            trigger={
                "event_type": "venue_event",
                "radius_km": 50,
                "within_minutes": 60,
                "filters": {"result": "won"},
                **trigger,
            },
        ),
    )
    write_template(db, campaign.id)
    launching.start_campaign(db, campaign_id=campaign.id)
    return campaign


def _venue_event(db: Session, **properties: object) -> events.LoggedEvent:
    event = tracked(
        db,
        type="venue_event",
        channel="api",
        properties={
            "name": "Cup final",
            "result": "won",
            "latitude": STADIUM[0],
            "longitude": STADIUM[1],
            **properties,
        },
    )
    db.commit()
    return event


def _deliveries(db: Session, campaign_id: int) -> list[Delivery]:
    return list(db.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)))


def test_fans_near_the_venue_with_location_consent_get_one_message(db: Session) -> None:
    clock = frozen_clock()
    near = make_customer(db, consents=LOCATED)
    place_customer(db, near, latitude=48.90, longitude=2.352)  # about 5 km
    edge = make_customer(db, consents=LOCATED)
    place_customer(db, edge, latitude=STADIUM[0] + 0.44, longitude=2.352)  # about 49 km
    no_consent = make_customer(db, consents={"marketing_email": True})
    place_customer(db, no_consent, latitude=48.86, longitude=2.35)
    far = make_customer(db, consents=LOCATED)
    place_customer(db, far, latitude=STADIUM[0] + 0.47, longitude=2.352)  # about 52 km
    campaign = _match_day(db)

    event = _venue_event(db)
    process_trigger_events(db, [event])
    db.commit()

    sent = _deliveries(db, campaign.id)
    assert sorted(d.customer_id for d in sent if d.customer_id) == sorted([near, edge])
    assert {d.occasion for d in sent} == {event.event_id}
    deadline = datetime.fromisoformat(sent[0].context["expires_at"])
    assert deadline == clock.at + timedelta(minutes=60)
    assert sent[0].context["event"]["name"] == "Cup final"

    # The event processed again (a replay, a crash before the cursor moved): nothing new.
    process_trigger_events(db, [event])
    db.commit()
    assert len(_deliveries(db, campaign.id)) == 2


def test_messages_that_miss_their_window_are_dropped_as_expired(db: Session) -> None:
    clock = frozen_clock()
    fan = make_customer(db, consents=LOCATED)
    place_customer(db, fan, latitude=48.86, longitude=2.35)
    campaign = _match_day(db)
    process_trigger_events(db, [_venue_event(db)])
    db.commit()
    (delivery,) = _deliveries(db, campaign.id)
    assert planning_verdict(campaign, delivery.context, now=clock.at) is None
    late = clock.at + timedelta(minutes=61)
    verdict = planning_verdict(campaign, delivery.context, now=late)
    assert verdict is not None
    assert verdict[0] == "suppress"
    assert verdict[1].startswith("expired")

    # An event that is already older than the window queues nothing at all.
    old = _venue_event(db, occurred_at=(clock.at - timedelta(hours=2)).isoformat())
    process_trigger_events(db, [old])
    db.commit()
    assert len(_deliveries(db, campaign.id)) == 1


def test_only_matching_events_of_active_campaigns_fire(db: Session) -> None:
    frozen_clock()
    fan = make_customer(db, consents=LOCATED)
    place_customer(db, fan, latitude=48.86, longitude=2.35)
    campaign = _match_day(db)
    process_trigger_events(db, [_venue_event(db, result="lost")])
    process_trigger_events(db, [_venue_event(db, latitude="nowhere")])
    db.commit()
    assert _deliveries(db, campaign.id) == []

    launching.pause_campaign(db, campaign_id=campaign.id)
    process_trigger_events(db, [_venue_event(db)])
    db.commit()
    assert _deliveries(db, campaign.id) == []
    assert planning_verdict(campaign, {}, now=frozen_clock().at) == ("defer", "campaign paused")

    launching.resume_campaign(db, campaign_id=campaign.id)
    process_trigger_events(db, [_venue_event(db, RESULT="ignored", result="WON")])
    db.commit()
    assert len(_deliveries(db, campaign.id)) == 1


def test_the_trigger_processor_is_registered() -> None:
    assert TRIGGERS_PROCESSOR in {p.name for p in events.registered_processors()}


def test_a_venue_message_reaches_the_fan_by_email_only_within_its_window(
    db: Session, smtp_sink: SmtpSink
) -> None:
    clock = frozen_clock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))  # noon: no quiet hours
    on_time = make_customer(db, consents=LOCATED, first_name="Zoe")
    place_customer(db, on_time, latitude=48.86, longitude=2.35)
    campaign = _match_day(db)
    first = _venue_event(db)
    process_trigger_events(db, [first])
    db.commit()
    dispatch_batch(db, worker="test")
    assert [m.subject for m in smtp_sink.messages] == ["Hello Zoe"]

    late = make_customer(db, consents=LOCATED)
    place_customer(db, late, latitude=48.86, longitude=2.35)
    second = _venue_event(db, name="Semi final")
    process_trigger_events(db, [second])
    db.commit()
    clock.advance(timedelta(minutes=61))  # the worker was down past the window
    dispatch_batch(db, worker="test")
    assert len(smtp_sink.messages) == 1
    statuses = {
        (d.customer_id, d.occasion): (d.status, d.reason) for d in _deliveries(db, campaign.id)
    }
    assert statuses[(on_time, first.event_id)] == ("sent", "")
    for customer_id in (on_time, late):
        status, reason = statuses[(customer_id, second.event_id)]
        assert status == "suppressed"
        assert reason.startswith("expired")


def test_a_tracked_venue_event_reaches_fans_through_the_processor(
    client, api_key, db: Session
) -> None:
    fan = make_customer(db, consents=LOCATED)
    place_customer(db, fan, latitude=48.86, longitude=2.35)
    campaign = _match_day(db)
    body = {
        "event_id": "cup-final-2026",
        "type": "venue_event",
        "channel": "app",
        "anonymous_id": "venue:parc-des-princes",
        "occurred_at": clock.now().isoformat(),
        "properties": {
            "name": "Cup final",
            "result": "won",
            "latitude": STADIUM[0],
            "longitude": STADIUM[1],
        },
    }
    answer = client.post("/v1/events", json=body, headers=auth(api_key("ingest")))
    assert answer.status_code == 201, answer.text
    # On PostgreSQL the processor waits a moment for gaps in the log to fill (earlier tests
    # leave holes in the positions); a few seconds on, a gap is a gap for good.
    frozen_clock(clock.now() + GAP_PATIENCE + timedelta(seconds=1))
    triggers = next(p for p in events.registered_processors() if p.name == TRIGGERS_PROCESSOR)
    while run_batch(db, triggers):
        pass
    (delivery,) = _deliveries(db, campaign.id)
    assert (delivery.customer_id, delivery.occasion) == (fan, "cup-final-2026")
    # Sent again by the venue's system: stored once, so nothing more is queued.
    client.post("/v1/events", json=body, headers=auth(api_key("ingest")))
    while run_batch(db, triggers):
        pass
    assert len(_deliveries(db, campaign.id)) == 1
