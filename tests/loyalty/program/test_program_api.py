"""Program configuration and the simulator over HTTP."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty import service as ledger
from rapport.loyalty.models import Award, ProgramConfig
from rapport.loyalty.program.rules import DEFAULT_RULES
from tests.conftest import auth
from tests.loyalty.factories import frozen_clock, make_customer
from tests.orders.factories import CHIANTI, seed_catalog


def test_rules_start_from_the_defaults_and_new_versions_are_kept(client, api_key, db) -> None:
    admin = auth(api_key("admin"))
    shown = client.get("/v1/loyalty/program/rules", headers=admin)
    assert shown.status_code == 200
    assert shown.json()["version"] is None
    assert shown.json()["document"] == DEFAULT_RULES

    saved = client.put(
        "/v1/loyalty/program/rules",
        json={"document": {"rules": [DEFAULT_RULES["rules"][0]]}, "note": "spend only"},  # type: ignore[index]
        headers=admin,
    )
    assert saved.status_code == 200
    assert saved.json()["version"] is not None
    assert saved.json()["changed_by"].startswith("api key")
    history = client.get("/v1/loyalty/program/rules/history", headers=admin).json()
    assert [version["note"] for version in history] == ["spend only"]


def test_invalid_configuration_is_refused_naming_the_field_and_saves_nothing(
    client, api_key, db
) -> None:
    admin = auth(api_key("admin"))
    bad_rules = {"rules": [{"id": "x", "name": "X", "kind": "spend", "points_per_unit": 0}]}
    refused = client.put("/v1/loyalty/program/rules", json={"document": bad_rules}, headers=admin)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["field"] == "document.rules.0.points_per_unit"
    bad_tiers = {"tiers": [{"id": "base", "name": "Base", "threshold": 5}]}
    refused = client.put("/v1/loyalty/program/tiers", json={"document": bad_tiers}, headers=admin)
    assert refused.status_code == 422
    assert refused.json()["field"] == "document.tiers"
    assert db.scalar(select(func.count()).select_from(ProgramConfig)) == 0


def test_only_admin_keys_change_the_program(client, api_key, db) -> None:
    for scopes in (("read",), ("write",), ("ingest",)):
        answer = client.put(
            "/v1/loyalty/program/checkout",
            json={"document": {"max_line_discount_percent": 50}},
            headers=auth(api_key(*scopes)),
        )
        assert answer.status_code == 403


def test_simulate_explains_each_rule_and_writes_nothing(client, api_key, db: Session) -> None:
    frozen_clock()
    seed_catalog(db)
    member = make_customer(db)
    body = {
        "customer_id": member,
        "order": {
            "channel": "app",
            "lines": [{"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200}],
        },
    }
    answer = client.post("/v1/loyalty/simulate", json=body, headers=auth(api_key("read")))
    assert answer.status_code == 200
    result = answer.json()
    fired = {d["rule_id"]: d["points"] for d in result["decisions"] if d["fired"]}
    assert fired == {"base-earn": 36, "welcome": 200}  # 24 euros x 1.5 on the app
    assert "1.5 for channel app" in result["decisions"][0]["why"]
    assert result["points"] == 236
    assert ledger.get_member(db, customer_id=member) is None
    assert db.scalar(select(func.count()).select_from(Award)) == 0


def test_simulate_tries_unsaved_rules_and_events(client, api_key, db) -> None:
    key = auth(api_key("read"))
    what_if = {
        "event": {"type": "preference_shared", "field": "shoe_size"},
        "rules": {
            "rules": [
                {
                    "id": "prefs",
                    "name": "Prefs",
                    "kind": "preference_shared",
                    "points_per_field": 40,
                    "fields": ["birthday"],
                }
            ]
        },
    }
    answer = client.post("/v1/loyalty/simulate", json=what_if, headers=key).json()
    assert answer["decisions"][0]["fired"] is False
    assert answer["decisions"][0]["why"] == "shoe_size is not one of the rewarded fields"
    neither = client.post("/v1/loyalty/simulate", json={}, headers=key)
    assert neither.status_code == 422
    assert neither.json()["field"] == "order"


def test_member_tier_shows_benefits(client, api_key, db) -> None:
    member = make_customer(db)
    answer = client.get(f"/v1/loyalty/members/{member}/tier", headers=auth(api_key("read")))
    assert answer.status_code == 200
    assert answer.json()["tier_id"] == "member"
    assert answer.json()["benefits"]["free_shipping_over_minor"] == 9000
    missing = client.get("/v1/loyalty/members/cus_nobody/tier", headers=auth(api_key("read")))
    assert missing.status_code == 404
