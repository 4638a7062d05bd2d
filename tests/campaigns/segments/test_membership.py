"""Stored membership: a refresh stores only the difference, the processor keeps members
current as customers' events arrive (an order, a consent withdrawn, an erasure), and launches
read the audience in id-ordered batches."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns import service as campaigns
from rapport.campaigns.models import SegmentMember
from rapport.campaigns.segments.jobs import keep_memberships_current  # noqa: F401 (registers)
from rapport.customers import service as customers
from rapport.events.log import events_after
from rapport.events.processors import registered_processors
from rapport.flows import privacy
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from tests.campaigns.segments.factories import make_customer
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
