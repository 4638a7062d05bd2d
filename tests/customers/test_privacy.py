"""Privacy rights: export everything, erase personal data everywhere, keep aggregates."""

from __future__ import annotations

from sqlalchemy import select, text

from rapport.customers import service as customers
from rapport.customers.models import PrivacyRequest
from rapport.events import service as events
from rapport.events.models import Event
from rapport.flows import privacy
from rapport.platform.db import Base
from tests.conftest import auth
from tests.customers.factories import order_placed, process, track

EMAIL = "erase.me@example.com"
PHONE = "+44 20 7946 0958"


def _everything_in_the_database(db) -> str:  # type: ignore[no-untyped-def]
    """Every value of every row of every table, as text, for searching."""
    dump = []
    for table in Base.metadata.sorted_tables:
        for row in db.execute(select(table)).all():
            dump.append(" ".join(str(value) for value in row))
    return "\n".join(dump)


def _customer_with_history(db):  # type: ignore[no-untyped-def]
    track(
        db,
        "identified",
        user_id="C-500",
        anonymous_id="anon-500",
        properties={
            "traits": {"email": EMAIL, "phone": PHONE, "firstName": "Erin", "lastName": "Blake"}
        },
        context={"ip": "203.0.113.7", "location": {"lat": 51.5, "lon": -0.1}},
    )
    track(db, "order_placed", user_id="C-500", properties=order_placed(2599, ["Beauty/Skincare"]))
    process(db)
    customer = customers.find_customer(db, kind="email", value=EMAIL)
    customers.set_consent(
        db,
        customer_id=customer.customer_id,
        purpose="marketing_email",
        granted=True,
        source="web form",
    )
    customers.set_preferences(
        db,
        customer_id=customer.customer_id,
        values={"birthday": "1990-04-01", "clothing_size": "M"},
        source="app",
    )
    return customer


def test_export_holds_everything_about_the_customer(db) -> None:
    customer = _customer_with_history(db)
    document = privacy.export_customer(
        db, customer_id=customer.customer_id, requested_by="dpo@example.com"
    )
    assert document["customer"]["email"] == EMAIL
    assert document["customer"]["first_name"] == "Erin"
    assert {(i["kind"], i["value"]) for i in document["identities"]} == {
        ("email", EMAIL),
        ("phone", "+442079460958"),
        ("external_id", "C-500"),
        ("anonymous_id", "anon-500"),
    }
    assert [c["purpose"] for c in document["consents"]] == ["marketing_email"]
    assert {p["field"]: p["value"] for p in document["preferences"]} == {
        "birthday": "1990-04-01",
        "clothing_size": "M",
    }
    assert document["traits"]["order_count"] == 1
    types = [e["type"] for e in document["events"]]
    assert types[:2] == ["identified", "order_placed"]
    assert "consent_changed" in types
    audit = db.scalars(select(PrivacyRequest)).all()
    assert [(r.kind, r.requested_by, r.completed_at is not None) for r in audit] == [
        ("export", "dpo@example.com", True)
    ]


def test_erasure_leaves_no_personal_data_and_keeps_aggregates(db) -> None:
    # given a customer with identities, consents, preferences, events and traits
    customer = _customer_with_history(db)
    events_before = events.count_events(db)
    # when they ask to be erased
    privacy.erase_customer(
        db, customer_id=customer.customer_id, requested_by="dpo@example.com", reason="ticket 4411"
    )
    # then no table holds their email, phone, name, ip or location any more
    dump = _everything_in_the_database(db)
    for personal in (
        EMAIL,
        "+442079460958",
        PHONE,
        "Erin",
        "Blake",
        "203.0.113.7",
        "anon-500",
        "C-500",
    ):
        assert personal not in dump, f"{personal} survived erasure"
    # and searching by any former identity finds nothing
    assert customers.find_customer(db, kind="email", value=EMAIL) is None
    assert customers.find_customer(db, kind="phone", value=PHONE) is None
    assert customers.find_customer(db, kind="external_id", value="C-500") is None
    assert customers.search_customers(db, query=EMAIL) == []
    # but the events stay, pseudonymised, so aggregates (event counts, spend) still add up
    assert events.count_events(db) == events_before + 1  # plus customer_erased
    order = db.scalar(select(Event).where(Event.type == "order_placed"))
    assert order.customer_id == customer.customer_id
    assert order.properties["total_minor"] == 2599
    assert customers.get_traits(db, customer_id=customer.customer_id).spend_minor == 2599
    assert not customers.has_consent(
        db, customer_id=customer.customer_id, purpose="marketing_email"
    )
    audit = db.scalars(select(PrivacyRequest).where(PrivacyRequest.kind == "erasure")).one()
    assert (audit.requested_by, audit.reason) == ("dpo@example.com", "ticket 4411")
    # the suppression list holds digests only: their 4 identities and their Rapport id
    suppressed = db.execute(text("SELECT count(*) FROM suppressed_identities")).scalar()
    assert suppressed == 5


def test_consent_gate_says_no_without_a_recorded_choice(db) -> None:
    customer = customers.identify_customer(db, identities={"email": "x@example.com"})
    for purpose in (
        "analytics",
        "personalization",
        "marketing_email",
        "marketing_push",
        "location",
    ):
        assert not customers.has_consent(db, customer_id=customer.customer_id, purpose=purpose)
    customers.set_consent(
        db,
        customer_id=customer.customer_id,
        purpose="personalization",
        granted=True,
        source="banner",
    )
    customers.set_consent(
        db,
        customer_id=customer.customer_id,
        purpose="personalization",
        granted=False,
        source="preference centre",
    )
    assert not customers.has_consent(
        db, customer_id=customer.customer_id, purpose="personalization"
    )
    history = customers.consent_history(db, customer_id=customer.customer_id)
    assert [(h.granted, h.source) for h in history] == [
        (True, "banner"),
        (False, "preference centre"),
    ]


def test_a_head_of_the_export_answers_its_headers_and_records_nothing(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    # given a customer and an admin key
    customer = customers.identify_customer(db, identities={"email": "head@example.com"})
    db.commit()
    admin = auth(api_key("admin"))
    path = f"/v1/customers/{customer.customer_id}/export"

    def recorded() -> int:
        db.expire_all()
        return len(
            db.scalars(
                select(PrivacyRequest).where(PrivacyRequest.customer_id == customer.customer_id)
            ).all()
        )

    # when a client asks for the export's headers only
    head = client.head(path, headers=admin)
    # then it answers as the GET would, without the document, and no export is recorded
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == "application/json"
    assert recorded() == 0
    # while a GET hands the document out and is recorded
    got = client.get(path, headers=admin)
    assert got.status_code == 200
    assert got.json()["customer_id"] == customer.customer_id
    assert recorded() == 1


def test_the_api_export_holds_each_events_ids_times_and_source_and_is_not_cached(  # type: ignore[no-untyped-def]
    client, api_key, db
) -> None:
    # given a customer whose browser sent a page view under their number and visitor id
    writer, ingest = api_key("write"), api_key("ingest")
    made = client.post(
        "/v1/customers",
        json={"external_id": "EXP-1"},
        headers={**auth(writer), "Idempotency-Key": "exp-1"},
    )
    assert made.status_code == 201, made.text
    sent = client.post(
        "/v1/events",
        json={
            "event_id": "exp-page-1",
            "type": "page_viewed",
            "customer_id": "EXP-1",
            "anonymous_id": "anon-exp-1",
            "channel": "web",
            "occurred_at": "2026-06-01T12:00:00+00:00",
        },
        headers=auth(ingest),
    )
    assert sent.status_code == 201, sent.text
    process(db)
    # when an admin exports them through the API
    got = client.get("/v1/customers/EXP-1/export", headers=auth(api_key("admin")))
    # then each event says whom it was sent as, from where, and when it was received
    assert got.status_code == 200, got.text
    assert got.headers["cache-control"] == "no-store"
    page = next(e for e in got.json()["events"] if e["event_id"] == "exp-page-1")
    assert page["user_id"] == "EXP-1"
    assert page["anonymous_id"] == "anon-exp-1"
    assert page["source"] == "api-public"
    assert page["received_at"]
    assert page["occurred_at"].startswith("2026-06-01T12:00:00")
