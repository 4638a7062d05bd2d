"""Stored membership: a refresh stores only the difference, the processor keeps members
current as customers' events arrive (an order, a consent withdrawn, an erasure), and launches
read the audience in id-ordered batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns import service as campaigns
from rapport.campaigns.models import SegmentMember
from rapport.campaigns.segments.jobs import keep_memberships_current  # noqa: F401 (registers)
from rapport.customers import service as customers
from rapport.domains import load_tasks
from rapport.events.log import events_after
from rapport.events.processors import GAP_PATIENCE, registered_processors
from rapport.flows import privacy
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import clock, jobs
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.campaigns.conftest import TEST_SECRET
from tests.campaigns.planning.factories import frozen_clock, make_segment
from tests.campaigns.planning.factories import make_customer as make_numbered_customer
from tests.campaigns.segments.factories import make_customer
from tests.conftest import app_committing_to, auth
from tests.orders.factories import order_body, seed_catalog

WINE_BUYERS_WITH_EMAIL = {
    "match": "all",
    "conditions": [
        {"kind": "consent", "purpose": "marketing_email"},
        {"kind": "bought_category", "category": "Wine", "days": 30},
    ],
}
EMAIL_OK = {"match": "all", "conditions": [{"kind": "consent", "purpose": "marketing_email"}]}


def stored(db: Session, segment_id: int) -> set[str]:
    return set(
        db.scalars(select(SegmentMember.customer_id).where(SegmentMember.segment_id == segment_id))
    )


def catch_up(db: Session) -> None:
    """Hand the segments processor everything this test logged, as the worker does batch by
    batch (called directly: the runner holds back positions left as holes by other tests'
    rolled-back events for a few seconds, which is the runner's concern, not this one's)."""
    processor = next(p for p in registered_processors() if p.name == "campaigns.segments")
    processor.handle(db, events_after(db, position=0, limit=10_000))
    db.commit()


def test_a_refresh_stores_the_difference_and_the_count(db: Session) -> None:
    first = make_customer(db)
    segment = campaigns.create_segment(db, name="Email OK", definition=EMAIL_OK)
    assert first in stored(db, segment.id)
    count_before = segment.member_count
    added_at = db.scalar(
        select(SegmentMember.added_at).where(
            SegmentMember.segment_id == segment.id, SegmentMember.customer_id == first
        )
    )
    second = make_customer(db)
    customers.set_consent(
        db, customer_id=first, purpose="marketing_email", granted=False, source="test"
    )
    refreshed = campaigns.refresh_segment(db, segment_id=segment.id)
    members = stored(db, segment.id)
    assert second in members
    assert first not in members
    assert refreshed.member_count == count_before  # one in, one out
    assert refreshed.refreshed_at is not None
    # a member who stays keeps the moment they joined
    campaigns.refresh_segment(db, segment_id=segment.id)
    assert (
        db.scalar(
            select(SegmentMember.added_at).where(
                SegmentMember.segment_id == segment.id, SegmentMember.customer_id == second
            )
        )
        is not None
    )
    assert added_at is not None


def test_the_processor_keeps_members_current_after_an_order_and_a_withdrawal(
    db: Session,
) -> None:
    # given a segment of wine buyers who accept email, and a customer who is not one yet
    seed_catalog(db, stock=50)
    buyer = make_customer(db, external_id="C-WINE")
    segment = campaigns.create_segment(db, name="Wine buyers", definition=WINE_BUYERS_WITH_EMAIL)
    catch_up(db)
    assert buyer not in stored(db, segment.id)
    # when they order wine, the processor adds them
    orders.place_order(db, order=OrderIn(**order_body(order_id="O-SEG-1", customer_id="C-WINE")))
    catch_up(db)
    assert buyer in stored(db, segment.id)
    assert campaigns.get_segment(db, segment_id=segment.id).member_count == len(
        stored(db, segment.id)
    )
    # when they withdraw email consent, the processor removes them
    customers.set_consent(
        db, customer_id=buyer, purpose="marketing_email", granted=False, source="preference centre"
    )
    catch_up(db)
    assert buyer not in stored(db, segment.id)
    assert campaigns.get_segment(db, segment_id=segment.id).member_count == len(
        stored(db, segment.id)
    )


def test_an_erased_customer_leaves_every_segment(db: Session) -> None:
    person = make_customer(db)
    segment = campaigns.create_segment(db, name="Everyone with email", definition=EMAIL_OK)
    assert person in stored(db, segment.id)
    privacy.erase_customer(db, customer_id=person, requested_by="dpo")
    catch_up(db)
    campaigns.refresh_segment(db, segment_id=segment.id)
    assert person not in stored(db, segment.id)
    batches = list(campaigns.iter_audience(db, segment_id=segment.id, batch=2))
    assert person not in {customer_id for batch in batches for customer_id in batch}


def test_iter_audience_and_members_pages_are_in_id_order(db: Session) -> None:
    people = sorted(make_customer(db) for _ in range(5))
    segment = campaigns.create_segment(db, name="Five", definition=EMAIL_OK)
    everyone = [
        customer_id
        for batch in campaigns.iter_audience(db, segment_id=segment.id, batch=2)
        for customer_id in batch
    ]
    assert everyone == sorted(everyone)
    assert set(people) <= set(everyone)
    first = campaigns.segment_members(db, segment_id=segment.id, after=None, limit=2)
    rest = campaigns.segment_members(db, segment_id=segment.id, after=first[-1], limit=1000)
    assert first + rest == everyone


def test_a_tracked_view_named_by_the_shops_number_joins_its_segment_in_the_worker_round(
    committed_url: str, tmp_path: Path
) -> None:
    # given a segment of those who viewed a product in the last 30 days, and a customer known
    # to the shop by its own number
    load_tasks()  # every domain's processors, as the worker has them
    frozen_clock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    viewed = {"kind": "event", "type": "product_viewed", "min_count": 1, "days": 30}
    with open_session(committed_url) as db:
        viewer = make_numbered_customer(
            db, consents={"marketing_email": True, "personalization": True}
        )
        number = customers.require_customer(db, customer_id=viewer).external_id
        segment_id = make_segment(db, definition={"conditions": [viewed]})
        secret = platform.create_api_key(db, name="shop", scopes=[platform.Scope("ingest")]).secret
        db.commit()
    # when the shop's page tracks a view naming the customer by that number only
    app = app_committing_to(committed_url, tmp_path, secret_key=TEST_SECRET)
    with TestClient(app) as client:
        body = {
            "event_id": "view-by-number",
            "type": "product_viewed",
            "customer_id": number,
            "channel": "web",
            "occurred_at": clock.now().isoformat(),
            "properties": {"sku": "SKU-1"},
        }
        answer = client.post("/v1/events", json=body, headers=auth(secret))
        assert answer.status_code == 201, answer.text
    # and the worker ticks (past the log's gap patience)
    frozen_clock(clock.now() + GAP_PATIENCE + timedelta(seconds=1))
    jobs.Worker(database_url=committed_url).tick()
    # then the customer is a member after the round
    with open_session(committed_url) as db:
        assert viewer in stored(db, segment_id)


def test_the_segments_processor_waits_behind_the_profile_processor() -> None:
    segments_processor = next(p for p in registered_processors() if p.name == "campaigns.segments")
    assert segments_processor.after == ("customers.profile",)
