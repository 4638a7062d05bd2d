"""Every loyalty admin edit form keeps the settings it does not change: an object with every
setting away from its default, one field changed through the page's own form (as a browser
submits it), every other setting as it was. A post that leaves a setting out keeps it too."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.program import versions as program_versions
from rapport.loyalty.rewards import catalogue as reward_catalogue
from tests.platform.admin_forms import (
    csrf_token,
    page_form,
    post_form,
    ticked,
    typed,
)

Fields = list[tuple[str, str]]


def _plan(db: Session) -> dict[str, Any]:
    plan = membership_plans.get_plan(db, plan_id="gold")
    assert plan is not None
    db.refresh(plan)
    return {
        name: getattr(plan, name)
        for name in (
            "name",
            "fee_minor",
            "currency",
            "period",
            "free_shipping",
            "member_prices",
            "early_access_hours",
            "points_multiplier",
            "active",
        )
    }


def _reward(db: Session) -> dict[str, Any]:
    reward = reward_catalogue.get_reward(db, reward_id="wine-15")
    assert reward is not None
    db.refresh(reward)
    return {
        name: getattr(reward, name)
        for name in (
            "name",
            "points_cost",
            "coupon_kind",
            "coupon_value",
            "min_subtotal_minor",
            "categories",
            "stackable",
            "valid_days",
            "active",
        )
    }


def _program(db: Session) -> dict[str, Any]:
    db.expire_all()
    settings = loyalty.get_program(db)
    return {
        "name": settings.name,
        "currency": settings.currency,
        "point_value_minor_per_100": settings.point_value_minor_per_100,
        "expiry_months": settings.expiry_months,
        "allow_debt": settings.allow_debt,
    }


def _seed_plan(db: Session) -> None:
    # every setting away from save_plan's defaults (free shipping, member prices, 48 h, x1, offered)
    membership_plans.save_plan(
        db,
        plan_id="gold",
        name="Gold club",
        fee_minor=999,
        currency="USD",
        period="year",
        free_shipping=False,
        member_prices=False,
        early_access_hours=0,
        points_multiplier=2.0,
        active=False,
    )


def _seed_reward(db: Session) -> None:
    reward_catalogue.save_reward(
        db,
        reward_id="wine-15",
        name="15% off wine",
        points_cost=800,
        coupon_kind="percent",
        coupon_value=15,
        min_subtotal_minor=2500,
        categories=["Wine", "Spirits"],
        stackable=False,
        valid_days=30,
        active=False,
    )


def _seed_program(db: Session) -> None:
    loyalty.configure_program(
        db,
        name="Club Rapport",
        currency="USD",
        point_value_minor_per_100=250,
        expiry_months=36,
        allow_debt=False,
    )


@dataclass(frozen=True)
class EditForm:
    label: str
    seed: Callable[[Session], None]
    page: str
    action: str
    testid: str | None
    read: Callable[[Session], dict[str, Any]]
    change: Callable[[Fields], Fields]
    expected: dict[str, Any]  # the settings the change sets; everything else stays


EDIT_FORMS = [
    EditForm(
        "plan fee",
        _seed_plan,
        "/admin/loyalty/plans/gold",
        "/admin/loyalty/plans",
        "plan-form",
        _plan,
        lambda f: typed(f, "fee", "12.99"),
        {"fee_minor": 1299},
    ),
    EditForm(
        "plan free shipping ticked",
        _seed_plan,
        "/admin/loyalty/plans/gold",
        "/admin/loyalty/plans",
        "plan-form",
        _plan,
        lambda f: ticked(f, "free_shipping", True),
        {"free_shipping": True},
    ),
    EditForm(
        "plan multiplier",
        _seed_plan,
        "/admin/loyalty/plans/gold",
        "/admin/loyalty/plans",
        "plan-form",
        _plan,
        lambda f: typed(f, "points_multiplier", "3"),
        {"points_multiplier": 3.0},
    ),
    EditForm(
        "reward points cost",
        _seed_reward,
        "/admin/loyalty/rewards/wine-15",
        "/admin/loyalty/rewards",
        "reward-form",
        _reward,
        lambda f: typed(f, "points_cost", "900"),
        {"points_cost": 900},
    ),
    EditForm(
        "reward categories",
        _seed_reward,
        "/admin/loyalty/rewards/wine-15",
        "/admin/loyalty/rewards",
        "reward-form",
        _reward,
        lambda f: typed(f, "categories", "Wine, Beer"),
        {"categories": ["Wine", "Beer"]},
    ),
    EditForm(
        "reward offered again",
        _seed_reward,
        "/admin/loyalty/rewards/wine-15",
        "/admin/loyalty/rewards",
        "reward-form",
        _reward,
        lambda f: ticked(f, "active", True),
        {"active": True},
    ),
    EditForm(
        "program expiry",
        _seed_program,
        "/admin/loyalty",
        "/admin/loyalty/program",
        None,
        _program,
        lambda f: typed(f, "expiry_months", "18"),
        {"expiry_months": 18},
    ),
    EditForm(
        "program currency",
        _seed_program,
        "/admin/loyalty",
        "/admin/loyalty/program",
        None,
        _program,
        lambda f: typed(f, "currency", "GBP"),
        {"currency": "GBP"},
    ),
    EditForm(
        "program debt allowed",
        _seed_program,
        "/admin/loyalty",
        "/admin/loyalty/program",
        None,
        _program,
        lambda f: ticked(f, "allow_debt", True),
        {"allow_debt": True},
    ),
]


@pytest.mark.parametrize("form", EDIT_FORMS, ids=[f.label for f in EDIT_FORMS])
def test_edit_form_changes_only_the_field_changed(
    admin: TestClient, db: Session, form: EditForm
) -> None:
    # given an object with every setting away from its default
    form.seed(db)
    before = form.read(db)
    # when one field of its admin form is changed and the form submitted as a browser does
    page = admin.get(form.page)
    assert page.status_code == 200
    fields = form.change(page_form(page.text, action=form.action, testid=form.testid))
    response = post_form(admin, form.action, fields)
    # then that setting changed and every other one is as it was
    assert response.status_code == 303
    assert "saved" in admin.get(response.headers["location"]).text
    assert form.read(db) == {**before, **form.expected}


@pytest.mark.parametrize("form", EDIT_FORMS, ids=[f.label for f in EDIT_FORMS])
def test_edit_form_unchanged_submit_keeps_every_setting(
    admin: TestClient, db: Session, form: EditForm
) -> None:
    # given an object with every setting away from its default
    form.seed(db)
    before = form.read(db)
    # when its form is submitted untouched
    page = admin.get(form.page)
    response = post_form(
        admin, form.action, page_form(page.text, action=form.action, testid=form.testid)
    )
    # then nothing changed
    assert response.status_code == 303
    assert form.read(db) == before


@pytest.mark.parametrize(
    ("seed", "read", "action", "post", "expected"),
    [
        (
            _seed_plan,
            _plan,
            "/admin/loyalty/plans",
            {"plan_id": "gold", "fee_minor": "1299"},
            {"fee_minor": 1299},
        ),
        (
            _seed_reward,
            _reward,
            "/admin/loyalty/rewards",
            {"reward_id": "wine-15", "points_cost": "900"},
            {"points_cost": 900},
        ),
        (
            _seed_program,
            _program,
            "/admin/loyalty/program",
            {"expiry_months": "18"},
            {"expiry_months": 18},
        ),
    ],
    ids=["plan", "reward", "program"],
)
def test_a_setting_left_out_of_the_post_is_kept(
    admin: TestClient,
    db: Session,
    seed: Callable[[Session], None],
    read: Callable[[Session], dict[str, Any]],
    action: str,
    post: dict[str, str],
    expected: dict[str, Any],
) -> None:
    # given an object with every setting away from its default
    seed(db)
    before = read(db)
    # when a post carries only one setting (an older page, a script)
    token = csrf_token(admin.get("/admin/loyalty").text)
    response = admin.post(action, data={**post, "csrf_token": token}, follow_redirects=False)
    # then only that setting changed
    assert response.status_code == 303
    assert read(db) == {**before, **expected}


def test_adding_a_plan_under_an_existing_id_changes_nothing(admin: TestClient, db: Session) -> None:
    # given a plan
    _seed_plan(db)
    before = _plan(db)
    # when the "add a plan" form is filled in with the same id
    fields = page_form(admin.get("/admin/loyalty/plans").text, action="/admin/loyalty/plans")
    fields = typed(fields, "plan_id", "gold")
    fields = typed(fields, "name", "Another gold")
    fields = typed(fields, "fee", "1.00")
    response = post_form(admin, "/admin/loyalty/plans", fields)
    # then it is refused with a message at the plan id, and the plan is as it was
    assert response.status_code == 422
    assert 'data-field-error="plan_id"' in response.text
    assert "already exists" in response.text
    assert _plan(db) == before


def test_a_bad_value_names_its_field_and_saves_nothing(admin: TestClient, db: Session) -> None:
    # given a plan
    _seed_plan(db)
    before = _plan(db)
    # when its form is sent with a multiplier out of range
    page = admin.get("/admin/loyalty/plans/gold")
    fields = typed(page_form(page.text, action="/admin/loyalty/plans"), "points_multiplier", "11")
    response = post_form(admin, "/admin/loyalty/plans", fields)
    # then the form comes back with the message at that field, and nothing changed
    assert response.status_code == 422
    assert 'data-field-error="points_multiplier"' in response.text
    assert _plan(db) == before


def test_a_plan_in_a_made_up_currency_is_refused_beside_the_currency(
    admin: TestClient, db: Session
) -> None:
    # when the "add a plan" form is sent with a currency that does not exist
    fields = page_form(admin.get("/admin/loyalty/plans").text, action="/admin/loyalty/plans")
    fields = typed(typed(typed(fields, "plan_id", "xp-test"), "name", "XP test"), "fee", "5")
    fields = typed(fields, "currency", "XYZ")
    response = post_form(admin, "/admin/loyalty/plans", fields)
    # then the form comes back with a message beside Currency, saying what to give
    assert response.status_code == 422
    error = re.search(r'data-field-error="currency">([^<]*)<', response.text)
    assert error is not None
    assert error.group(1) == "Currency: give an ISO code such as EUR"
    # keeping what was typed
    for name, value in (("plan_id", "xp-test"), ("name", "XP test"), ("fee", "5")):
        assert re.search(rf'name="{name}" type="text" value="{value}"', response.text), name
    assert 'name="currency" type="text" value="XYZ"' in response.text
    # and no plan was saved
    assert membership_plans.get_plan(db, plan_id="xp-test") is None


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("rules", lambda d: d["rules"][0].__setitem__("name", "One point per euro")),
        ("tiers", lambda d: d.__setitem__("grace_days", 45)),
        ("checkout", lambda d: d.__setitem__("max_points_payment_percent", 40)),
    ],
)
def test_program_documents_show_every_setting_and_keep_the_rest(
    admin: TestClient, db: Session, kind: str, change: Callable[[dict[str, Any]], None]
) -> None:
    # given a saved version of the document
    document = json.loads(json.dumps(program_versions.current(db, kind).document))  # type: ignore[arg-type]
    program_versions.save(db, kind, document, changed_by="setup")  # type: ignore[arg-type]
    saved = program_versions.current(db, kind).document  # type: ignore[arg-type]
    # when one value of the document on the page is changed and the form submitted
    fields = page_form(
        admin.get("/admin/loyalty/program/advanced").text, action=f"/admin/loyalty/program/{kind}"
    )
    shown = json.loads(dict(fields)["document"])
    assert shown == saved  # the form shows the whole document
    change(shown)
    response = post_form(
        admin, f"/admin/loyalty/program/{kind}", typed(fields, "document", json.dumps(shown))
    )
    # then the new version is the old one with that one change
    assert response.status_code == 200
    expected = json.loads(json.dumps(saved))
    change(expected)
    assert program_versions.current(db, kind).document == expected  # type: ignore[arg-type]


def test_the_program_currency_is_the_one_money_is_shown_in(admin: TestClient, db: Session) -> None:
    # given a shop that prices in pounds, its program still at the euro it started with
    assert loyalty.get_program(db).currency == "EUR"
    assert "€1.00 per 100" in admin.get("/admin/loyalty").text
    # when the program settings form is saved with the currency set to GBP
    page = admin.get("/admin/loyalty").text
    fields = typed(page_form(page, action="/admin/loyalty/program"), "currency", "GBP")
    response = post_form(admin, "/admin/loyalty/program", fields)
    # then money on the admin pages is in pounds, and amounts are relabelled, not converted
    assert response.status_code == 303
    assert loyalty.get_program(db).currency == "GBP"
    shown = admin.get("/admin/loyalty").text
    assert "£1.00 per 100" in shown
    assert "€" not in shown
    assert "an amount off (GBP)" in admin.get("/admin/loyalty/coupons").text


def test_a_currency_not_in_use_is_refused_and_nothing_changes(
    admin: TestClient, db: Session
) -> None:
    # given a program with every setting away from its default
    _seed_program(db)
    before = _program(db)
    # when the form is posted with a withdrawn currency (a script, an old page) and a new expiry
    page = admin.get("/admin/loyalty").text
    fields = typed(page_form(page, action="/admin/loyalty/program"), "currency", "DEM")
    fields = typed(fields, "expiry_months", "18")
    response = post_form(admin, "/admin/loyalty/program", fields)
    # then the form comes back saying what is wrong beside the currency, and no setting changed
    assert response.status_code == 422
    error = re.search(r'data-field-error="currency">([^<]*)<', response.text)
    assert error is not None
    assert error.group(1) == "Currency: choose one from the list, an ISO code such as EUR"
    assert re.search(r'name="expiry_months" type="number" value="18"', response.text)
    assert _program(db) == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("point_value", "100000", "Value of 100 points: from US$0.00 to US$10,000.00"),
        (
            "point_value",
            "lots",
            "Value of 100 points: an amount in USD; type it like 1,234.50, with a comma between"
            " thousands and a point before the decimals",
        ),
        (
            "point_value",
            "2,5",
            "Value of 100 points: an amount in USD; type it like 1,234.50, with a comma between"
            " thousands and a point before the decimals",
        ),
        ("expiry_months", "0", "Points expire after: a whole number of months from 1 to 120"),
        ("expiry_months", "ten", "Points expire after: a whole number of months from 1 to 120"),
    ],
)
def test_a_program_setting_refused_is_said_beside_it_keeping_what_was_typed(
    admin: TestClient, db: Session, field: str, value: str, message: str
) -> None:
    # given a program with every setting away from its default
    _seed_program(db)
    before = _program(db)
    # when its settings form is sent with one value out of range, another setting changed
    page = admin.get("/admin/loyalty").text
    fields = typed(page_form(page, action="/admin/loyalty/program"), field, value)
    other = "expiry_months" if field != "expiry_months" else "point_value"
    fields = typed(fields, other, "7" if other == "expiry_months" else "3.50")
    response = post_form(admin, "/admin/loyalty/program", fields)
    # then the form comes back with a message for people beside the field, not at the top
    assert response.status_code == 422
    error = re.search(rf'data-field-error="{field}">([^<]*)<', response.text)
    assert error is not None
    assert error.group(1) == message
    assert "Input should be" not in response.text
    assert "point_value_minor_per_100" not in response.text
    # with what was typed in both fields
    assert re.search(rf'name="{field}" type="(text|number)" value="{value}"', response.text)
    assert re.search(rf'name="{other}" type="(text|number)" value="(7|3.50)"', response.text)
    # and nothing saved
    assert _program(db) == before


def test_the_add_plan_form_shows_and_sends_every_benefit(admin: TestClient, db: Session) -> None:
    # given the add form as it stands: every benefit is on it, none given until chosen
    fields = page_form(admin.get("/admin/loyalty/plans").text, action="/admin/loyalty/plans")
    names = {name for name, _ in fields}
    assert {"free_shipping", "member_prices", "early_access_hours", "points_multiplier"} <= names
    # when a plan is added choosing only free shipping
    for name, value in (("plan_id", "gold"), ("name", "Gold club"), ("fee", "9.99")):
        fields = typed(fields, name, value)
    response = post_form(admin, "/admin/loyalty/plans", ticked(fields, "free_shipping", True))
    # then it gives free shipping and nothing else, as the API's defaults
    assert response.status_code == 303
    saved = _plan(db)
    assert (saved["free_shipping"], saved["member_prices"], saved["early_access_hours"]) == (
        True,
        False,
        0,
    )
