"""Identity resolution and merges: one person, one profile."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from rapport.customers import service as customers
from rapport.customers.models import Customer, CustomerMerge, Identity
from rapport.platform.db import open_session
from rapport.platform.errors import Conflict
from tests.events.factories import tracked


def test_identify_twice_finds_the_same_customer_and_learns_new_identities(db) -> None:
    first = customers.identify_customer(db, identities={"email": "Ana@Example.com"})
    second = customers.identify_customer(
        db, identities={"email": "ana@example.com ", "phone": "+33 6 12 34 56 78"}
    )
    assert second.customer_id == first.customer_id
    held = {(i.kind, i.value) for i in customers.get_identities(db, customer_id=first.customer_id)}
    assert held == {("email", "ana@example.com"), ("phone", "+33612345678")}
    assert customers.count_customers(db) == 1


def test_unique_identity_collision_merges_into_the_oldest_profile(db) -> None:
    # given two customers known by different emails
    ana = customers.identify_customer(db, identities={"email": "ana@example.com"})
    other = customers.identify_customer(db, identities={"loyalty_card": "LC-1"})
    # when one identify call names both
    merged = customers.identify_customer(
        db, identities={"email": "ana@example.com", "loyalty_card": "LC-1"}
    )
    # then they are one profile, the older one, with an audit record
    assert merged.customer_id == ana.customer_id
    assert customers.get_customer(db, customer_id=other.customer_id).customer_id == ana.customer_id
    audit = db.scalars(select(CustomerMerge)).all()
    assert [(m.source_customer_id, m.target_customer_id, m.reason) for m in audit] == [
        (other.customer_id, ana.customer_id, "shared identity")
    ]
    assert customers.count_customers(db) == 1


def test_merge_chain_a_into_b_then_b_into_c(db) -> None:
    # given three customers with identities, consents and events
    a = customers.identify_customer(db, identities={"email": "a@example.com"})
    b = customers.identify_customer(db, identities={"email": "b@example.com"})
    c = customers.identify_customer(db, identities={"email": "c@example.com"})
    customers.set_consent(
        db, customer_id=a.customer_id, purpose="analytics", granted=True, source="x"
    )
    # when A is merged into B, then B into C
    customers.merge_customers(
        db,
        source_customer_id=a.customer_id,
        target_customer_id=b.customer_id,
        reason="dup",
        actor="agent 7",
    )
    customers.merge_customers(
        db,
        source_customer_id=b.customer_id,
        target_customer_id=c.customer_id,
        reason="dup",
        actor="agent 7",
    )
    # then A and B both lead straight to C, which holds everything
    for old in (a, b):
        assert customers.get_customer(db, customer_id=old.customer_id).customer_id == c.customer_id
        assert db.get(Customer, old.customer_id).merged_into == c.customer_id
    emails = sorted(i.value for i in customers.get_identities(db, customer_id=c.customer_id))
    assert emails == ["a@example.com", "b@example.com", "c@example.com"]
    assert customers.has_consent(db, customer_id=c.customer_id, purpose="analytics")
    assert customers.has_consent(db, customer_id=a.customer_id, purpose="analytics")
    timeline_types = [
        e.type for e in customers.get_timeline(db, customer_id=c.customer_id, limit=100)
    ]
    assert timeline_types.count("identified") == 3
    assert timeline_types.count("customers_merged") == 2
    assert customers.count_customers(db) == 1
    assert (
        customers.find_customer(db, kind="email", value="a@example.com").customer_id
        == c.customer_id
    )


def test_unique_identity_never_sits_on_two_customers_even_bypassing_the_service(db) -> None:
    a = customers.identify_customer(db, identities={"email": "a@example.com"})
    b = customers.identify_customer(db, identities={"email": "b@example.com"})
    db.add(
        Identity(
            customer_id=b.customer_id,
            kind="email",
            value="a@example.com",
            is_unique=True,
            source="x",
            created_at=a.created_at,
        )
    )
    with pytest.raises(Exception, match=r"(?i)unique"):
        db.flush()
    db.rollback()


def test_shared_device_id_may_sit_on_two_customers(db) -> None:
    a = customers.identify_customer(
        db, identities={"email": "a@example.com", "device_id": "tablet-1"}
    )
    b = customers.identify_customer(
        db, identities={"email": "b@example.com", "device_id": "tablet-1"}
    )
    assert a.customer_id != b.customer_id
    assert customers.count_customers(db) == 2


def test_adding_an_identity_held_by_someone_else_is_a_conflict(db) -> None:
    a = customers.identify_customer(db, identities={"email": "a@example.com"})
    b = customers.identify_customer(db, identities={"email": "b@example.com"})
    with pytest.raises(Conflict) as error:
        customers.add_identity(db, customer_id=b.customer_id, kind="email", value="A@example.com")
    assert error.value.extra["other_customer_id"] == a.customer_id


def test_a_customer_cannot_be_merged_into_itself(db) -> None:
    a = customers.identify_customer(db, identities={"email": "a@example.com"})
    with pytest.raises(Exception, match="itself"):
        customers.merge_customers(
            db,
            source_customer_id=a.customer_id,
            target_customer_id=a.customer_id,
            reason="x",
            actor="y",
        )


def test_concurrent_identify_for_the_same_email_makes_one_customer(committed_url) -> None:
    # given eight requests identifying the same new email at the same moment
    barrier = threading.Barrier(8)
    results: list[str] = []
    errors: list[BaseException] = []

    def identify() -> None:
        try:
            with open_session(committed_url) as session:
                barrier.wait(timeout=10)
                customer = customers.identify_customer(
                    session, identities={"email": "race@example.com"}
                )
                results.append(customer.customer_id)
        except BaseException as error:  # report, don't hide, thread failures
            errors.append(error)

    threads = [threading.Thread(target=identify) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then all of them got the same, single customer
    assert errors == []
    assert len(results) == 8
    assert len(set(results)) == 1
    with open_session(committed_url) as session:
        assert customers.count_customers(session) == 1
        owners = session.scalars(
            select(Identity.customer_id).where(Identity.value == "race@example.com")
        ).all()
        assert owners == [results[0]]


def test_events_logged_for_the_customer_count_in_the_timeline(db) -> None:
    a = customers.identify_customer(db, identities={"email": "a@example.com"})
    tracked(db, type="note_added", channel="call_center", customer_id=a.customer_id)
    db.commit()
    types = [e.type for e in customers.get_timeline(db, customer_id=a.customer_id)]
    assert types == ["note_added", "identified"]
