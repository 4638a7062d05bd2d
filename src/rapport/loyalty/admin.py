"""Admin pages for the loyalty ledger: the program's overview (members, points issued,
redeemed and expired by month, liability, breakage, tiers, the member list), its settings, a
member's statement, and the loyalty panel of the customer 360 page with its actions
(goodwill points with a reason, a coupon)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty import overview as reads
from rapport.loyalty import service
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.membership.value import value_statement
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.loyalty.tiers.standing import tier_history
from rapport.platform import clock
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    CustomerPanel,
    FormFields,
    NavItem,
    add_template_dir,
    field_messages,
    form_changes,
    form_token,
    money_field,
    redirect_saying,
    render,
    run_form_once,
    sent_token,
    typed_money,
)
from rapport.platform.charts import Chart, Series
from rapport.platform.db import DbSession
from rapport.platform.errors import Conflict, Problem
from rapport.platform.formatting import currencies, currency_choices, day, money
from rapport.platform.paging import PageParams
from rapport.platform.settings import AppSettings

add_template_dir(Path(__file__).parent / "templates")

NAV = [NavItem("Members and points", "/admin/loyalty", "Loyalty")]
CUSTOMER_PANELS = [CustomerPanel("Loyalty", "/admin/loyalty/customers/{customer_id}/panel", 20)]
router = APIRouter(prefix="/admin/loyalty", include_in_schema=False)
STATEMENT_PAGE = 25
# The newest tier changes the statement lists.
STATEMENT_TIER_CHANGES = 10
CHART_MONTHS = 24

# Goodwill points an agent may give in one go (loyalty's one cap on points given by hand, as
# for a ticket's apology points), and the reasons they choose from.
GOODWILL_MAX = service.MANUAL_POINTS_MAX
GOODWILL_WINDOW_POINTS_MAX = service.GOODWILL_WINDOW_POINTS_MAX
GOODWILL_WINDOW_DAYS_MAX = service.GOODWILL_WINDOW_DAYS_MAX
GOODWILL_REASONS = (
    "Late delivery",
    "Damaged or wrong item",
    "Service failure",
    "Price match",
    "Thank-you gesture",
    "Other",
)
PANEL_MOVEMENTS = 5
# The customer 360's loyalty panel lists this many open coupons, newest first, and counts the
# others (the coupons page lists them all, a page at a time).
PANEL_COUPONS = 5
# The open lots a member's statement page lists, soonest to expire first (the others counted).
STATEMENT_LOTS = 50
EXPIRY_HORIZON_DAYS = 90


def _to_customer(request: Request, customer_id: str, message: str) -> RedirectResponse:
    return redirect_saying(request, f"/admin/customers/{customer_id}", message)


def _number(text: str) -> int | None:
    try:
        return int(text.replace(",", "").strip()) if text.strip() else None
    except ValueError:
        return None


# The most a balance filter takes: the largest integer both databases store (a balance is
# never more), so a bound typed beyond it is marked on the form and never reaches SQL.
MAX_BALANCE_FILTER = 2**63 - 1


def _balance_filters(
    min_balance: str, max_balance: str
) -> tuple[int | None, int | None, dict[str, str]]:
    """The member list's balance range as typed, and a message per bound it cannot take."""
    errors: dict[str, str] = {}
    bounds: list[int | None] = []
    for name, text in (("min_balance", min_balance), ("max_balance", max_balance)):
        value = _number(text)
        if text.strip() and (value is None or not 0 <= value <= MAX_BALANCE_FILTER):
            errors[name] = f"A whole number of points from 0 to {MAX_BALANCE_FILTER:,}"
            value = None
        bounds.append(value)
    low, high = bounds
    if low is not None and high is not None and high < low:
        errors["max_balance"] = "At least “Points from”: the bounds are the wrong way round"
    return low, high, errors


@router.get("", response_class=HTMLResponse)
def overview_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    q: str = "",
    tier: str = "",
    min_balance: str = "",
    max_balance: str = "",
    *,
    settings: AppSettings,
) -> HTMLResponse:
    return _overview(
        request,
        db,
        user,
        paging_request,
        {"q": q, "tier": tier, "min_balance": min_balance, "max_balance": max_balance},
        locale=settings.locale,
    )


def _overview(
    request: Request,
    db: Session,
    user: Any,
    paging_request: PageParams,
    filters: dict[str, str],
    *,
    locale: str,
    settings_values: dict[str, Any] | None = None,
    settings_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The loyalty overview; with ``settings_values`` and ``settings_errors``, its program
    settings form as the user sent it, each message beside its field."""
    q, tier = filters["q"], filters["tier"]
    min_balance, max_balance = filters["min_balance"], filters["max_balance"]
    program = service.get_program(db)
    flows = reads.monthly_flows(db, months=CHART_MONTHS)
    lifetime = reads.lifetime_flows(db)
    by_tier = reads.members_by_tier(db)
    points_chart = Chart(
        id="points-by-month",
        kind="bar",
        title="Points issued, redeemed and expired by month",
        labels=[f.month for f in flows],
        series=[
            Series("Issued", [f.issued for f in flows]),
            Series("Redeemed", [f.redeemed for f in flows]),
            Series("Expired", [f.expired for f in flows]),
        ],
        unit="points",
        label_heading="Month",
    )
    tier_chart = Chart(
        id="members-by-tier",
        kind="bar",
        title="Members by tier",
        labels=[name for _, name, _ in by_tier],
        series=[Series("Members", [count for _, _, count in by_tier])],
        unit="count",
        label_heading="Tier",
        horizontal=True,
    )
    low, high, filter_errors = _balance_filters(min_balance, max_balance)
    found_ids: list[str] | None = None
    if q.strip():
        found_ids = [c.customer_id for c in customers.search_customers(db, query=q, limit=200)]
    chosen = reads.MemberFilter(
        tier=tier or None, min_balance=low, max_balance=high, customer_ids=found_ids
    )
    # a filter not understood lists nobody, not everyone
    paging = paging_request.of(0 if filter_errors else reads.count_members(db, chosen))
    rows = (
        []
        if filter_errors
        else reads.member_page(db, chosen, offset=paging.offset, limit=paging.per_page)
    )
    tier_names = {tier_id: name for tier_id, name, _ in by_tier}
    members = [
        {
            "row": row,
            "customer": customers.get_customer(db, customer_id=row.customer_id),
            "tier": tier_names.get(row.tier_id, row.tier_id),
        }
        for row in rows
    ]
    return render(
        request,
        "loyalty/overview.html",
        {
            "user": user,
            "liability": service.liability(db),
            "lifetime": lifetime,
            "program": program,
            "settings_values": settings_values or _settings_values(program),
            "settings_errors": settings_errors or {},
            "currency_choices": _currency_choices(program.currency, locale),
            "goodwill_max": GOODWILL_MAX,
            "goodwill_window_points_max": str(GOODWILL_WINDOW_POINTS_MAX),
            "goodwill_window_days_max": str(GOODWILL_WINDOW_DAYS_MAX),
            "points_chart": points_chart,
            "tier_chart": tier_chart,
            "tiers": by_tier,
            "members": members,
            "paging": paging,
            "filters": filters,
            "filter_errors": filter_errors,
            "filtered": bool(q or tier or min_balance or max_balance),
        },
        status_code=422 if filter_errors and status_code == 200 else status_code,
    )


def _settings_values(program: Any) -> dict[str, Any]:
    """What the program settings form shows: 100 points' value in the currency ("2.50")."""
    return {
        "currency": program.currency,
        "point_value": money_field(program.point_value_minor_per_100, program.currency),
        "expiry_months": str(program.expiry_months),
        "allow_debt": bool(program.allow_debt),
        "goodwill_window_points": str(program.goodwill_window_points),
        "goodwill_window_days": str(program.goodwill_window_days),
    }


def _currency_choices(current: str, locale: str) -> list[tuple[str, str]]:
    """The currencies the program may be set to, named in ``locale``, with the one it has
    even if withdrawn since (an unchanged form must keep it)."""
    choices = currency_choices(locale)
    if current not in {code for code, _ in choices}:
        choices.insert(0, (current, current))
    return choices


MAX_POINT_VALUE_MINOR = 1_000_000


class ProgramSettingsForm(BaseModel):
    """The program settings its admin form shows; a save changes only what the form carried
    (the program's name is not on it and stays as it is)."""

    currency: str = Field(default="EUR", min_length=3, max_length=3)
    point_value_minor_per_100: int = Field(default=0, ge=0, le=MAX_POINT_VALUE_MINOR)
    expiry_months: int = Field(default=24, ge=1, le=120)
    allow_debt: bool = False
    goodwill_window_points: int = Field(default=20_000, ge=0, le=GOODWILL_WINDOW_POINTS_MAX)
    goodwill_window_days: int = Field(default=30, ge=1, le=GOODWILL_WINDOW_DAYS_MAX)


SETTINGS_LABELS = {
    "currency": "Currency",
    "point_value": "Value of 100 points",
    "expiry_months": "Points expire after",
    "allow_debt": "Debt from returns",
    "goodwill_window_points": "Goodwill per customer",
    "goodwill_window_days": "Goodwill window",
}


@router.post("/program", dependencies=[CsrfChecked])
def update_program(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    fields: FormFields,
    paging_request: PageParams,
    *,
    settings: AppSettings,
) -> Response:
    """Save the program settings the form carried; a value refused comes back beside its
    field, with what was typed, and nothing is saved."""
    carried = dict(fields)
    program = service.get_program(db)
    chosen = carried.get("currency", program.currency)
    # the form's own check: a currency not in use is refused (the program's own, even if
    # withdrawn since, is kept by an unchanged form), and 100 points' value ("2.50") is read
    # in the currency chosen on the same form (JPY has no decimals)
    errors: dict[str, str] = {}
    if chosen != program.currency and chosen not in currencies():
        errors["currency"] = "Currency: choose one from the list, an ISO code such as EUR"
    currency = chosen if chosen in currencies() else program.currency
    if "point_value" in carried:
        try:
            carried["point_value_minor_per_100"] = str(
                typed_money(carried.pop("point_value"), currency)
            )
        except ValueError as unreadable:
            errors["point_value"] = f"Value of 100 points: {unreadable}"
    for name, said in field_messages(
        ProgramSettingsForm, carried, labels=SETTINGS_LABELS, field_of=_settings_field
    ).items():
        errors.setdefault(name, _settings_said(name, said, currency))
    if not errors:
        try:
            service.configure_program(db, **form_changes(ProgramSettingsForm, carried))
        except Problem as problem:
            name = _settings_field(problem.field or "currency")
            errors[name] = _settings_said(name, problem.detail, currency)
    if not errors:
        return redirect_saying(request, "/admin/loyalty", "Program settings saved")
    values = _settings_values(program)
    for name in values:
        if name in fields:
            values[name] = fields[name] == "true" if name == "allow_debt" else fields[name]
    filters = {"q": "", "tier": "", "min_balance": "", "max_balance": ""}
    return _overview(
        request,
        db,
        user,
        paging_request,
        filters,
        locale=settings.locale,
        settings_values=values,
        settings_errors=errors,
        status_code=422,
    )


def _settings_field(name: str) -> str:
    return {"point_value_minor_per_100": "point_value"}.get(name, name)


# What each refused setting says, for people (the model's bounds, in the form's units).
_SETTINGS_SAID = {
    "currency": "Currency: choose one from the list, an ISO code such as EUR",
    "point_value": "Value of 100 points: from {lowest} to {highest}",
    "expiry_months": "Points expire after: a whole number of months from 1 to 120",
    "goodwill_window_points": "Goodwill per customer: a whole number of points from 0 to "
    f"{GOODWILL_WINDOW_POINTS_MAX:,}",
    "goodwill_window_days": "Goodwill window: a whole number of days from 1 to "
    f"{GOODWILL_WINDOW_DAYS_MAX}",
}


def _settings_said(name: str, said: str, currency: str) -> str:
    return _SETTINGS_SAID.get(name, said).format(
        lowest=money(0, currency), highest=money(MAX_POINT_VALUE_MINOR, currency)
    )


# ------------------------------------------------------------- the customer 360's panel


def _is_erased(db: Any, customer_id: str) -> bool:
    customer = customers.get_customer(db, customer_id=customer_id)
    return customer is not None and customer.status == "erased"


def _panel_context(db: Any, customer_id: str) -> dict[str, Any]:
    member = service.get_member(db, customer_id=customer_id)
    program = service.get_program(db)
    membership = memberships.get_membership(db, customer_id=customer_id)
    plan = (
        membership_plans.get_plan(db, plan_id=membership.plan_id)
        if membership is not None
        else None
    )
    value = None
    if membership is not None:
        started = clock.as_utc(membership.started_at)
        now = clock.now()
        if now > started:
            value = value_statement(
                db, customer_id=customer_id, period_start=started, period_end=now
            )
    rewards = [r for r in reward_catalogue.list_rewards(db) if r.active]
    open_coupons = reads.CouponFilter(state="open", customer_id=customer_id)
    coupons = reads.coupon_page(db, open_coupons, offset=0, limit=PANEL_COUPONS)
    more_coupons = (
        reads.count_coupons(db, open_coupons) - len(coupons) if len(coupons) == PANEL_COUPONS else 0
    )
    return {
        "customer_id": customer_id,
        # an erased customer's panel offers no actions: nothing more is given to them
        "erased": _is_erased(db, customer_id),
        "member": member,
        "program": program,
        "progress": reads.tier_progress(db, customer_id=customer_id),
        "expiring": reads.expiring_lots(db, customer_id=customer_id, days=EXPIRY_HORIZON_DAYS),
        "horizon_days": EXPIRY_HORIZON_DAYS,
        "movements": service.statement(db, customer_id=customer_id, limit=PANEL_MOVEMENTS),
        "membership": membership,
        "plan": plan,
        "value": value,
        "now": clock.now(),
        "coupons": coupons,
        "more_coupons": more_coupons,
        "more_coupons_url": "/admin/loyalty/coupons?"
        + urlencode({"customer": customer_id, "state": "open"}),
        "rewards": rewards,
        "reasons": GOODWILL_REASONS,
        "goodwill_max": GOODWILL_MAX,
        "goodwill_room": service.goodwill_room(db, customer_id=customer_id),
        # A fresh one-time token per rendering: sending the same form twice gives once.
        "goodwill_token": form_token(),
        "coupon_token": form_token(),
    }


def _panel(
    request: Request,
    db: Any,
    customer_id: str,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    context = _panel_context(db, customer_id)
    context.update(errors=errors or {}, typed=typed or {}, message=message)
    return render(request, "loyalty/customer_panel.html", context, status_code=status_code)


@router.get("/customers/{customer_id}/panel", response_class=HTMLResponse)
def customer_panel(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    """The loyalty part of the customer 360 page: an HTML fragment loaded by htmx."""
    if customers.get_customer(db, customer_id=customer_id) is None:
        return HTMLResponse("<p>No such customer.</p>", status_code=404)
    return _panel(request, db, customer_id)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _refused_erased(request: Request, db: Any, customer_id: str, what: str) -> Response:
    """An action on an erased customer, refused before anything is written: the panel again
    (saying they were erased, with no actions), or back to the customer page saying so."""
    if _is_htmx(request):
        return _panel(request, db, customer_id, status_code=422)
    return _to_customer(
        request, customer_id, f"This customer was erased: no {what} are given to them"
    )


def _refused(
    request: Request,
    db: Any,
    customer_id: str,
    field: str,
    detail: str,
    typed: dict[str, str],
) -> Response:
    """A refused action: the panel again with the message at its field (htmx), or back to
    the customer page with the message naming the field."""
    return _refused_fields(request, db, customer_id, {field: detail}, typed)


def _refused_fields(
    request: Request,
    db: Any,
    customer_id: str,
    errors: dict[str, str],
    typed: dict[str, str],
) -> Response:
    """:func:`_refused` for every field a form got wrong at once, so the agent mends them in
    one go rather than one resubmit each."""
    if _is_htmx(request):
        # 422 with the panel: the shell tells htmx to swap a 422 in (base.html), so the agent
        # sees each message at its field.
        return _panel(request, db, customer_id, errors=errors, typed=typed, status_code=422)
    return _to_customer(request, customer_id, "; ".join(errors.values()))


class GoodwillForm(BaseModel):
    points: int = Field(ge=1, le=GOODWILL_MAX)
    reason: str = Field(min_length=1, max_length=60)
    note: str = Field(default="", max_length=300)


def _goodwill_reason(choice: str, note: str) -> str:
    return f"Goodwill: {choice}" + (f" ({note})" if note else "")


@router.post("/customers/{customer_id}/goodwill", dependencies=[CsrfChecked])
def give_goodwill_points(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    """Goodwill points with a reason, once per form (its one-time token is the command's
    Idempotency-Key): a form sent twice gives the points once."""
    typed = {name: fields.get(name, "") for name in ("points", "reason", "note")}
    if customers.get_customer(db, customer_id=customer_id) is None:
        return _to_customer(request, customer_id, "No such customer")
    if _is_erased(db, customer_id):
        return _refused_erased(request, db, customer_id, "points")
    points = _number(typed["points"])
    choice, note = typed["reason"].strip(), " ".join(typed["note"].split())
    errors: dict[str, str] = {}
    if points is None or not 1 <= points <= GOODWILL_MAX:
        errors["points"] = f"Points: a whole number from 1 to {GOODWILL_MAX:,}"
    if choice not in GOODWILL_REASONS:
        errors["reason"] = "Reason: choose one"
    if choice == "Other" and not note:
        errors["note"] = "Reason: say why in the note for Other"
    elif len(note) > 300:
        errors["note"] = "Note: at most 300 characters"
    if errors or points is None:
        return _refused_fields(request, db, customer_id, errors, typed)
    token = sent_token(fields)
    if not token:
        return _refused(
            request, db, customer_id, "points", "This form has expired; open it again", typed
        )
    reason = _goodwill_reason(choice, note)
    try:
        _, replayed = run_form_once(
            db,
            user=user,
            action="goodwill",
            subject=customer_id,
            token=token,
            request_body={"points": points, "reason": reason},
            execute=lambda hook: service.give_goodwill(
                db,
                customer_id=customer_id,
                points=points,
                reason=reason,
                actor=user.email,
                before_commit=hook,
            ),
            render=lambda posted: {"points": posted.points, "balance": posted.balance},
        )
    except Problem as problem:
        return _refused(request, db, customer_id, problem.field or "points", problem.detail, typed)
    message = (
        f"These {points:,} goodwill points were given already (the form was sent twice)"
        if replayed
        else f"Gave {points:,} goodwill points: {reason.removeprefix('Goodwill: ')}"
    )
    if _is_htmx(request):
        return _panel(request, db, customer_id, message=message)
    return _to_customer(request, customer_id, message)


@router.post("/customers/{customer_id}/membership/resume", dependencies=[CsrfChecked])
def resume_membership(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin
) -> Response:
    """Take a cancellation of the customer's paid membership back before its period ends
    (no new fee); sent twice, the second changes nothing."""
    if customers.get_customer(db, customer_id=customer_id) is None:
        return _to_customer(request, customer_id, "No such customer")
    try:
        membership = memberships.resume(db, customer_id=customer_id)
    except Problem as problem:
        if _is_htmx(request):
            return _panel(request, db, customer_id, message=problem.detail, status_code=422)
        return _to_customer(request, customer_id, problem.detail)
    message = (
        "Membership resumed: it renews on "
        f"{day(clock.as_utc(membership.current_period_end))}, with no fee now"
    )
    if _is_htmx(request):
        return _panel(request, db, customer_id, message=message)
    return _to_customer(request, customer_id, message)


def _coupon_code(token: str) -> str:
    """The coupon's code, drawn from the form's one-time token: the same form sent twice
    asks for the same code, which the coupon table refuses the second time. As long as
    every other coupon's code (``CODE_LENGTH``), from the same alphabet."""
    digest = hashlib.sha256(f"goodwill-coupon:{token}".encode()).digest()
    alphabet = reward_coupons.CODE_ALPHABET
    # the digest read as one number, in base 26: every symbol as likely as the others
    number, symbols = int.from_bytes(digest), []
    for _ in range(reward_coupons.CODE_LENGTH):
        number, symbol = divmod(number, len(alphabet))
        symbols.append(alphabet[symbol])
    return "".join(symbols)


@router.post("/customers/{customer_id}/coupon", dependencies=[CsrfChecked])
def issue_coupon(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    """A coupon on a reward's terms for this customer: free (goodwill), or bought with the
    member's points as the reward costs."""
    typed = {name: fields.get(name, "") for name in ("reward_id", "pay")}
    if customers.get_customer(db, customer_id=customer_id) is None:
        return _to_customer(request, customer_id, "No such customer")
    if _is_erased(db, customer_id):
        # the coupon verbs refuse an erased customer too (so the API cannot issue one)
        return _refused_erased(request, db, customer_id, "coupons")
    reward = reward_catalogue.get_reward(db, reward_id=typed["reward_id"].strip())
    if reward is None or not reward.active:
        return _refused(
            request, db, customer_id, "reward_id", "Coupon: choose a reward on offer", typed
        )
    token = sent_token(fields)
    if not token:
        return _refused(
            request, db, customer_id, "reward_id", "This form has expired; open it again", typed
        )
    try:
        if typed["pay"] == "points":
            code = _paid_coupon(db, user=user, customer_id=customer_id, reward=reward, token=token)
        else:
            coupon = reward_coupons.create_campaign_coupon(
                db,
                rule=f"goodwill:{reward.reward_id}",
                kind=reward.coupon_kind,
                value=reward.coupon_value,
                expires_at=clock.now() + timedelta(days=reward.valid_days),
                code=_coupon_code(token),
                customer_id=customer_id,
                min_subtotal_minor=reward.min_subtotal_minor,
                categories=list(reward.categories),
                stackable=reward.stackable,
                issued_by=user.email,
            )
            code = coupon.code
    except Conflict as problem:
        if problem.field == "code":
            return _to_customer(
                request, customer_id, "This coupon was issued already (the form was sent twice)"
            )
        return _refused(
            request, db, customer_id, problem.field or "reward_id", problem.detail, typed
        )
    except Problem as problem:
        return _refused(
            request, db, customer_id, problem.field or "reward_id", problem.detail, typed
        )
    message = f"Issued coupon {code}: {reward.name}"
    if _is_htmx(request):
        return _panel(request, db, customer_id, message=message)
    return _to_customer(request, customer_id, message)


def _paid_coupon(db: Any, *, user: Any, customer_id: str, reward: Any, token: str) -> str:
    answer, _ = run_form_once(
        db,
        user=user,
        action="coupon",
        subject=customer_id,
        token=token,
        request_body={"reward_id": reward.reward_id},
        execute=lambda hook: reward_coupons.redeem_reward(
            db,
            customer_id=customer_id,
            reward_id=reward.reward_id,
            issued_by=user.email,
            before_commit=hook,
        ),
        render=lambda coupon: {"code": coupon.code},
    )
    return str(answer["code"])


@router.get("/members/{customer_id}", response_class=HTMLResponse)
def member_page(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin, before: int | None = None
) -> HTMLResponse:
    customer = customers.get_customer(db, customer_id=customer_id)
    said = customers.gone_notice(db, customer_id) if customer is not None else None
    if said is not None:
        # erased: said as the customer page says it (not "0 points available")
        return render(request, "customers/gone.html", {"user": user, "said": said}, status_code=404)
    member = service.get_member(db, customer_id=customer_id, lots_limit=STATEMENT_LOTS)
    movements = service.statement(
        db, customer_id=customer_id, limit=STATEMENT_PAGE + 1, before=before
    )
    return render(
        request,
        "loyalty/member.html",
        {
            "user": user,
            "customer": customer,
            "customer_id": customer_id,
            "member": member,
            "movements": movements[:STATEMENT_PAGE],
            "older": movements[STATEMENT_PAGE - 1].transaction_id
            if len(movements) > STATEMENT_PAGE
            else None,
            "program": service.get_program(db),
            "tier_changes": [
                change | {"changed_at": datetime.fromisoformat(change["changed_at"])}
                for change in tier_history(
                    db, customer_id=customer_id, limit=STATEMENT_TIER_CHANGES
                )
            ],
        },
        status_code=200 if customer is not None or member is not None else 404,
    )


# Paid membership and announcements pages.
from rapport.loyalty.membership import admin as membership_admin  # noqa: E402

router.include_router(membership_admin.router)
NAV.extend(membership_admin.NAV)

# The rewards catalogue (reached from the membership pages) and the coupons page.
from rapport.loyalty.rewards import admin as rewards_admin  # noqa: E402

router.include_router(rewards_admin.router)
NAV.extend(rewards_admin.NAV)

# The program's configuration (rules, tiers, checkout caps), simulator and tier chart.
from rapport.loyalty.program import admin as program_admin  # noqa: E402

router.include_router(program_admin.router)
NAV.extend(program_admin.NAV)
