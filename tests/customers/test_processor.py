"""The profile processor: identity stitching and incremental traits from the event log."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from rapport.customers import service as customers
from rapport.events.models import Event, ProcessorCursor
from tests.customers.factories import T0, order_placed, process, track


def test_anonymous_history_joins_the_profile_when_the_visitor_identifies(db) -> None:
    # given an anonymous visitor browsing
    track(db, "page_viewed", anonymous_id="anon-1", at=T0)
    track(
        db,
        "product_viewed",
        anonymous_id="anon-1",
        at=T0 + timedelta(minutes=1),
        properties={"category": "Wine/Red"},
    )
    process(db)
    # when they identify with their email
    track(
        db,
        "identified",
        anonymous_id="anon-1",
        user_id="C-42",
        at=T0 + timedelta(minutes=2),
        properties={"traits": {"email": "ana@example.com", "firstName": "Ana"}},
    )
    process(db)
    # then one known customer holds the whole history and the identities
    customer = customers.find_customer(db, kind="email", value="ana@example.com")
    assert customer is not None
    assert customer.first_name == "Ana"
    assert customer.is_anonymous is False
    assert (
        customers.find_customer(db, kind="anonymous_id", value="anon-1").customer_id
        == customer.customer_id
    )
    assert (
        customers.find_customer(db, kind="external_id", value="C-42").customer_id
        == customer.customer_id
    )
    types = [e.type for e in customers.get_timeline(db, customer_id=customer.customer_id, limit=20)]
    assert types == ["customers_merged", "identified", "product_viewed", "page_viewed"]
    traits = customers.get_traits(db, customer_id=customer.customer_id)
    assert traits is not None
    assert traits.event_count == 3
    assert traits.first_seen_at == T0
    assert customers.count_customers(db) == 1


def test_events_after_identification_use_the_same_profile(db) -> None:
    track(
        db,
        "identified",
        user_id="C-1",
        anonymous_id="anon-9",
        properties={"traits": {"email": "b@example.com"}},
    )
    track(db, "page_viewed", anonymous_id="anon-9", at=T0 + timedelta(hours=1))
    track(db, "page_viewed", user_id="C-1", at=T0 + timedelta(hours=2))
    process(db)
    customer = customers.find_customer(db, kind="external_id", value="C-1")
    events = db.scalars(select(Event).order_by(Event.position)).all()
    assert {e.customer_id for e in events} == {customer.customer_id}


def test_orders_build_spend_frequency_and_favourite_categories(db) -> None:
    track(
        db,
        "order_placed",
        user_id="C-7",
        at=T0,
        properties=order_placed(4000, ["Wine/Red", "Grocery/Coffee"], store_id="st-par-01"),
    )
    track(
        db,
        "order_placed",
        user_id="C-7",
        at=T0 + timedelta(days=10),
        properties=order_placed(2000, ["Wine/Red"]),
    )
    track(
        db,
        "order_returned",
        user_id="C-7",
        at=T0 + timedelta(days=12),
        properties={"refund_minor": 500},
    )
    track(
        db,
        "store_visited",
        user_id="C-7",
        at=T0 + timedelta(days=3),
        context={"store_id": "st-par-01"},
    )
    process(db)
    customer = customers.find_customer(db, kind="external_id", value="C-7")
    profile = customers.customer_profile(db, customer_id=customer.customer_id, currency="EUR")
    traits = profile["traits"]
    assert traits["order_count"] == 2
    assert traits["spend_minor"] == 5500
    assert traits["average_order_minor"] == 2750
    assert traits["first_order_at"] == T0
    assert traits["last_order_at"] == T0 + timedelta(days=10)
    assert traits["favourite_categories"][0] == "Wine/Red"
    assert traits["preferred_store_id"] == "st-par-01"
    assert traits["channels"] == ["web"]


def test_a_late_event_does_not_move_last_seen_backwards(db) -> None:
    track(db, "page_viewed", user_id="C-8", at=T0 + timedelta(days=5))
    process(db)
    # a till that was offline sends an older event afterwards
    track(db, "store_visited", user_id="C-8", at=T0, channel="store", context={"store_id": "st-1"})
    process(db)
    traits = customers.get_traits(
        db, customer_id=customers.find_customer(db, kind="external_id", value="C-8").customer_id
    )
    assert (traits.first_seen_at, traits.last_seen_at) == (T0, T0 + timedelta(days=5))
    assert traits.channels == ["store", "web"]


def test_location_is_kept_only_with_location_consent(db) -> None:
    located = {"location": {"lat": 48.85, "lon": 2.35}}
    track(db, "location_updated", user_id="C-9", context=located)
    process(db)
    customer = customers.find_customer(db, kind="external_id", value="C-9")
    assert customers.get_traits(db, customer_id=customer.customer_id).last_latitude is None
    # the customer grants location through the app
    track(
        db,
        "consent_changed",
        user_id="C-9",
        at=T0 + timedelta(minutes=1),
        properties={"purpose": "location", "granted": True},
    )
    track(db, "location_updated", user_id="C-9", at=T0 + timedelta(minutes=2), context=located)
    process(db)
    traits = customers.get_traits(db, customer_id=customer.customer_id)
    assert (traits.last_latitude, traits.last_longitude) == (48.85, 2.35)
    assert customers.has_consent(db, customer_id=customer.customer_id, purpose="location")
    assert [c.source for c in customers.consent_history(db, customer_id=customer.customer_id)] == [
        "event:web"
    ]


def test_processing_twice_applies_nothing_twice(db) -> None:
    track(db, "order_placed", user_id="C-10", properties=order_placed(1000, ["Toys"]))
    assert process(db) == 1
    assert process(db) == 0
    customer = customers.find_customer(db, kind="external_id", value="C-10")
    assert customers.get_traits(db, customer_id=customer.customer_id).order_count == 1
    cursor = db.get(ProcessorCursor, "customers.profile")
    assert cursor.position == db.scalar(
        select(Event.position).order_by(Event.position.desc()).limit(1)
    )


def test_a_failing_batch_changes_nothing_and_is_replayed(db, monkeypatch) -> None:
    from rapport.customers import processor as module

    track(db, "order_placed", user_id="C-11", properties=order_placed(1000, ["Toys"]))
    db.commit()

    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("worker killed mid-batch")

    monkeypatch.setattr(module, "apply_event", explode)
    try:
        process(db)
    except RuntimeError:
        db.rollback()
    assert (
        db.get(ProcessorCursor, "customers.profile") is None
        or db.get(ProcessorCursor, "customers.profile").position == 0
    )
    monkeypatch.undo()
    assert process(db) == 1
    customer = customers.find_customer(db, kind="external_id", value="C-11")
    assert customers.get_traits(db, customer_id=customer.customer_id).order_count == 1


def test_processor_waits_for_a_fresh_hole_in_the_log_but_not_an_old_one() -> None:
    from rapport.events.processors import GAP_PATIENCE, settled

    def event(position: int, received_ago: timedelta) -> Event:
        return Event(position=position, received_at=T0 - received_ago)

    # a hole at 3, followed by an event received just now: wait before it
    fresh = [event(1, timedelta(0)), event(2, timedelta(0)), event(4, timedelta(0))]
    assert [e.position for e in settled(0, fresh, now=T0)] == [1, 2]
    # the same hole once the next event is older than the patience: go on past it
    old = [event(1, GAP_PATIENCE), event(2, GAP_PATIENCE), event(4, GAP_PATIENCE)]
    assert [e.position for e in settled(0, old, now=T0)] == [1, 2, 4]
    # and a fresh hole at or below the position known final (nobody writing when it was
    # read) is one for good at once
    assert [e.position for e in settled(0, fresh, now=T0, final_through=3)] == [1, 2, 4]
    assert [e.position for e in settled(0, fresh, now=T0, final_through=2)] == [1, 2]


def test_a_cancelled_order_leaves_the_customers_orders_and_spend(db) -> None:
    placed = order_placed(4000, ["Wine/Red"])
    track(db, "order_placed", user_id="C-8", at=T0, properties=placed)
    track(
        db,
        "order_placed",
        user_id="C-8",
        at=T0 + timedelta(days=1),
        properties=order_placed(2000, ["Wine/Red"]),
    )
    track(
        db,
        "order_cancelled",
        user_id="C-8",
        at=T0 + timedelta(days=2),
        properties={"order_id": placed["order_id"], "total_minor": 4000},
    )
    process(db)
    customer = customers.find_customer(db, kind="external_id", value="C-8")
    traits = customers.get_traits(db, customer_id=customer.customer_id)
    assert (traits.order_count, traits.spend_minor) == (1, 2000)
