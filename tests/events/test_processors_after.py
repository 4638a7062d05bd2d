"""A processor that runs after another (the triggers after the profile processor, which gives
an event its customer) never judges an event the other holds: it holds it too, untried, and
``rapport events retry`` applies it there once the profile processor has, where the triggers
passed it without its customer and the customer's message was never queued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from rapport.campaigns.models import Delivery
from rapport.campaigns.planning import editing, launching
from rapport.campaigns.planning.editing import CampaignSettings
from rapport.campaigns.planning.jobs import PROFILE_PROCESSOR, TRIGGERS_PROCESSOR
from rapport.customers import service as customers
from rapport.domains import load_tasks
from rapport.events import processors
from rapport.events.models import Event, HeldEvent
from rapport.events.processors import GAP_PATIENCE, Processor, retry_held, run_processors
from rapport.platform import clock
from rapport.platform.db import open_session
from tests.campaigns.planning.factories import make_customer, write_template
from tests.customers.factories import track
from tests.events.factories import BrokenOn

load_tasks()
START = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture
def broken(committed_url: str, monkeypatch: pytest.MonkeyPatch) -> BrokenOn:
    handler = BrokenOn()
    profile = processors._processors[PROFILE_PROCESSOR]
    triggers = processors._processors[TRIGGERS_PROCESSOR]
    assert triggers.after == (PROFILE_PROCESSOR,)
    monkeypatch.setattr(
        processors,
        "_processors",
        {
            PROFILE_PROCESSOR: Processor(
                name=PROFILE_PROCESSOR, handle=handler, in_order_by=profile.in_order_by
            ),
            TRIGGERS_PROCESSOR: triggers,
        },
    )
    return handler


def _deliveries(url: str, campaign_id: int) -> list[tuple[str, str]]:
    with open_session(url) as db:
        rows = db.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))
        return [(str(d.customer_id), d.occasion) for d in rows]


def _held(url: str) -> dict[str, tuple[int | None, str]]:
    with open_session(url) as db:
        rows = db.execute(
            select(HeldEvent.processor, HeldEvent.behind, HeldEvent.error, Event.position)
            .join(Event, Event.position == HeldEvent.position)
            .where(HeldEvent.held_at.is_not(None))
        ).all()
        return {row.processor: (row.behind, row.error) for row in rows}


def test_a_trigger_waits_for_the_customer_the_held_profile_event_gives(
    committed_url: str, broken: BrokenOn
) -> None:
    frozen = clock.FrozenClock(START)
    clock.set_clock(frozen)
    # given a launched triggered campaign on product_viewed, to the viewer
    with open_session(committed_url) as db:
        customer_id = make_customer(db)
        number = customers.require_customer(db, customer_id=customer_id).external_id
        campaign = editing.create_campaign(
            db,
            settings=CampaignSettings(
                name="Viewed",
                kind="triggered",
                trigger={"event_type": "product_viewed", "within_minutes": 600},
            ),
        )
        write_template(db, campaign.id)
        launching.start_campaign(db, campaign_id=campaign.id)
        # when a view named by the shop's customer number reaches a profile processor that
        # cannot read it, until it holds it
        view = track(db, "product_viewed", user_id=number, at=START, properties={"sku": "S-1"})
        db.commit()
        position = view.position
    broken.poisoned.add(view.event_id)
    for _ in range(4):
        frozen.advance(GAP_PATIENCE + timedelta(seconds=40))
        run_processors(database_url=committed_url)
    # then the triggers have not judged it: they hold it too, waiting for the profile
    held = _held(committed_url)
    assert set(held) == {PROFILE_PROCESSOR, TRIGGERS_PROCESSOR}
    assert held[TRIGGERS_PROCESSOR][0] == position
    assert PROFILE_PROCESSOR in held[TRIGGERS_PROCESSOR][1]
    assert _deliveries(committed_url, campaign.id) == []
    # a retry before the cause is mended applies nothing and leaves the trigger waiting
    outcome = retry_held(database_url=committed_url)
    assert (outcome.applied, outcome.still_failing, outcome.still_waiting) == (0, 1, 1)
    assert _deliveries(committed_url, campaign.id) == []
    # once mended, the retry gives the view its customer, then the trigger queues their message
    broken.poisoned.clear()
    outcome = retry_held(database_url=committed_url)
    assert (outcome.applied, outcome.still_failing, outcome.still_waiting) == (2, 0, 0)
    assert _deliveries(committed_url, campaign.id) == [(customer_id, view.event_id)]
    assert _held(committed_url) == {}
