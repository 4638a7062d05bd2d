"""Triggered campaigns on a venue event: customers with location consent near the venue get
one delivery each, due within the campaign's window; others none; a replayed event none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Campaign, Delivery
from rapport.campaigns.planning import editing, launching
from rapport.campaigns.planning.editing import CampaignSettings
from rapport.campaigns.planning.gates import planning_verdict
from rapport.campaigns.planning.jobs import PROFILE_PROCESSOR, TRIGGERS_PROCESSOR
from rapport.campaigns.planning.triggers import process_trigger_events
from rapport.customers import service as customers
from rapport.domains import load_tasks
from rapport.events import service as events
from rapport.events.processors import GAP_PATIENCE, in_run_order, run_batch
from rapport.platform import clock, jobs
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.campaigns.conftest import TEST_SECRET
from tests.campaigns.planning.factories import (
    frozen_clock,
    make_customer,
    make_segment,
    place_customer,
    write_template,
)
from tests.campaigns.receivers import SmtpSink
from tests.conftest import app_committing_to, auth
from tests.events.factories import tracked

# Every domain's processors, as the worker has them (the triggers wait behind the profile's).
load_tasks()

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


def _run_triggers(db: Session) -> None:
    """The profile processor, then the triggers (which wait behind it), to the log's head."""
    for name in (PROFILE_PROCESSOR, TRIGGERS_PROCESSOR):
        proc = next(p for p in events.registered_processors() if p.name == name)
        while run_batch(db, proc):
            pass


def test_the_trigger_processor_is_registered_behind_the_profile_processor() -> None:
    registered = {p.name: p for p in events.registered_processors()}
    assert registered[TRIGGERS_PROCESSOR].after == (PROFILE_PROCESSOR,)
    assert PROFILE_PROCESSOR in registered
    order = [p.name for p in in_run_order()]
    assert order.index(PROFILE_PROCESSOR) < order.index(TRIGGERS_PROCESSOR)


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
    _run_triggers(db)
    (delivery,) = _deliveries(db, campaign.id)
    assert (delivery.customer_id, delivery.occasion) == (fan, "cup-final-2026")
    # Sent again by the venue's system: stored once, so nothing more is queued.
    client.post("/v1/events", json=body, headers=auth(api_key("ingest")))
    _run_triggers(db)
    assert len(_deliveries(db, campaign.id)) == 1


def test_a_tracked_view_by_a_segment_member_queues_one_delivery_in_one_worker_tick(
    committed_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    # given a launched campaign on product_viewed for the customers of Lyon, two of them and
    # one of Paris
    frozen_clock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    with open_session(committed_url) as db:
        by_id, by_number, outsider = (
            make_customer(db, home_city=city) for city in ("Lyon", "Lyon", "Paris")
        )
        number = customers.require_customer(db, customer_id=by_number).external_id
        in_lyon = {"kind": "trait", "field": "home_city", "op": "in", "value": ["Lyon"]}
        campaign = editing.create_campaign(
            db,
            settings=CampaignSettings(
                name="Viewed",
                kind="triggered",
                segment_id=make_segment(db, definition={"conditions": [in_lyon]}),
                trigger={"event_type": "product_viewed", "within_minutes": 30},
            ),
        )
        write_template(db, campaign.id)
        launching.start_campaign(db, campaign_id=campaign.id)
        secret = platform.create_api_key(db, name="shop", scopes=[platform.Scope("ingest")]).secret
        db.commit()
    # when each views a product, the second named by the shop's own customer number only
    app = app_committing_to(committed_url, tmp_path, secret_key=TEST_SECRET)
    with TestClient(app) as client:
        for n, person in enumerate((by_id, number, outsider)):
            body = {
                "event_id": f"view-{n}",
                "type": "product_viewed",
                "customer_id": person,
                "channel": "web",
                "occurred_at": clock.now().isoformat(),
                "properties": {"sku": "SKU-1"},
            }
            answer = client.post("/v1/events", json=body, headers=auth(secret))
            assert answer.status_code == 201, answer.text
    # and the worker ticks once (past the log's gap patience), then again
    frozen_clock(clock.now() + GAP_PATIENCE + timedelta(seconds=1))
    jobs.Worker(database_url=committed_url).tick()
    jobs.Worker(database_url=committed_url).tick()
    # then each member has exactly one delivery for their view, the customer of Paris none
    with open_session(committed_url) as db:
        queued = sorted((d.customer_id, d.occasion) for d in _deliveries(db, campaign.id))
    assert queued == sorted([(by_id, "view-0"), (by_number, "view-1")])
