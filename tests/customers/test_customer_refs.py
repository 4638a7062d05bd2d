"""Customer references: every endpoint that names a customer takes Rapport's id or the shop's
own customer number (external_id), answers the same for both, and names the field (and both
forms) for an unknown one."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.models import Customer
from rapport.main import create_app
from rapport.platform import clock
from rapport.platform.db import Base, open_session
from rapport.platform.errors import NotFound
from rapport.platform.settings import Settings
from tests.app_routes import every_route
from tests.conftest import auth, command
from tests.feedback.factories import in_catalogue
from tests.loyalty.ledger import test_one_statement as one_statement

_keys = itertools.count(1)

# The app with PostgreSQL's one-statement commands, on committed data.
postgres_url = one_statement.postgres_url
live_client = one_statement.live_client


def _new_customer(db: Session, *, external_id: str | None = None, **fields: Any) -> str:
    now = clock.now()
    customer_id = f"cus_ref{next(_keys):04d}"
    db.add(
        Customer(
            customer_id=customer_id,
            external_id=external_id,
            created_at=now,
            updated_at=now,
            **fields,
        )
    )
    db.flush()
    return customer_id


# ------------------------------------------------------------------------------ resolver


def test_the_resolver_takes_rapports_id_or_the_shops_own(db: Session) -> None:
    on_column = _new_customer(db, external_id="SHOP-1")
    by_identity = _new_customer(db)
    customers.add_identity(db, customer_id=by_identity, kind="external_id", value="SHOP-2")
    assert customers.resolve_customer_ref(db, ref=on_column) == on_column
    assert customers.resolve_customer_ref(db, ref="SHOP-1") == on_column
    assert customers.resolve_customer_ref(db, ref="SHOP-2") == by_identity


def test_a_rapport_id_wins_over_a_shop_number_that_looks_like_it(db: Session) -> None:
    first = _new_customer(db)
    # another customer whose shop number is the first one's Rapport id
    _new_customer(db, external_id=first)
    assert customers.resolve_customer_ref(db, ref=first) == first


def test_a_merged_profile_resolves_to_the_survivor_by_either_id(db: Session) -> None:
    gone = _new_customer(db, external_id="SHOP-OLD")
    kept = _new_customer(db)
    customers.merge_customers(
        db, source_customer_id=gone, target_customer_id=kept, reason="same person", actor="test"
    )
    assert customers.resolve_customer_ref(db, ref=gone) == kept
    # the merge moved the shop number to the survivor
    assert customers.resolve_customer_ref(db, ref="SHOP-OLD") == kept
    # a merge itself names the profiles as they are
    assert customers.resolve_customer_ref(db, ref=gone, follow_merges=False) == gone


def test_an_unknown_reference_is_404_naming_the_field_and_both_forms(db: Session) -> None:
    with pytest.raises(NotFound) as raised:
        customers.resolve_customer_ref(db, ref="SHOP-404", field="friend_id")
    assert raised.value.field == "friend_id"
    assert "cus_" in raised.value.detail
    assert "external_id" in raised.value.detail
    assert customers.find_customer_ref(db, ref="x" * 100) is None


# ------------------------------------------------------------------------------ over HTTP


@pytest.fixture
def shop(client: TestClient, api_key: Any, db: Session) -> dict[str, Any]:
    """One customer known to the shop as SHOP-42, with points, consents and an order."""
    key = api_key("admin")
    created = client.post(
        "/v1/customers",
        json={
            "external_id": "SHOP-42",
            "email": "ref@example.com",
            "consents": {"personalization": True, "marketing_email": True},
        },
        headers=command(key),
    )
    assert created.status_code == 201, created.text
    customer_id = created.json()["customer_id"]
    earned = client.post(
        f"/v1/loyalty/members/{customer_id}/earn",
        json={"points": 120, "reason": "Welcome"},
        headers={**auth(key), "Idempotency-Key": "welcome"},
    )
    assert earned.status_code == 201, earned.text
    return {"key": key, "customer_id": customer_id, "external_id": "SHOP-42"}


# Read endpoints, with {ref} where the customer goes. Each answers the same for both forms.
READS = [
    "/v1/customers/{ref}",
    "/v1/customers/{ref}/timeline",
    "/v1/customers/{ref}/consents/history",
    "/v1/customers/{ref}/inbox",
    "/v1/orders?customer_id={ref}",
    "/v1/orders/customers/{ref}/value",
    "/v1/loyalty/members/{ref}",
    "/v1/loyalty/members/{ref}/statement",
    "/v1/loyalty/members/{ref}/tier",
    "/v1/loyalty/members/{ref}/benefits",
    "/v1/loyalty/members/{ref}/coupons",
    "/v1/loyalty/members/{ref}/membership",
    "/v1/loyalty/members/{ref}/referral-code",
    "/v1/recommendations?placement=home&customer_id={ref}",
]


def _answer(response: Any) -> Any:
    """The JSON answer, less a problem's ``instance`` (the path asked, which differs)."""
    body = response.json()
    if isinstance(body, dict):
        body.pop("instance", None)
    return body


def test_every_customer_read_answers_the_same_for_the_shops_id(
    client: TestClient, shop: dict[str, Any]
) -> None:
    headers = auth(shop["key"])
    for path in READS:
        by_ours = client.get(path.format(ref=shop["customer_id"]), headers=headers)
        by_theirs = client.get(path.format(ref=shop["external_id"]), headers=headers)
        assert by_ours.status_code in (200, 404), (path, by_ours.text)
        assert (by_theirs.status_code, _answer(by_theirs)) == (
            by_ours.status_code,
            _answer(by_ours),
        ), path
        unknown = client.get(path.format(ref="SHOP-UNKNOWN"), headers=headers)
        assert unknown.status_code == 404, path
        assert unknown.json()["field"] == "customer_id", path
        assert "external_id" in unknown.json()["detail"], path
    profile = client.get("/v1/customers/SHOP-42", headers=headers).json()
    assert (profile["customer_id"], profile["external_id"]) == (shop["customer_id"], "SHOP-42")


def test_no_key_is_401_before_a_reference_is_looked_up(client: TestClient, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the key is checked the same way on every backend")
    # an unauthenticated caller cannot tell a shop number that exists from one that does not
    for path in READS:
        assert client.get(path.format(ref="SHOP-UNKNOWN")).status_code == 401, path


def test_loyalty_commands_take_the_shops_id_and_replay_by_key(
    client: TestClient, shop: dict[str, Any]
) -> None:
    headers = {**auth(shop["key"]), "Idempotency-Key": "order-SHOP-42-1"}
    body = {"points": 30, "reason": "Order 1"}
    first = client.post("/v1/loyalty/members/SHOP-42/earn", json=body, headers=headers)
    again = client.post("/v1/loyalty/members/SHOP-42/earn", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["customer_id"] == shop["customer_id"]
    redeemed = client.post(
        "/v1/loyalty/members/SHOP-42/redeem",
        json={"points": 50},
        headers={**auth(shop["key"]), "Idempotency-Key": "redeem-1"},
    )
    adjusted = client.post(
        "/v1/loyalty/members/SHOP-42/adjust",
        json={"points": 5, "reason": "Goodwill"},
        headers={**auth(shop["key"]), "Idempotency-Key": "adjust-1"},
    )
    assert (redeemed.status_code, adjusted.status_code) == (201, 201)
    member = client.get(f"/v1/loyalty/members/{shop['customer_id']}", headers=auth(shop["key"]))
    assert member.json()["balance"] == 120 + 30 - 50 + 5
    unknown = client.post(
        "/v1/loyalty/members/SHOP-UNKNOWN/earn",
        json=body,
        headers={**auth(shop["key"]), "Idempotency-Key": "unknown-1"},
    )
    assert unknown.status_code == 404
    assert unknown.json()["field"] == "customer_id"


def test_customer_commands_take_the_shops_id(client: TestClient, shop: dict[str, Any]) -> None:
    headers = auth(shop["key"])
    consent = client.put(
        "/v1/customers/SHOP-42/consents/location", json={"granted": True}, headers=headers
    )
    preferences = client.put(
        "/v1/customers/SHOP-42/preferences", json={"shoe_size": 42}, headers=headers
    )
    identity = client.post(
        "/v1/customers/SHOP-42/identities",
        json={"kind": "loyalty_card", "value": "CARD-42"},
        headers=command(headers),
    )
    assert (consent.status_code, preferences.status_code, identity.status_code) == (200, 200, 201)
    profile = client.get(
        "/v1/customers/lookup?kind=loyalty_card&value=CARD-42", headers=headers
    ).json()
    assert profile["customer_id"] == shop["customer_id"]
    assert {(c["purpose"], c["granted"]) for c in profile["consents"]} >= {("location", True)}
    exported = client.get("/v1/customers/SHOP-42/export", headers=headers)
    assert exported.status_code == 200
    assert shop["customer_id"] in exported.text


def test_feedback_bodies_take_the_shops_id(
    client: TestClient, shop: dict[str, Any], db: Session
) -> None:
    in_catalogue(db, "SKU-1")
    headers = {**auth(shop["key"]), "Idempotency-Key": "ticket-1"}
    ticket = {"customer_id": "SHOP-42", "kind": "question", "channel": "email", "subject": "Hi"}
    opened = client.post("/v1/feedback/tickets", json=ticket, headers=headers)
    replayed = client.post("/v1/feedback/tickets", json=ticket, headers=headers)
    assert opened.status_code == 201, opened.text
    assert opened.json()["customer_id"] == shop["customer_id"]
    assert replayed.headers["Idempotent-Replayed"] == "true"
    unknown = client.post(
        "/v1/feedback/tickets",
        json={**ticket, "customer_id": "SHOP-UNKNOWN"},
        headers={**auth(shop["key"]), "Idempotency-Key": "ticket-2"},
    )
    assert unknown.status_code == 404
    assert unknown.json()["field"] == "customer_id"
    review = client.post(
        "/v1/feedback/reviews",
        json={"customer_id": "SHOP-42", "sku": "SKU-1", "rating": 5, "title": "Good"},
        headers={**auth(shop["key"]), "Idempotency-Key": "review-1"},
    )
    assert review.status_code == 201, review.text
    assert review.json()["customer_id"] == shop["customer_id"]


def test_an_erasure_by_the_shops_id_erases_the_customer(
    client: TestClient, shop: dict[str, Any]
) -> None:
    headers = auth(shop["key"])
    erased = client.post(
        "/v1/customers/SHOP-42/erase",
        json={"requested_by": "the customer"},
        headers=command(headers),
    )
    assert erased.status_code == 200, erased.text
    # the shop's number went with the personal data; Rapport's id answers as erased ones do
    assert client.get("/v1/customers/SHOP-42", headers=headers).status_code == 404
    assert client.get(f"/v1/customers/{shop['customer_id']}", headers=headers).status_code == 404


# What each /v1 command with the customer in its path is sent (a walk below checks that these
# and the reads cover every such route).
ERASED_COMMANDS: dict[tuple[str, str], dict[str, Any] | None] = {
    ("POST", "/v1/loyalty/members/{customer_id}/earn"): {"points": 10, "reason": "Order"},
    ("POST", "/v1/loyalty/members/{customer_id}/redeem"): {"points": 10},
    ("POST", "/v1/loyalty/members/{customer_id}/adjust"): {"points": 5, "reason": "Goodwill"},
    ("POST", "/v1/loyalty/members/{customer_id}/reverse"): {"order_id": "O-1", "points": 5},
    ("POST", "/v1/loyalty/members/{customer_id}/rewards/{reward_id}/redeem"): None,
    ("POST", "/v1/loyalty/members/{customer_id}/membership"): {"plan_id": "plus"},
    ("POST", "/v1/loyalty/members/{customer_id}/membership/cancel"): None,
    ("POST", "/v1/loyalty/members/{customer_id}/membership/resume"): None,
    ("POST", "/v1/customers/{customer_id}/identities"): {"kind": "loyalty_card", "value": "C-1"},
    ("PUT", "/v1/customers/{customer_id}/consents/{purpose}"): {"granted": True},
    ("PUT", "/v1/customers/{customer_id}/preferences"): {"shoe_size": 42},
    ("POST", "/v1/customers/{customer_id}/inbox/{message_id}/read"): None,
    ("POST", "/v1/customers/{customer_id}/erase"): {"requested_by": "the customer, again"},
}


def test_every_route_naming_the_customer_in_its_path_is_listed_here(app: FastAPI) -> None:
    named = {
        (method, path)
        for path, route in every_route(app.router.routes)
        if path.startswith("/v1/") and "{customer_id}" in path
        for method in getattr(route, "methods", ()) or ()
        if method != "HEAD"
    }
    reads = {("GET", path.replace("{ref}", "{customer_id}")) for path in READS if "?" not in path}
    reads.add(("GET", "/v1/customers/{customer_id}/export"))
    assert named == reads | set(ERASED_COMMANDS), "a route that names a customer is not tested"


def test_an_erased_customer_is_answered_as_erased_everywhere_and_nothing_is_recorded(
    client: TestClient, shop: dict[str, Any], db: Session
) -> None:
    # given a member with points, erased
    headers = auth(shop["key"])
    customer_id = shop["customer_id"]
    erased = client.post(
        f"/v1/customers/{customer_id}/erase",
        json={"requested_by": "the customer"},
        headers=command(headers),
    )
    assert erased.status_code == 200, erased.text
    rows_before = _rows_per_table(db)
    # when every read and every command names them by Rapport's id
    for path in [*READS, "/v1/customers/{ref}/export"]:
        answer = client.get(path.format(ref=customer_id), headers=headers)
        # then each answers 404 "was erased", naming the field, not an empty live member
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["field"] == "customer_id", path
        assert "was erased" in answer.json()["detail"], (path, answer.text)
    for (method, path), body in ERASED_COMMANDS.items():
        url = path.format(
            customer_id=customer_id, reward_id="gift", purpose="location", message_id=1
        )
        answer = client.request(
            method, url, json=body, headers=command(headers) if method == "POST" else headers
        )
        assert answer.status_code == 404, (method, path, answer.text)
        assert "was erased" in answer.json()["detail"], (method, path, answer.text)
    # and nothing was recorded for them
    db.expire_all()
    assert _rows_per_table(db) == rows_before


def _rows_per_table(db: Session) -> dict[str, int]:
    return {
        table.name: db.scalar(select(func.count()).select_from(table)) or 0
        for table in Base.metadata.sorted_tables
    }


def test_earn_as_one_statement_takes_the_shops_id_and_replays(live_client, postgres_url) -> None:
    # PostgreSQL's one-statement earn runs for Rapport's id; the shop's number goes the
    # session way, resolved after the key is claimed, and a retry replays either way
    customer_id = one_statement.member_with(postgres_url, 100)
    with open_session(postgres_url) as db:
        external_id = customers.get_customer(db, customer_id=customer_id).external_id
    headers = one_statement.writer(postgres_url)

    def earn(ref: str, key: str) -> Any:
        return live_client.post(
            f"/v1/loyalty/members/{ref}/earn",
            json={"points": 10, "reason": "Order"},
            headers={**headers, "Idempotency-Key": key},
        )

    theirs, theirs_again = earn(external_id, "e1"), earn(external_id, "e1")
    ours, ours_again = earn(customer_id, "e2"), earn(customer_id, "e2")
    assert [r.status_code for r in (theirs, theirs_again, ours, ours_again)] == [201] * 4
    assert theirs_again.json() == theirs.json()
    assert ours_again.json() == ours.json()
    assert theirs.json()["customer_id"] == ours.json()["customer_id"] == customer_id
    assert ours.json()["balance"] == 120


def test_the_api_reference_describes_both_forms_on_every_customer_parameter(tmp_path) -> None:
    # /docs shows, on each route that names a customer, that both ids are accepted (the
    # document is built without a database: once, not per backend)
    app = create_app(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'unused.db'}",
            secret_key="test-secret-key-not-for-production",  # type: ignore[arg-type]
            data_dir=tmp_path,
        ),
        run_worker=False,
    )
    described, missing = 0, []
    for path, operations in app.openapi()["paths"].items():
        for verb, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["name"] not in ("customer_id", "friend_id"):
                    continue
                text = parameter.get("description") or parameter["schema"].get("description", "")
                if "external_id" in text and "cus_" in text:
                    described += 1
                else:
                    missing.append(f"{verb.upper()} {path}")
    assert missing == []
    assert described >= 25
