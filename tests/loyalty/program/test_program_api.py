"""Program configuration and the simulator over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.loyalty import service as ledger
from rapport.loyalty.events import ProgramChanged
from rapport.loyalty.models import Award, ProgramConfig
from rapport.loyalty.program import versions as program_versions
from rapport.loyalty.program.rules import DEFAULT_RULES
from tests.conftest import auth
from tests.loyalty.factories import T0, frozen_clock, make_customer
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


SPEND_ONLY = {"rules": [{"id": "a", "name": "A", "kind": "spend", "points_per_unit": "1"}]}


def test_a_version_never_takes_effect_in_the_past(client, api_key, db: Session) -> None:
    frozen = frozen_clock()
    admin = auth(api_key("admin"))
    saved = client.put("/v1/loyalty/program/rules", json={"document": SPEND_ONLY}, headers=admin)
    assert saved.status_code == 200
    frozen.advance(timedelta(hours=1))

    # then a moment before now is refused naming active_from, and nothing is saved
    for past in ("2020-01-01T00:00:00Z", (T0 + timedelta(minutes=50)).isoformat()):
        refused = client.put(
            "/v1/loyalty/program/rules",
            json={"active_from": past, "document": SPEND_ONLY},
            headers=admin,
        )
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["field"] == "active_from"
        assert "in the past" in refused.json()["detail"]
    assert db.scalar(select(func.count()).select_from(ProgramConfig)) == 1
    history = client.get("/v1/loyalty/program/rules/history", headers=admin).json()
    assert [version["version"] for version in history] == [saved.json()["version"]]

    # a moment a drifting clock puts a minute before ours is taken as now
    drifted = client.put(
        "/v1/loyalty/program/checkout",
        json={"active_from": (frozen.at - timedelta(minutes=1)).isoformat(), "document": {}},
        headers=admin,
    )
    assert drifted.status_code == 200
    assert datetime.fromisoformat(drifted.json()["active_from"]) == frozen.at


def test_a_later_active_from_schedules_the_version(client, api_key, db: Session) -> None:
    frozen = frozen_clock()
    admin = auth(api_key("admin"))
    now = client.put("/v1/loyalty/program/rules", json={"document": SPEND_ONLY}, headers=admin)
    later = T0 + timedelta(days=30)
    scheduled = client.put(
        "/v1/loyalty/program/rules",
        json={"active_from": later.isoformat(), "document": DEFAULT_RULES, "note": "later"},
        headers=admin,
    )
    assert scheduled.status_code == 200

    # then the version in force stays the one saved now, and the history lists both, newest first
    shown = client.get("/v1/loyalty/program/rules", headers=admin).json()
    assert shown["version"] == now.json()["version"]
    assert program_versions.rule_set(db)[0] == now.json()["version"]
    history = client.get("/v1/loyalty/program/rules/history", headers=admin).json()
    assert [v["version"] for v in history] == [scheduled.json()["version"], now.json()["version"]]

    # a version may not slip in before the scheduled one
    before = client.put(
        "/v1/loyalty/program/rules",
        json={"active_from": (later - timedelta(days=1)).isoformat(), "document": SPEND_ONLY},
        headers=admin,
    )
    assert before.status_code == 422
    assert before.json()["field"] == "active_from"
    assert f"version {scheduled.json()['version']} is scheduled" in before.json()["detail"]
    default = client.put("/v1/loyalty/program/rules", json={"document": SPEND_ONLY}, headers=admin)
    assert default.status_code == 422
    assert db.scalar(select(func.count()).select_from(ProgramConfig)) == 2

    # and from its moment on it is in force
    frozen.advance(timedelta(days=30))
    shown = client.get("/v1/loyalty/program/rules", headers=admin).json()
    assert shown["version"] == scheduled.json()["version"]


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


MEMBER = {"id": "member", "name": "Member", "threshold": 0}


def _program_changes(db: Session) -> int:
    return (
        db.scalar(
            select(func.count()).select_from(Event).where(Event.type == ProgramChanged.event_type)
        )
        or 0
    )


@pytest.mark.parametrize(
    ("kind", "document", "changed"),
    [
        ("rules", SPEND_ONLY, {"rules": [{**SPEND_ONLY["rules"][0], "points_per_unit": "2"}]}),
        ("tiers", {"tiers": [MEMBER]}, {"tiers": [MEMBER], "grace_days": 10}),
        ("checkout", {"max_points_payment_percent": 40}, {"max_points_payment_percent": 30}),
    ],
)
def test_a_put_sent_again_leaves_what_one_left(
    client, api_key, db: Session, kind: str, document: dict, changed: dict
) -> None:
    # given a version saved by PUT
    admin = auth(api_key("admin"))
    url = f"/v1/loyalty/program/{kind}"
    first = client.put(url, json={"document": document, "note": "first"}, headers=admin)
    assert first.status_code == 200, first.text
    changes = _program_changes(db)

    # when the same document is sent again (another note, and as the program reads it alike)
    for note in ("first", "a retry"):
        again = client.put(url, json={"document": document, "note": note}, headers=admin)
        # then it answers the version in force and records nothing
        assert again.status_code == 200, again.text
        assert again.json()["version"] == first.json()["version"]
        assert again.json()["note"] == "first"
    assert len(program_versions.history(db, kind)) == 1  # type: ignore[arg-type]
    assert _program_changes(db) == changes

    # and a real change still makes a version
    other = client.put(url, json={"document": changed}, headers=admin)
    assert other.status_code == 200, other.text
    assert other.json()["version"] != first.json()["version"]
    assert len(program_versions.history(db, kind)) == 2  # type: ignore[arg-type]
    assert _program_changes(db) == changes + 1


def test_a_scheduled_put_sent_again_schedules_once(client, api_key, db: Session) -> None:
    frozen_clock()
    admin = auth(api_key("admin"))
    body = {"document": SPEND_ONLY, "active_from": (T0 + timedelta(days=3)).isoformat()}
    first = client.put("/v1/loyalty/program/rules", json=body, headers=admin)
    again = client.put("/v1/loyalty/program/rules", json=body, headers=admin)
    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert again.json()["version"] == first.json()["version"]
    # the same document from now, before the scheduled one, is still refused
    now = client.put("/v1/loyalty/program/rules", json={"document": SPEND_ONLY}, headers=admin)
    assert (now.status_code, now.json()["field"]) == (422, "active_from")
    assert len(program_versions.history(db, "rules")) == 1
