"""The program's admin forms over HTTP: earning rules, tiers and checkout caps typed as a
loyalty manager types them (money in euros), saved as the same versions the API serves,
refused field by field without saving anything, and never changing a setting the form does
not show; the simulator beside each form answers for the draft before it is saved."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty.models import TierStanding
from rapport.loyalty.program import versions as program_versions
from rapport.loyalty.program.rules import DEFAULT_RULES, parse_rule_set
from rapport.loyalty.tiers.policy import DEFAULT_TIERS, parse_tier_policy
from rapport.loyalty.tiers.standing import tier_distribution
from tests.conftest import auth
from tests.platform.admin_forms import (
    csrf_token,
    page_form,
    post_form,
    typed,
)

Fields = list[tuple[str, str]]
SIMULATE = "/admin/loyalty/program/simulate"
NEW_FIRST = "/admin/loyalty/program/rules/new/first_purchase"
HOW = "type it like 1,234.50, with a comma between thousands and a point before the decimals"


def _form(admin: TestClient, path: str, testid: str, action: str | None = None) -> Fields:
    page = admin.get(path)
    assert page.status_code == 200
    return page_form(page.text, action=action or path, testid=testid)


def _simulate(admin: TestClient, fields: Fields, **sample: str) -> str:
    """The simulator's answer for the draft ``fields`` and a sample, as htmx posts it."""
    token = next(value for name, value in fields if name == "csrf_token")
    body: dict[str, Any] = {}
    for name, value in [*fields, *sample.items()]:
        body.setdefault(name, []).append(value)
    answer = admin.post(SIMULATE, data=body, headers={"X-CSRF-Token": token})
    assert answer.status_code == 200
    return str(answer.text)


def _fired(html: str, rule_id: str) -> tuple[str, int]:
    row = re.search(
        rf'<tr data-rule="{rule_id}".*?<td>(yes|no)</td><td class="num">([\d,]+)</td>', html, re.S
    )
    assert row is not None, f"no decision for {rule_id}"
    return row.group(1), int(row.group(2).replace(",", ""))


def _rules(db: Session) -> dict[str, dict[str, Any]]:
    db.expire_all()
    document = program_versions.current(db, "rules").document
    return {rule["id"]: rule for rule in document["rules"]}


def test_a_minimum_basket_in_euros_is_stored_in_cents_and_fires_above_it_only(
    admin: TestClient, db: Session
) -> None:
    # given the form for a new first purchase bonus, filled with a minimum basket in euros
    fields = _form(admin, NEW_FIRST, "rule-form")
    fields = typed(fields, "id", "big-first")
    fields = typed(fields, "name", "Big first basket")
    fields = typed(fields, "points", "500")
    fields = typed(fields, "min_total", "100.00")

    # when the draft is simulated, before saving, for orders above and below the minimum
    above = _simulate(admin, fields, target="rules", sample_amount="150.00")
    below = _simulate(admin, fields, target="rules", sample_amount="99.99")

    # then the draft rule fires above it (with the existing welcome bonus) and not below,
    # saying why in euros
    assert _fired(above, "big-first") == ("yes", 500)
    assert _fired(above, "welcome") == ("yes", 200)
    assert _fired(below, "big-first") == ("no", 0)
    assert "the order is under €100.00" in below
    assert "10000" not in below
    # and nothing was saved yet
    assert program_versions.current(db, "rules").id is None

    # when the form is saved
    saved = post_form(admin, NEW_FIRST, fields)

    # then a new rules version holds the rule in minor units, with the others as they were
    assert saved.status_code == 303
    # (a version's number is its row id: on PostgreSQL other tests' rolled-back saves took
    # the first ones)
    version = program_versions.current(db, "rules").id
    assert version is not None
    assert f"rules version {version}" in admin.get(saved.headers["location"]).text
    rules = _rules(db)
    assert rules["big-first"] == {
        "kind": "first_purchase",
        "id": "big-first",
        "name": "Big first basket",
        "active": True,
        "points": 500,
        "min_total_minor": 10000,
    }
    assert [rule for rid, rule in rules.items() if rid != "big-first"] == DEFAULT_RULES["rules"]
    # and the program page describes it in euros
    assert (
        "500 points on a first order of at least €100.00"
        in admin.get("/admin/loyalty/program").text
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("points", "-5", "Give at least 1 point"),
        ("points", "lots", "Give a whole number of points"),
        ("min_total", "abc", f"Give an amount in EUR; {HOW}"),
        ("min_total", "-10.00", "Give at least €0.00"),
        (
            "min_total",
            "10.005",
            "Give an amount in EUR, which takes at most 2 decimals; type it like 1,234.50",
        ),
        ("min_total", "4,99", f"Give an amount in EUR; {HOW}"),
    ],
)
def test_invalid_input_is_shown_next_to_its_field_and_saves_nothing(
    admin: TestClient, db: Session, field: str, value: str, message: str
) -> None:
    # given the form for a new first purchase bonus with one bad value
    fields = _form(admin, NEW_FIRST, "rule-form")
    fields = typed(typed(fields, "id", "bad-one"), "points", "100")
    fields = typed(fields, field, value)

    # when it is saved
    answer = post_form(admin, NEW_FIRST, fields)

    # then the form comes back with the message next to the field and what was typed
    assert answer.status_code == 422
    error = re.search(rf'data-field-error="{field}">([^<]*)<', answer.text)
    assert error is not None
    assert error.group(1) == message
    assert f'name="{field}" type="text" value="{value}"' in answer.text
    # and nothing was saved
    assert program_versions.current(db, "rules").id is None


def test_a_rule_form_keeps_the_settings_it_does_not_carry(admin: TestClient, db: Session) -> None:
    # given a saved spend rule with multipliers, exclusions, dates and a cap
    document = {
        "rules": [
            {
                "id": "base",
                "name": "Base",
                "kind": "spend",
                "points_per_unit": "2",
                "multipliers": [{"brand": "Acme", "factor": "3"}, {"tier": "gold", "factor": "2"}],
                "exclude_categories": ["Gift cards"],
                "starts_at": "2026-01-01T00:00:00+00:00",
                "cap": {"points": 900, "period": "month"},
            }
        ]
    }
    program_versions.save(db, "rules", document, changed_by="test")

    # when a post carries only the rule's name (as a form showing just the name would)
    token = csrf_token(admin.get("/admin/loyalty/program/rules/base").text)
    answer = post_form(
        admin,
        "/admin/loyalty/program/rules/base",
        [("csrf_token", token), ("name", "Base earn")],
    )

    # then only the name changed
    assert answer.status_code == 303
    assert _rules(db)["base"] == {**document["rules"][0], "name": "Base earn"}


@pytest.mark.parametrize("rule_id", [rule["id"] for rule in DEFAULT_RULES["rules"]])
def test_a_rule_form_submitted_untouched_changes_nothing(
    admin: TestClient, db: Session, rule_id: str
) -> None:
    # given the built-in rules, saved with a cap and dates on every rule
    document: dict[str, Any] = {
        "rules": [
            {
                **rule,
                # moments with seconds, which the form's datetime-local fields do not show
                "starts_at": "2026-03-01T00:00:30+00:00",
                "ends_at": "2027-03-01T12:34:56.789000+00:00",
                "cap": {"points": 700, "period": "week"},
            }
            for rule in DEFAULT_RULES["rules"]
        ]
    }
    program_versions.save(db, "rules", document, changed_by="test")
    before = parse_rule_set(program_versions.current(db, "rules").document)

    # when one rule's form is submitted as it stands
    path = f"/admin/loyalty/program/rules/{rule_id}"
    answer = post_form(admin, path, _form(admin, path, "rule-form"))

    # then every rule is as it was
    assert answer.status_code == 303
    db.expire_all()
    assert parse_rule_set(program_versions.current(db, "rules").document) == before


def test_a_moment_typed_on_the_rule_form_replaces_the_stored_one(
    admin: TestClient, db: Session
) -> None:
    document = {"rules": [{**DEFAULT_RULES["rules"][0], "ends_at": "2027-03-01T12:34:56+00:00"}]}  # type: ignore[index]
    program_versions.save(db, "rules", document, changed_by="test")
    path = "/admin/loyalty/program/rules/base-earn"
    fields = typed(_form(admin, path, "rule-form"), "ends_at", "2027-04-01T10:00")
    assert post_form(admin, path, fields).status_code == 303
    assert _rules(db)["base-earn"]["ends_at"] == "2027-04-01T10:00:00+00:00"


@pytest.mark.parametrize(
    ("path", "testid", "field", "bad"),
    [
        ("/admin/loyalty/program/rules/base-earn", "rule-form", "points_per_unit", "-1"),
        (NEW_FIRST, "rule-form", "points", "lots"),
        ("/admin/loyalty/program/tiers/edit", "tiers-form", "grace_days", "-3"),
        (
            "/admin/loyalty/program/checkout/edit",
            "checkout-form",
            "max_points_payment_percent",
            "120",
        ),
    ],
)
def test_a_refused_program_form_keeps_the_note_typed(
    admin: TestClient, db: Session, path: str, testid: str, field: str, bad: str
) -> None:
    fields = typed(typed(_form(admin, path, testid), field, bad), "note", "Winter changes")
    answer = post_form(admin, path, fields)
    assert answer.status_code == 422
    assert f'data-field-error="{field}"' in answer.text
    assert dict(page_form(answer.text, action=path, testid=testid))["note"] == "Winter changes"
    assert program_versions.current(db, "rules").id is None


def test_a_refused_json_document_keeps_the_note_typed(admin: TestClient, db: Session) -> None:
    action = "/admin/loyalty/program/rules"
    fields = page_form(admin.get("/admin/loyalty/program/advanced").text, action=action)
    fields = typed(typed(fields, "document", '{"rules": [}'), "note", "Winter changes")
    answer = post_form(admin, action, fields)
    assert answer.status_code == 422
    assert dict(page_form(answer.text, action=action))["note"] == "Winter changes"


def test_a_rule_is_deleted_leaving_the_others(admin: TestClient, db: Session) -> None:
    page = admin.get("/admin/loyalty/program")
    answer = admin.post(
        "/admin/loyalty/program/rules/birthday/delete",
        data={"csrf_token": csrf_token(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert list(_rules(db)) == [r["id"] for r in DEFAULT_RULES["rules"] if r["id"] != "birthday"]


def test_a_spend_rule_multiplier_is_added_and_errors_name_its_row(
    admin: TestClient, db: Session
) -> None:
    path = "/admin/loyalty/program/rules/base-earn"
    fields = _form(admin, path, "rule-form")
    # a factor that is not a number is refused at its row
    bad = typed(typed(fields, "m1_value", "Wine"), "m1_factor", "x2")
    refused = post_form(admin, path, bad)
    assert refused.status_code == 422
    assert 'data-field-error="m1_factor"' in refused.text
    # a good one is added after the stored one
    good = typed(typed(fields, "m1_value", "Wine"), "m1_factor", "2")
    assert post_form(admin, path, good).status_code == 303
    assert _rules(db)["base-earn"]["multipliers"] == [
        {"channel": "app", "factor": "1.5"},
        {"category": "Wine", "factor": "2"},
    ]


def test_a_tier_threshold_changed_in_euros_is_simulated_then_served_by_the_api(
    admin: TestClient, db: Session, api_key: Any
) -> None:
    # given the tier form, with Silver (from €500.00) lowered to €400.00
    path = "/admin/loyalty/program/tiers/edit"
    fields = _form(admin, path, "tiers-form")
    assert ("t1_threshold", "500.00") in fields
    draft = typed(fields, "t1_threshold", "400.00")

    # when a member who spent €450.00 is simulated with the draft
    shown = _simulate(admin, draft, target="tiers", sample_value="450.00")

    # then they land in Silver, not Member as now
    assert re.search(r'data-testid="draft-tier">Silver<', shown)
    assert re.search(r'data-testid="saved-tier">Member<', shown)

    # when the form is saved, the API serves the new threshold in minor units
    assert post_form(admin, path, draft).status_code == 303
    served = admin.get("/v1/loyalty/program/tiers", headers=auth(api_key("read"))).json()
    assert [t["threshold"] for t in served["document"]["tiers"]] == [0, 40000, 150000]
    # and every other setting is as it was
    expected = parse_tier_policy(DEFAULT_TIERS).model_dump()
    expected["tiers"][1]["threshold"] = 40000
    assert parse_tier_policy(served["document"]).model_dump() == expected


def test_tiers_are_added_removed_and_refused_by_field(admin: TestClient, db: Session) -> None:
    path = "/admin/loyalty/program/tiers/edit"
    fields = _form(admin, path, "tiers-form")
    # a new tier whose threshold is not money is refused at its row, nothing saved
    new = typed(
        typed(typed(fields, "t3_id", "platinum"), "t3_name", "Platinum"), "t3_threshold", "lots"
    )
    refused = post_form(admin, path, new)
    assert refused.status_code == 422
    assert 'data-field-error="t3_threshold"' in refused.text
    assert program_versions.current(db, "tiers").id is None
    # two tiers at one threshold are refused naming the row
    same = post_form(admin, path, typed(new, "t3_threshold", "1500.00"))
    assert same.status_code == 422
    assert re.search(
        r'data-field-error="t3_threshold">Give more than Gold&#39;s threshold, €1,500.00', same.text
    )
    # a valid new tier is added in threshold order, and Silver removed
    added = [*typed(new, "t3_threshold", "3000.00"), ("t1_remove", "true")]
    assert post_form(admin, path, added).status_code == 303
    db.expire_all()
    ladder = program_versions.current(db, "tiers").document
    assert [(t["id"], t["threshold"]) for t in ladder["tiers"]] == [
        ("member", 0),
        ("gold", 150000),
        ("platinum", 300000),
    ]


def test_a_threshold_that_no_longer_rises_is_refused_at_it_not_reordered(
    admin: TestClient, db: Session
) -> None:
    # given the tier form, with Silver raised to €2,000.00, above Gold's €1,500.00
    path = "/admin/loyalty/program/tiers/edit"
    fields = _form(admin, path, "tiers-form")
    assert [value for name, value in fields if name.endswith("_id")][:3] == [
        "member",
        "silver",
        "gold",
    ]
    draft = typed(typed(fields, "t1_threshold", "2000.00"), "t0_name", "Everyone")

    # when it is saved
    refused = post_form(admin, path, draft)

    # then it is refused beside Silver's threshold, saying what to give
    assert refused.status_code == 422
    error = re.search(r'data-field-error="t1_threshold">([^<]*)<', refused.text)
    assert error is not None
    assert error.group(1) == (
        "Give less than Gold&#39;s threshold, €1,500.00: each tier&#39;s threshold is above the"
        " one before"
    )
    assert 'data-field-error="t2_threshold"' not in refused.text
    # the form keeps what was typed
    assert re.search(r'name="t1_threshold"[^>]*value="2000.00"', refused.text)
    assert re.search(r'name="t0_name"[^>]*value="Everyone"', refused.text)
    # and nothing was saved: the ladder is not reordered into Member, Gold, Silver
    assert program_versions.current(db, "tiers").id is None
    # the simulator refuses the same draft at the same field
    shown = _simulate(admin, draft, target="tiers", sample_value="1800.00")
    assert "Give less than Gold" in shown


def test_checkout_caps_are_saved_and_simulated(admin: TestClient, db: Session) -> None:
    path = "/admin/loyalty/program/checkout/edit"
    fields = _form(admin, path, "checkout-form")
    draft = typed(fields, "max_points_payment_percent", "30")
    shown = _simulate(admin, draft, target="checkout", sample_amount="80.00")
    assert re.search(r'data-testid="points-cap">€24.00<', shown)
    refused = post_form(admin, path, typed(fields, "max_points_payment_percent", "120"))
    assert refused.status_code == 422
    assert 'data-field-error="max_points_payment_percent"' in refused.text
    assert post_form(admin, path, draft).status_code == 303
    db.expire_all()
    assert program_versions.current(db, "checkout").document == {
        "max_line_discount_percent": 70,
        "max_points_payment_percent": 30,
    }


def test_the_members_by_tier_chart_plots_the_members_each_tier_holds(
    admin: TestClient, db: Session
) -> None:
    # given members standing in Silver and Gold
    now = datetime.now(UTC)
    for number, tier in enumerate(["silver", "silver", "gold"]):
        db.add(
            TierStanding(
                customer_id=f"cus_{number}",
                tier_id=tier,
                since=now,
                review_at=now + timedelta(days=365),
                qualifying_value=0,
                updated_at=now,
            )
        )
    db.flush()
    # when the program page is shown
    page = admin.get("/admin/loyalty/program").text
    # then its chart plots what the tier standings hold, tier by tier
    config = re.search(r'id="tier-chart-config" type="application/json">(.*?)</script>', page, re.S)
    assert config is not None
    chart = json.loads(config.group(1))
    assert chart["data"]["labels"] == [name for _, name, _ in tier_distribution(db)]
    assert chart["data"]["datasets"][0]["data"] == [0, 2, 1]


def test_a_rule_ending_before_it_starts_is_refused_at_its_end(
    admin: TestClient, db: Session
) -> None:
    path = "/admin/loyalty/program/rules/birthday"
    fields = typed(_form(admin, path, "rule-form"), "starts_at", "2026-12-10T00:00")
    answer = post_form(admin, path, typed(fields, "ends_at", "2026-12-01T00:00"))
    assert answer.status_code == 422
    assert 'data-field-error="ends_at">Give an end after the start<' in answer.text
    assert program_versions.current(db, "rules").id is None
    # a window in order is saved, in UTC
    fine = post_form(admin, path, typed(fields, "ends_at", "2027-01-01T00:00"))
    assert fine.status_code == 303
    birthday = _rules(db)["birthday"]
    assert (birthday["starts_at"], birthday["ends_at"]) == (
        "2026-12-10T00:00:00+00:00",
        "2027-01-01T00:00:00+00:00",
    )
