"""Events naming an erased person's identities are refused at ingestion."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from rapport.events import service as events
from rapport.platform import clock
from rapport.platform.identity import identity_digest
from tests.conftest import auth
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WHEN = (NOW - timedelta(minutes=1)).isoformat()


def suppress(db, *identities: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    events.suppress_identities(
        db, digests=[identity_digest(kind, value) for kind, value in identities]
    )
    db.commit()


def tracked(event_id: str, **person: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "type": "page_viewed",
        "channel": "web",
        "occurred_at": WHEN,
        **person,
    }


def test_batch_refuses_each_event_naming_a_suppressed_identity(client, api_key, db) -> None:
    # given an erased customer's number and email on the suppression list
    clock.set_clock(lambda: NOW)
    suppress(db, ("external_id", "C-9"), ("email", "ann@example.com"))
    batch = [
        tracked("a", customer_id="C-9"),
        {
            **tracked("b", anonymous_id="anon-1"),
            "type": "identified",
            "properties": {"traits": {"email": " Ann@Example.COM "}},
        },
        tracked("c", customer_id="C-10"),
    ]

    # when a batch names them among others
    response = client.post(
        "/v1/events/batch", json={"events": batch}, headers=auth(api_key("ingest"))
    )

    # then exactly those events are refused, naming the identifier, and the rest is stored
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "accepted"]
    assert [(e["field"], e["code"]) for e in results[0]["errors"]] == [
        ("events.0.customer_id", "suppressed")
    ]
    assert [(e["field"], e["code"]) for e in results[1]["errors"]] == [
        ("events.1.properties.traits.email", "suppressed")
    ]
    assert events.get_event(db, event_id="c") is not None
    assert events.count_events(db) == 1


def test_single_event_of_a_suppressed_anonymous_id_is_422(client, api_key, db) -> None:
    # given a suppressed device id
    clock.set_clock(lambda: NOW)
    suppress(db, ("anonymous_id", "anon-9"))

    # when an event names it
    response = client.post(
        "/v1/events", json=tracked("a", anonymous_id="anon-9"), headers=auth(api_key("ingest"))
    )

    # then it is refused and nothing is stored
    assert response.status_code == 422
    assert response.json()["field"] == "anonymous_id"
    assert response.json()["errors"][0]["code"] == "suppressed"
    assert events.count_events(db) == 0


def test_segment_identify_with_a_suppressed_phone_is_refused(client, api_key, db) -> None:
    # given a suppressed phone number
    clock.set_clock(lambda: NOW)
    suppress(db, ("phone", "+31 6 1234 5678"))
    basic = basic_auth(api_key("ingest"))

    # when a Segment identify call carries it in another notation
    response = client.post(
        "/v1/identify",
        json={
            "userId": "u1",
            "traits": {"phone": "+31-6-1234-5678"},
            "messageId": "m1",
            "timestamp": WHEN,
        },
        headers=basic,
    )

    # then it is refused naming the Segment field
    assert response.status_code == 422
    assert response.json()["field"] == "traits.phone"
    assert events.count_events(db) == 0


@contextmanager
def _scans_of_suppression_list(db: Session) -> Iterator[Callable[[], int]]:
    """A counter of the statements that read the suppression list, from the database itself
    (the hot path talks to the driver directly, below SQLAlchemy's events)."""
    if db.get_bind().dialect.name == "postgresql":
        query = text(
            "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)"
            " FROM pg_stat_xact_user_tables WHERE relname = 'suppressed_identities'"
        )
        start = db.scalar(query) or 0
        yield lambda: int((db.scalar(query) or 0) - start)
        return
    statements: list[str] = []
    driver = db.connection().connection.driver_connection
    driver.set_trace_callback(statements.append)
    try:
        yield lambda: sum("suppressed_identities" in statement for statement in statements)
    finally:
        driver.set_trace_callback(None)


def test_suppression_is_checked_with_one_query_per_batch(client, api_key, db) -> None:
    # given a batch naming 50 people
    clock.set_clock(lambda: NOW)
    key = auth(api_key("ingest"))
    batch = [tracked(f"e-{n}", customer_id=f"C-{n}", anonymous_id=f"anon-{n}") for n in range(50)]
    with _scans_of_suppression_list(db) as scans:
        # when it is sent
        response = client.post("/v1/events/batch", json={"events": batch}, headers=key)

        # then the suppression list was read once, and all were stored
        assert response.json()["accepted"] == 50
        assert scans() == 1


def test_suppress_identities_is_idempotent_and_joins_the_callers_transaction(db) -> None:
    # given a digest suppressed twice in one transaction
    digest = identity_digest("email", "ann@example.com")
    events.suppress_identities(db, digests=[digest, digest])
    events.suppress_identities(db, digests=[digest])

    # when the caller rolls back
    db.rollback()

    # then nothing was committed by the verb itself
    from rapport.events.models import SuppressedIdentity

    assert db.get(SuppressedIdentity, digest) is None
