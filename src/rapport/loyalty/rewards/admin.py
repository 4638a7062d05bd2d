"""Admin pages for the rewards catalogue: the list with category warnings, each reward's edit
page, and saving a reward.

Included by ``loyalty.admin`` under its ``/admin/loyalty`` prefix; forms are CSRF-checked and
call the same verbs as the API. A save changes only the settings its form carried: a setting
a form leaves out keeps its stored value.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy.orm import Session

from rapport.loyalty import overview as reads
from rapport.loyalty.ledger.settings import get_program
from rapport.loyalty.models import Reward
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.platform import clock
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    FormFields,
    NavItem,
    field_messages,
    form_token,
    list_text,
    money_field,
    redirect_saying,
    render,
    run_form_once,
    sent_token,
    settings_after_save,
    typed_list,
    typed_money,
)
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem
from rapport.platform.formatting import money
from rapport.platform.idempotency import HEADER, BeforeCommit
from rapport.platform.paging import PageParams, PageRequest

router = APIRouter(include_in_schema=False)
NAV = [NavItem("Coupons", "/admin/loyalty/coupons", "Loyalty")]
MAX_AMOUNT_MINOR = 100_000_000


def _back(request: Request, path: str, message: str) -> RedirectResponse:
    return redirect_saying(request, path, message)


REWARD_LABELS = {
    "reward_id": "Reward id",
    "name": "Name",
    "points_cost": "Points cost",
    "coupon_kind": "Coupon kind",
    "coupon_value": "Coupon value",
    "min_subtotal": "Minimum basket",
    "categories": "Categories",
    "valid_days": "Valid for",
}


def _reward_values(reward: Reward | None, currency: str) -> dict[str, Any]:
    """What the reward form shows: every setting, money in the program's currency."""
    if reward is None:
        return {
            "reward_id": "",
            "name": "",
            "points_cost": "",
            "coupon_kind": "amount",
            "coupon_value": "",
            "min_subtotal": "0",
            "categories": "",
            "valid_days": 90,
            "stackable": True,
            "active": True,
        }
    return {
        "reward_id": reward.reward_id,
        "name": reward.name,
        "points_cost": reward.points_cost,
        "coupon_kind": reward.coupon_kind,
        "coupon_value": money_field(reward.coupon_value, currency)
        if reward.coupon_kind == "amount"
        else str(reward.coupon_value),
        "min_subtotal": money_field(reward.min_subtotal_minor, currency),
        "categories": list_text(reward.categories),
        "valid_days": reward.valid_days,
        "stackable": reward.stackable,
        "active": reward.active,
    }


def _typed_values(fields: dict[str, str], shown: dict[str, Any]) -> dict[str, Any]:
    values = dict(shown)
    for name in values:
        if name in fields:
            sent = fields[name]
            values[name] = sent == "true" if isinstance(values[name], bool) else sent
    return values


def _rewards_context(db: Session, user: Any) -> dict[str, Any]:
    catalogue = reward_catalogue.list_rewards(db)
    # Categories a reward names that no product is in: kept, but said (it matches nothing yet).
    warnings = [
        (reward.reward_id, warning)
        for reward in catalogue
        for warning in reward_catalogue.category_warnings(db, categories=reward.categories)
    ]
    return {
        "user": user,
        "rewards": catalogue,
        "warnings": warnings,
        "values": _reward_values(None, get_program(db).currency),
        "errors": {},
    }


@router.get("/rewards", response_class=HTMLResponse)
def rewards_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return render(request, "loyalty/membership_rewards.html", _rewards_context(db, user))


def _category_list(value: object) -> object:
    # The form shows the categories as one text field (platform.admin.list_text).
    return typed_list(value) if isinstance(value, str) else value


class RewardForm(BaseModel):
    """A reward's settings as its admin form sends them; each one optional, since a save
    changes only what the form carried. The form's amounts ("5.00") arrive here in minor
    units of the program's currency."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(default="", min_length=1, max_length=200)
    points_cost: int = Field(default=1, ge=1, le=100_000_000)
    coupon_kind: Literal["amount", "percent"] = "amount"
    coupon_value: int = Field(default=1, ge=1, le=100_000_000)
    min_subtotal_minor: int = Field(default=0, ge=0, le=100_000_000)
    categories: Annotated[list[str], BeforeValidator(_category_list)] = Field(
        default_factory=list, max_length=100
    )
    stackable: bool = True
    valid_days: int = Field(default=90, ge=1, le=reward_coupons.MAX_VALID_DAYS)
    active: bool = True


REWARD_NEEDS = ("name", "points_cost", "coupon_kind", "coupon_value")


def _reward_json(reward: Reward) -> str:
    return json.dumps(
        {
            "name": reward.name,
            "points_cost": reward.points_cost,
            "coupon_kind": reward.coupon_kind,
            "coupon_value": reward.coupon_value,
            "min_subtotal_minor": reward.min_subtotal_minor,
            "categories": list(reward.categories),
            "stackable": reward.stackable,
            "valid_days": reward.valid_days,
            "active": reward.active,
        },
        indent=2,
    )


@router.get("/rewards/{reward_id}", response_class=HTMLResponse)
def reward_page(
    request: Request, reward_id: str, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    reward = reward_catalogue.get_reward(db, reward_id=reward_id)
    return render(
        request,
        "loyalty/membership_reward_edit.html",
        {
            "user": user,
            "reward": reward,
            "reward_id": reward_id,
            "values": _reward_values(reward, get_program(db).currency),
            "errors": {},
            "reward_json": _reward_json(reward) if reward is not None else "",
        },
        status_code=200 if reward is not None else 404,
    )


def _amount(
    typed: str, currency: str, label: str, name: str, errors: dict[str, str], *, least: int
) -> int | None:
    """A money field ("5.00", "1,000") in minor units of ``currency`` (empty: zero), or None
    with its message in ``errors`` when it cannot be read one way only or is out of range."""
    try:
        minor = typed_money(typed.strip() or "0", currency)
    except ValueError as unreadable:
        errors[name] = f"{label}: {unreadable}"
        return None
    if not least <= minor <= MAX_AMOUNT_MINOR:
        errors[name] = (
            f"{label}: from {money(least, currency)} to {money(MAX_AMOUNT_MINOR, currency)}"
        )
        return None
    return minor


def _reward_fields(
    fields: dict[str, str], stored: Reward | None, currency: str, errors: dict[str, str]
) -> dict[str, str]:
    """The posted fields with the amounts in minor units: the minimum basket, and the coupon
    value when the coupon takes an amount off (a percent stays a whole percent)."""
    carried = dict(fields)
    if "min_subtotal" in carried:
        minor = _amount(
            carried.pop("min_subtotal"), currency, "Minimum basket", "min_subtotal", errors, least=0
        )
        if minor is not None:
            carried["min_subtotal_minor"] = str(minor)
    kind = carried.get("coupon_kind") or (stored.coupon_kind if stored else "amount")
    if "coupon_value" in carried:
        typed = carried["coupon_value"]
        if kind == "amount":
            minor = _amount(typed, currency, "Coupon value", "coupon_value", errors, least=1)
            if minor is not None:
                carried["coupon_value"] = str(minor)
        elif not typed.strip().isdigit() or not 1 <= int(typed.strip()) <= 100:
            errors["coupon_value"] = "Coupon value: a whole percent from 1 to 100"
    return carried


def _field_of(name: str) -> str:
    return {"min_subtotal_minor": "min_subtotal"}.get(name.split(".")[0], name.split(".")[0])


@router.post("/rewards", dependencies=[CsrfChecked])
def save_reward(
    request: Request, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    reward_id = fields.get("reward_id", "").strip()
    stored = reward_catalogue.get_reward(db, reward_id=reward_id) if reward_id else None
    adding = fields.get("new") == "true" or stored is None
    currency = get_program(db).currency
    errors: dict[str, str] = {}
    carried = _reward_fields(fields, stored, currency, errors)
    for name, said in field_messages(
        RewardForm, carried, labels=REWARD_LABELS, field_of=_field_of
    ).items():
        errors.setdefault(name, said)
    if not errors:
        try:
            settings = settings_after_save(
                RewardForm,
                carried,
                stored,
                needs=REWARD_NEEDS,
                noun="Reward",
                id_field="reward_id",
            )
            reward_catalogue.save_reward(db, reward_id=reward_id, **settings)
        except Problem as problem:
            errors[_field_of(problem.field or "name")] = problem.detail
    if not errors:
        return _back(request, "/admin/loyalty/rewards", f"Reward {reward_id} saved")
    if adding:
        context = _rewards_context(db, user)
        context["values"] = _typed_values(fields, context["values"])
        context["errors"] = errors
        return render(request, "loyalty/membership_rewards.html", context, status_code=422)
    assert stored is not None
    return render(
        request,
        "loyalty/membership_reward_edit.html",
        {
            "user": user,
            "reward": stored,
            "reward_id": reward_id,
            "values": _typed_values(fields, _reward_values(stored, currency)),
            "errors": errors,
            "reward_json": _reward_json(stored),
        },
        status_code=422,
    )


# ------------------------------------------------------------------------------ coupons

COUPON_SET_MAX = 500
# What the form says when its one-time token was sent before with other terms (422), or its
# coupons are still being issued (409).
REPEAT_REFUSED = {
    422: "This form was sent already with other terms; open the coupons page again to issue more",
    409: "These coupons are still being issued; open the coupons page again in a moment",
}


def _coupon_values() -> dict[str, Any]:
    return {
        "rule": "",
        "kind": "amount",
        "value": "",
        "min_subtotal": "0",
        "categories": "",
        "expires_on": (clock.now() + timedelta(days=30)).date().isoformat(),
        "count": "1",
        "code": "",
        "stackable": True,
    }


def _coupons_context(
    request: Request, db: Session, user: Any, paging_request: PageRequest
) -> dict[str, Any]:
    params = request.query_params
    state = params.get("state", "")
    chosen = reads.CouponFilter(
        state=state if state in reads.COUPON_STATES else None,
        rule=params.get("rule", "").strip() or None,
        code=reward_coupons.normalise_code(params.get("code", "")) or None,
        customer_id=params.get("customer", "").strip()[:40] or None,
    )
    paging = paging_request.of(reads.count_coupons(db, chosen))
    return {
        "user": user,
        "coupons": reads.coupon_page(db, chosen, offset=paging.offset, limit=paging.per_page),
        "campaigns": reads.coupon_campaigns(db),
        "paging": paging,
        "filters": {
            "state": state,
            "rule": params.get("rule", ""),
            "code": params.get("code", ""),
            "customer": chosen.customer_id or "",
        },
        "states": reads.COUPON_STATES,
        "now": clock.now(),
        "values": _coupon_values(),
        "errors": {},
        "set_max": COUPON_SET_MAX,
        # A fresh one-time token per rendering: the form sent twice issues the coupons once.
        "coupon_token": form_token(),
    }


@router.get("/coupons", response_class=HTMLResponse)
def coupons_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
) -> HTMLResponse:
    return render(
        request, "loyalty/coupons.html", _coupons_context(request, db, user, paging_request)
    )


@router.post("/coupons", dependencies=[CsrfChecked])
def create_coupons(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    fields: FormFields,
    paging_request: PageParams,
) -> Response:
    """A coupon campaign: one coupon under a chosen code (printed on a flyer), or a set of
    single-use coupons with random codes, on the same terms."""
    currency = get_program(db).currency
    errors: dict[str, str] = {}
    rule = fields.get("rule", "").strip()
    if not rule or len(rule) > 100:
        errors["rule"] = "Campaign: a name of 1 to 100 characters"
    kind = fields.get("kind", "amount")
    if kind not in reward_coupons.COUPON_KINDS:
        errors["kind"] = "Kind: an amount or a percent off"
    typed_value = fields.get("value", "")
    value: int | None = None
    if kind == "percent":
        if typed_value.strip().isdigit() and 1 <= int(typed_value) <= 100:
            value = int(typed_value)
        else:
            errors["value"] = "Value: a whole percent from 1 to 100"
    else:
        value = _amount(typed_value, currency, "Value", "value", errors, least=1)
    basket = _amount(
        fields.get("min_subtotal", "0"), currency, "Minimum basket", "min_subtotal", errors, least=0
    )
    expires_at = None
    try:
        day = date.fromisoformat(fields.get("expires_on", "").strip())
        expires_at = datetime.combine(day, time.max, tzinfo=UTC)
        if expires_at <= clock.now():
            errors["expires_on"] = "Valid until: a day from today on"
    except ValueError:
        errors["expires_on"] = "Valid until: a date"
    typed_count = fields.get("count", "1").strip()
    count = int(typed_count) if typed_count.isdigit() else 0
    if not 1 <= count <= COUPON_SET_MAX:
        errors["count"] = f"How many: from 1 to {COUPON_SET_MAX}"
    code = fields.get("code", "").strip() or None
    if code is not None and count != 1:
        errors["code"] = "Code: a chosen code makes one coupon; leave it empty for a set"
    categories: list[str] = []
    try:
        categories = typed_list(fields.get("categories", ""))
    except ValueError as unreadable:
        errors["categories"] = f"Only for categories: {unreadable}"
    stackable = fields.get("stackable") == "true"
    token = sent_token(fields)
    if not errors and not token:
        errors["rule"] = "This form has expired; open the coupons page again"
    issued: list[str] = []
    replayed = False
    if not errors and value is not None and basket is not None and expires_at is not None:
        terms: dict[str, Any] = {
            "rule": rule,
            "kind": kind,
            "value": value,
            "expires_at": expires_at,
            "code": code,
            "min_subtotal_minor": basket,
            "categories": categories,
            "stackable": stackable,
        }

        def issue_set(before_commit: BeforeCommit) -> list[str]:
            # One transaction for the whole set, the form's answer stored in it: a failure
            # midway issues none of it, and the form sent again issues all of it, once.
            issued = reward_coupons.issue_campaign_coupons(
                db,
                count=count,
                **terms,
                issued_by=user.email,
                before_commit=lambda session, coupons: before_commit(
                    session, [c.code for c in coupons]
                ),
            )
            return [c.code for c in issued]

        try:
            answer, replayed = run_form_once(
                db,
                user=user,
                action="coupons",
                subject="",
                token=token,
                request_body={**terms, "count": count},
                execute=issue_set,
                render=lambda codes: {"codes": codes},
            )
            issued = list(answer["codes"])
        except Problem as problem:
            db.rollback()
            name = {"coupon_value": "value", "min_subtotal_minor": "min_subtotal"}.get(
                problem.field or "rule", problem.field or "rule"
            )
            if problem.field == HEADER:
                errors["rule"] = REPEAT_REFUSED.get(problem.status, problem.detail)
            else:
                errors[name if name in _coupon_values() else "rule"] = problem.detail
    if not errors:
        shown = issued[0] if len(issued) == 1 else f"{len(issued)} coupons"
        said = f"Issued {shown} for {rule}"
        if replayed:
            said += " (the form was sent twice; they were issued once)"
        return redirect_saying(request, f"/admin/loyalty/coupons?{urlencode({'rule': rule})}", said)
    context = _coupons_context(request, db, user, paging_request)
    context["values"] = _typed_values(fields, context["values"])
    context["errors"] = errors
    return render(request, "loyalty/coupons.html", context, status_code=422)
