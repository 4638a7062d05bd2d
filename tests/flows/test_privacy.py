"""Privacy rights across every domain: one customer seeded everywhere with distinctive
values, erased over HTTP, then the whole database dumped (SQLite ``.dump`` and its WAL,
PostgreSQL ``pg_dump``) and searched; export returns every domain."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.domains import DOMAINS
from rapport.flows import privacy
from rapport.loyalty import service as loyalty
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.models import LoyaltyAccount, TierStanding
from rapport.loyalty.referrals import referring
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import Base, open_session
from tests.conftest import app_committing_to, auth
from tests.feedback.factories import make_survey
from tests.orders.factories import CHIANTI, order_body, seed_catalog

PG_DUMP = Path("/usr/lib/postgresql/15/bin/pg_dump")

# The person, with values found nowhere else, so that a dump containing one is a leak.
EMAIL = "zephyrine.quillfeather@example.org"
PHONE = "+33 6 47 19 28 56"
PHONE_STORED = "+33647192856"
FIRST, LAST = "Zephyrine", "Quillfeather"
CITY = "Vrillonville-sur-Quill"
EXTERNAL_ID = "CRM-QF-770412"
ANONYMOUS_ID = "anon-qf-55213"
BIRTHDAY = "1987-11-23"
REVIEW_TITLE = "Quaffable-title-40918"
REVIEW_TEXT = "Xylographic-review-88410"
TICKET_SUBJECT = "Xylographic-subject-77302"
TICKET_BODY = "Xylographic-ticket-55127"
RESOLUTION = "Xylographic-resolution-22906"
SURVEY_COMMENT = "Xylographic-comment-33914"
ORDER_NOTE = "Xylographic-note-66047"
# Free text a client wrote on a points movement (ledger and points_earned event).
POINTS_REASON = "Xylographic-reason-70331 bonus"
# Free text staff wrote on a merge of their two profiles (customer_merges.reason).
MERGE_REASON = "Xylographic-merge-51288"
# A client's own event id that spells out who the event is about.
EVENT_ID = f"signup-{EMAIL}-{EXTERNAL_ID}"
PERSONAL = (
    EMAIL,
    PHONE,
    PHONE_STORED,
    FIRST,
    LAST,
    CITY,
    EXTERNAL_ID,
    ANONYMOUS_ID,
    BIRTHDAY,
    REVIEW_TITLE,
    REVIEW_TEXT,
    TICKET_SUBJECT,
    TICKET_BODY,
    RESOLUTION,
    SURVEY_COMMENT,
    ORDER_NOTE,
    POINTS_REASON,
    MERGE_REASON,
)
# Values the events domain must scrub from event documents (another part of issue 14 makes
# that scrub deep); kept apart so a failure says which domain leaked.
IN_EVENTS = (f"https://shop.example/account?email={EMAIL}", f"{FIRST} {LAST}")


@dataclass
class Api:
    client: TestClient
    headers: dict[str, str]
    url: str

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> Any:
        headers = {**self.headers, "Idempotency-Key": key or f"privacy-{uuid.uuid4().hex}"}
        response = self.client.post(path, json=body, headers=headers)
        assert response.status_code < 300, response.text
        return response.json()


@pytest.fixture
def api(committed_url: str, tmp_path: Path) -> Iterator[Api]:
    """The app on a database whose every request commits, as in production."""
    application = app_committing_to(
        committed_url, tmp_path, secret_key="privacy-flow-secret-for-tests"
    )
    with open_session(committed_url) as db:
        secret = platform.create_api_key(db, name="dpo", scopes=[platform.Scope.ADMIN]).secret
    with TestClient(application, raise_server_exceptions=False) as client:
        yield Api(client, auth(secret), committed_url)


def tracked_event() -> dict[str, Any]:
    """A page view as the shop's site sends it, under an event id naming the person."""
    return {
        "event_id": EVENT_ID,
        "type": "page_viewed",
        "customer_id": EXTERNAL_ID,
        "anonymous_id": ANONYMOUS_ID,
        "channel": "web",
        "occurred_at": clock.now().isoformat(),
        "properties": {"url": IN_EVENTS[0], "full_name": IN_EVENTS[1]},
    }


def seed_everywhere(api: Api) -> str:
    """One customer in every domain, through the API where it has a route (with
    Idempotency-Keys, so answers naming them are stored), and the services elsewhere."""
    customer = api.post(
        "/v1/customers",
        {
            "external_id": EXTERNAL_ID,
            "email": EMAIL,
            "phone": PHONE,
            "first_name": FIRST,
            "last_name": LAST,
            "home_city": CITY,
            "consents": {"marketing_email": True, "personalization": True},
        },
    )
    cid = customer["customer_id"]
    # a duplicate profile of theirs, merged in with a note naming them
    duplicate = api.post("/v1/customers", {"external_id": "CRM-QF-DUP"})["customer_id"]
    api.post(
        "/v1/customers/merge",
        {
            "source_customer_id": duplicate,
            "target_customer_id": cid,
            "reason": f"{MERGE_REASON}: phoned from {PHONE} ({EMAIL})",
        },
    )
    api.post(f"/v1/customers/{cid}/identities", {"kind": "anonymous_id", "value": ANONYMOUS_ID})
    api.client.put(
        f"/v1/customers/{cid}/preferences",
        json={"birthday": BIRTHDAY, "source": "app"},
        headers=api.headers,
    ).raise_for_status()
    api.post("/v1/events", tracked_event())
    with open_session(api.url) as db:
        seed_catalog(db)
    order = api.post("/v1/orders", order_body(order_id="O-QF-1", customer_id=cid), key="ord-qf")
    api.post(f"/v1/orders/{order['order_id']}/status", {"status": "shipped", "note": ORDER_NOTE})
    # delivered: a review names an order of theirs they received
    api.post(f"/v1/orders/{order['order_id']}/status", {"status": "delivered"})
    api.post(
        f"/v1/loyalty/members/{cid}/earn", {"points": 4428, "reason": POINTS_REASON}, key="e-qf"
    )
    api.post(
        "/v1/feedback/reviews",
        {
            "customer_id": cid,
            "sku": CHIANTI,
            "order_id": "O-QF-1",
            "rating": 4,
            "title": REVIEW_TITLE,
            "text": REVIEW_TEXT,
            "device_id": "device-qf-9001",
        },
        key="rev-qf",
    )
    ticket = api.post(
        "/v1/feedback/tickets",
        {
            "customer_id": cid,
            "order_id": "O-QF-1",
            "kind": "complaint",
            "channel": "web",
            "subject": TICKET_SUBJECT,
            "body": f"{TICKET_BODY}: call {FIRST} {LAST} on {PHONE} or {EMAIL}",
        },
        key="tkt-qf",
    )
    api.post(
        f"/v1/feedback/tickets/{ticket['ticket_id']}/resolve",
        {"resolution": RESOLUTION},
        key="res-qf",
    )
    with open_session(api.url) as db:
        make_survey(db, survey_id="nps-manual", trigger="manual")
    invitation = api.post("/v1/feedback/surveys/nps-manual/invitations", {"customer_id": cid})
    api.post(
        f"/v1/feedback/invitations/{invitation['invitation_id']}/answer",
        {"score": 3, "comment": SURVEY_COMMENT},
        key="ans-qf",
    )
    with open_session(api.url) as db:
        # A paid plan, a Gold standing, a referral of a friend and a coupon of their own.
        membership_plans.save_plan(
            db, plan_id="plus", name="Plus", fee_minor=900, currency="EUR", period="month"
        )
        memberships.join(db, customer_id=cid, plan_id="plus")
        # merge: the merge above may already have placed them on the base tier
        db.merge(
            TierStanding(
                customer_id=cid,
                tier_id="gold",
                since=clock.now(),
                review_at=clock.now() + timedelta(days=365),
                qualifying_value=4428,
                updated_at=clock.now(),
            )
        )
        db.commit()
        code = referring.referral_code(db, customer_id=cid).code
        friend = customers.identify_customer(db, identities={"email": "friend@example.net"})
        referring.refer(db, code=code, friend_id=friend.customer_id)
        reward_coupons.create_campaign_coupon(
            db,
            rule="welcome",
            kind="amount",
            value=500,
            expires_at=clock.now() + timedelta(days=30),
            customer_id=cid,
        )
        db.commit()
    # a refusal kept as its key's answer, naming them inside its sentence
    joined_again = api.client.post(
        f"/v1/loyalty/members/{EXTERNAL_ID}/membership",
        json={"plan_id": "plus"},
        headers={**api.headers, "Idempotency-Key": "join-again"},
    )
    assert joined_again.status_code == 409, joined_again.text
    assert str(cid) in joined_again.json()["detail"]
    return str(cid)


def dump_database(url: str) -> str:
    """The whole database as SQL text (and, on SQLite, what its files hold)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(str(parsed.database))
        with sqlite3.connect(path) as connection:
            text = "\n".join(connection.iterdump())
        # and the files' bytes: freed pages and the WAL's old frames hold rows' old versions
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                text += "\n" + file.read_bytes().decode("utf-8", "replace")
        return text
    pg_dump = str(PG_DUMP) if PG_DUMP.exists() else shutil.which("pg_dump")
    assert pg_dump, "pg_dump is needed to dump the PostgreSQL database"
    plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run(
        [pg_dump, "--data-only", "--inserts", plain],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
    ).stdout


def test_erasure_leaves_no_copy_anywhere_in_the_database(api: Api) -> None:
    # given a customer with data in every domain, including answers stored for retries
    cid = seed_everywhere(api)
    before = dump_database(api.url)
    for value in (*PERSONAL, *IN_EVENTS):
        assert value in before, f"the seed did not store {value!r}"
    with open_session(api.url) as db:
        issued_before = loyalty.liability(db)
    # when the DPO erases them over the API
    api.post(f"/v1/customers/{cid}/erase", {"requested_by": "dpo@example.com"})
    # then no dump of the database holds any of their values
    after = dump_database(api.url)
    leaked = [value for value in PERSONAL if value in after]
    assert leaked == []
    leaked_events = [value for value in IN_EVENTS if value in after]
    assert leaked_events == [], "event documents still hold the person (events scrub)"
    # and their loyalty account is closed with its points forfeited, the ledger balanced
    with open_session(api.url) as db:
        account = db.get(LoyaltyAccount, cid)
        assert account is not None
        assert (account.kind, account.balance, account.debt) == ("closed", 0, 0)
        assert loyalty.invariant_violations(db) == []
        assert loyalty.liability(db).outstanding_points == issued_before.outstanding_points - 4428
        assert db.get(TierStanding, cid) is None
        assert memberships.current_membership(db, customer_id=cid) is None
        assert [m.kind for m in loyalty.statement(db, customer_id=cid)] == ["close", "earn"]
    # and retrying a stored command answers 410 Gone, applying nothing again
    retry = api.client.post(
        f"/v1/loyalty/members/{cid}/earn",
        json={"points": 4428, "reason": POINTS_REASON},
        headers={**api.headers, "Idempotency-Key": "e-qf"},
    )
    assert retry.status_code == 410
    # and the closed account takes no new points: 404 naming customer_id, "was erased", as
    # every command naming an erased customer's Rapport id answers (docs/api.md)
    again = api.client.post(
        f"/v1/loyalty/members/{cid}/earn",
        json={"points": 10, "reason": "After erasure"},
        headers={**api.headers, "Idempotency-Key": "e-qf-2"},
    )
    assert again.status_code == 404, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["type"] == "https://rapport.dev/problems/not-found"
    assert again.json()["field"] == "customer_id"
    assert "was erased" in again.json()["detail"]
    # and the site's retry of their event, under the same id, is refused: nothing comes back
    resent = api.client.post(
        "/v1/events",
        json=tracked_event(),
        headers={**api.headers, "Idempotency-Key": "ev-qf-retry"},
    )
    assert resent.status_code == 422, resent.text
    assert resent.json()["errors"][0]["code"] == "suppressed"
    assert EMAIL not in dump_database(api.url)


def test_export_returns_every_domain_with_what_it_holds(api: Api) -> None:
    # given a customer with data in every domain
    cid = seed_everywhere(api)
    # when they ask for their data
    response = api.client.get(f"/v1/customers/{cid}/export", headers=api.headers)
    # then every domain answered, each with the values it holds
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["domains"] == list(DOMAINS)
    assert document["customer"]["email"] == EMAIL
    assert {(i["kind"], i["value"]) for i in document["identities"]} >= {
        ("email", EMAIL),
        ("phone", PHONE_STORED),
        ("external_id", EXTERNAL_ID),
        ("anonymous_id", ANONYMOUS_ID),
    }
    assert document["preferences"][0]["value"] == BIRTHDAY
    assert "page_viewed" in [e["type"] for e in document["events"]]
    order = document["orders"][0]
    assert order["order_id"] == "O-QF-1"
    assert ORDER_NOTE in [change["note"] for change in order["status_history"]]
    assert [(r["title"], r["body"]) for r in document["reviews"]] == [(REVIEW_TITLE, REVIEW_TEXT)]
    # (the low survey score opened a second ticket of its own)
    assert (TICKET_SUBJECT, RESOLUTION) in [
        (t["subject"], t["resolution"]) for t in document["tickets"]
    ]
    assert [r["comment"] for r in document["survey_responses"]] == [SURVEY_COMMENT]
    assert len(document["survey_invitations"]) == 1
    points = document["loyalty"]
    assert [(a["kind"], a["balance"]) for a in points["accounts"]] == [("member", 4428)]
    assert points["tier"] == "gold"
    assert [m["plan_id"] for m in points["memberships"]] == ["plus"]
    assert len(points["referral_codes"]) == 1
    assert points["referrals"][0]["role"] == "referrer"
    assert [c["rule"] for c in points["coupons"]] == ["welcome"]
    assert document["recommendations"]["personalized"] is True
    stored = [answer["answer"] for answer in document["stored_answers"]]
    assert any(a.get("subject") == TICKET_SUBJECT for a in stored)
    # and the request is on record
    with open_session(api.url) as db:
        assert [r.kind for r in customers.privacy_requests(db, customer_id=cid)] == ["export"]


# --- every domain takes part, and every table naming a customer is covered ----------------

# Columns that name or describe a customer.
PERSONAL_COLUMNS = {
    "customer_id",
    "user_id",
    "anonymous_id",
    "customer_ref",
    "friend_id",
    "referrer_id",
    "source_customer_id",
    "target_customer_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "full_name",
    "home_city",
    "device_id",
    "ip_address",
    "address",
}
# Tables with such a column that hold no customer's data, and why.
NOT_CUSTOMERS = {
    "admin_users": "staff who sign in to the admin pages",
    "stores": "the retailer's own shops and their street addresses",
}


def _table_domains() -> dict[str, str]:
    """Each table and the domain whose models module defines it."""
    found = {}
    for mapper in Base.registry.mappers:
        module = mapper.class_.__module__  # rapport.<domain>.models
        for table in mapper.tables:
            found[table.name] = module.split(".")[1]
    for table in Base.metadata.tables.values():  # tables without a mapped class
        found.setdefault(table.name, "?")
    return found


def test_every_domain_has_privacy_handlers() -> None:
    # given the registry of domains
    handlers = privacy.privacy_handlers()
    # then each one takes part in export and erasure
    assert [h.domain for h in handlers] == list(DOMAINS)


def test_a_domain_without_handlers_stops_the_workflow(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a domain listed without privacy handlers (the demo has no service module)
    monkeypatch.setattr(privacy, "DOMAINS", (*DOMAINS, "demo"))
    # then neither export nor erasure can run
    with pytest.raises(RuntimeError, match=r"rapport\.demo\.service must define"):
        privacy.privacy_handlers()


def test_every_table_naming_a_customer_is_covered_by_its_domain() -> None:
    # given every table and the domain defining it
    domains = _table_domains()
    covered = {h.domain: set(h.tables) for h in privacy.privacy_handlers()}
    # then each table with a column naming a customer is listed by its domain's handlers
    uncovered = sorted(
        f"{table.name} ({domains[table.name]})"
        for table in Base.metadata.tables.values()
        if PERSONAL_COLUMNS & set(table.columns.keys())
        and table.name not in NOT_CUSTOMERS
        and table.name not in covered.get(domains[table.name], set())
    )
    assert uncovered == []
    # and every listed table exists in the domain that lists it
    misplaced = [
        (domain, table)
        for domain, tables in covered.items()
        for table in tables
        if domains.get(table) != domain
    ]
    assert misplaced == []


def test_closing_an_account_keeps_the_ledger_balanced_with_debt(db: Session) -> None:
    # given a member who spent points, then returned the order that earned them (debt)
    from tests.loyalty.factories import make_customer

    cid = make_customer(db, email="debtor@example.com")
    loyalty.earn(db, customer_id=cid, points=500, reason="Order O-D", order_id="O-D")
    loyalty.earn(db, customer_id=cid, points=100, reason="Order O-E", order_id="O-E")
    loyalty.redeem(db, customer_id=cid, points=550, reason="Reward")
    loyalty.reverse_for_return(db, customer_id=cid, order_id="O-D", points=500, reason="Return")
    member = loyalty.get_member(db, customer_id=cid)
    assert member is not None
    assert member.debt > 0
    # when they are erased
    privacy.erase_customer(db, customer_id=cid, requested_by="dpo")
    # then the account is closed with nothing left and nothing owed, and the ledger agrees
    account = db.scalar(select(LoyaltyAccount).where(LoyaltyAccount.account_id == cid))
    assert (account.kind, account.balance, account.debt) == ("closed", 0, 0)
    assert loyalty.invariant_violations(db) == []
    assert loyalty.liability(db).outstanding_debt == 0


def test_erasure_blanks_the_errors_kept_for_the_persons_held_events(db: Session) -> None:
    # given an event of the customer a processor could not apply, its error quoting them
    from rapport.events.models import HeldEvent
    from rapport.events.privacy import ERASED_ERROR
    from tests.events.factories import tracked
    from tests.loyalty.factories import make_customer

    cid = make_customer(db, email="held@example.com")
    theirs = tracked(db, type="order_completed", channel="web", customer_id=cid)
    others = tracked(db, type="order_completed", channel="web", customer_id=None)
    db.flush()
    now = clock.now()
    for event, error in ((theirs, "no account for held@example.com"), (others, "bad total")):
        db.add(
            HeldEvent(
                processor="loyalty.earning",
                position=event.position,
                attempts=3,
                error=f"ValueError: {error}",
                first_failed_at=now,
                last_failed_at=now,
                held_at=now,
            )
        )
    db.flush()

    # when they are erased
    privacy.erase_customer(db, customer_id=cid, requested_by="dpo")

    # then their event stays held (to be retried) without the error that named them
    errors = dict(db.execute(select(HeldEvent.position, HeldEvent.error)).all())
    assert errors == {theirs.position: ERASED_ERROR, others.position: "ValueError: bad total"}
