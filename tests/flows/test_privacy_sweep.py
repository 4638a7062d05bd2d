"""Erasure reaches the person's data held under other profiles: events a public tracking key
stored under a visitor (an identify from another browser naming the customer's email, a
newsletter signup carrying it, an alias naming their customer number) are scrubbed by the
erasure's sweep job, and the visitor profile loses the name that came with them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from rapport.events import privacy as events_privacy
from rapport.events.models import Event
from rapport.feedback.models import Ticket
from rapport.flows import privacy
from rapport.platform.models import Job
from tests.conftest import auth, command
from tests.customers.factories import process
from tests.events.factories import basic_auth


def _send(client, secret: str, call: str, message: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    answer = client.post(f"/v1/{call}", json=message, headers=basic_auth(secret))
    assert answer.status_code == 200, answer.text


def _run_sweep(db) -> int:  # type: ignore[no-untyped-def]
    """Run the sweep's queued pages as the worker would, in the test's session."""
    ran = 0
    while job := db.scalar(
        select(Job).where(Job.kind == privacy.SWEEP_JOB, Job.status == "queued").order_by(Job.id)
    ):
        privacy.sweep_erased_contacts(db, dict(job.payload))
        job.status = "done"
        db.commit()
        ran += 1
    return ran


def _naming(db, *texts: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    found = []
    for event in db.scalars(select(Event).execution_options(populate_existing=True)):
        stored = f"{event.user_id} {event.anonymous_id} {event.properties} {event.context}"
        if any(text.lower() in stored.lower() for text in texts):
            found.append((event.event_id, event.type))
    return found


@pytest.mark.parametrize("page", [2, 2_000])
def test_erasure_scrubs_other_profiles_events_naming_the_person(
    client, api_key, db, monkeypatch, page
) -> None:
    monkeypatch.setattr(events_privacy, "SWEEP_PAGE", page)
    public, admin, reader = api_key("ingest"), api_key("write", "admin"), api_key("read")
    # given a customer known by email and name, and, from other browsers through the page's
    # key, an identify naming their email and name, a signup carrying their email (upper
    # case: identities compare normalised) and an alias naming their customer number
    traits = {"email": "t2-f1@example.com", "firstName": "Fay"}
    own = {**traits, "phone": "+33611223344"}
    _send(client, public, "identify", {"userId": "T2-F1", "traits": own, "messageId": "f1-1"})
    _send(
        client, public, "identify", {"anonymousId": "t2-w1", "traits": traits, "messageId": "f1-2"}
    )
    signup = {"email": "T2-F1@Example.com", "form": {"contact": {"email": "t2-f1@example.com"}}}
    _send(
        client,
        public,
        "track",
        {
            "anonymousId": "t2-w2",
            "event": "Newsletter Signup",
            "properties": signup,
            "messageId": "f1-4",
        },
    )
    _send(client, public, "alias", {"previousId": "T2-F1", "userId": "T2-F9", "messageId": "f1-5"})
    # and a form carrying their phone as people write it
    call = {"anonymousId": "t2-w3", "event": "Callback Requested", "messageId": "f1-6"}
    _send(
        client, public, "track", {**call, "properties": {"contact": {"tel": "+33 6 11 22 33 44"}}}
    )
    # and someone else's event, which stays as it is
    other = {"email": "bob@example.com"}
    _send(client, public, "identify", {"userId": "T2-B1", "traits": other, "messageId": "b-1"})
    process(db)
    visitor = db.scalar(select(Event.customer_id).where(Event.event_id == "f1-2"))
    assert visitor is not None
    before = client.get(f"/v1/customers/{visitor}", headers=auth(reader))
    assert before.json()["first_name"] == "Fay", before.text
    assert _naming(db, "t2-f1")
    assert _naming(db, "6 11 22 33 44") == [("f1-6", "callback_requested")]

    # when the customer is erased and the worker runs the erasure's sweep
    erased = client.post(
        "/v1/customers/T2-F1/erase", json={"requested_by": "t"}, headers=command(admin)
    )
    assert erased.status_code == 200, erased.text
    assert _run_sweep(db) >= 1

    # then no stored event names their email, customer number or name, under any profile
    assert _naming(db, "t2-f1", "Fay", "6 11 22 33 44") == []
    # the visitor profile lost the name that came with their email
    after = client.get(f"/v1/customers/{visitor}", headers=auth(reader))
    assert after.status_code == 200, after.text
    assert (after.json()["first_name"], after.json()["email"]) == (None, None)
    # and someone else's event is untouched
    assert _naming(db, "bob@example.com") == [("b-1", "identified")]


def test_erasure_blanks_feedback_of_others_that_quotes_the_persons_email(
    client, api_key, db
) -> None:
    key = api_key("write", "admin", "read")
    made = client.post(
        "/v1/customers",
        json={"external_id": "T2-G1", "email": "t2-g1@example.com"},
        headers=command(key),
    )
    assert made.status_code == 201, made.text

    def ticket(subject: str, body: str) -> str:
        sent = {"kind": "question", "channel": "web", "subject": subject, "body": body}
        opened = client.post("/v1/feedback/tickets", json=sent, headers=command(key))
        assert opened.status_code == 201, opened.text
        return str(opened.json()["ticket_id"])

    # given a ticket a visitor filed quoting the customer's email (another spelling), and one
    # that does not
    quoting = ticket("Order for my friend", "Please write to T2-G1@Example.com. about it")
    other = ticket("Where is my parcel", "Write to bob@example.com")

    # when the customer is erased and the sweep runs
    erased = client.post(
        "/v1/customers/T2-G1/erase", json={"requested_by": "t"}, headers=command(key)
    )
    assert erased.status_code == 200, erased.text
    _run_sweep(db)

    # then the quoting ticket lost its text, the other kept it
    def read(ticket_id: str) -> tuple[str, str]:
        found = db.get(Ticket, ticket_id, populate_existing=True)
        return found.subject, found.body

    assert read(quoting) == ("(erased)", "")
    assert read(other) == ("Where is my parcel", "Write to bob@example.com")
