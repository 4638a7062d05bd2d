"""Admin pages for the program's configuration: earning rules, the tier ladder and the
checkout caps, each edited with a form (money in the program's currency) beside a simulator
that shows what the draft would do before it is saved; the same documents as JSON with their
version history under "Advanced"; the tier distribution and breakage.

Every save goes through ``versions.save``, the verb the JSON editor and the API use: a new
validated version, in force from now."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from decimal import Decimal
from typing import Annotated, Any

from babel.numbers import get_currency_symbol
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.loyalty import service as ledger
from rapport.loyalty.benefits import multiplier_with_plan
from rapport.loyalty.earning import awards as earning_awards
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.program import forms
from rapport.loyalty.program import versions as configuration
from rapport.loyalty.program.forms import FormInvalid
from rapport.loyalty.program.rules import (
    EVENT_FACTS,
    Decision,
    Fact,
    RuleSet,
    evaluate,
    minor_per_unit,
    named_categories,
    parse_rule_set,
)
from rapport.loyalty.tiers import reviews as tier_reviews
from rapport.loyalty.tiers.policy import TierPolicy, parse_tier_policy
from rapport.loyalty.tiers.standing import standings_by_value, tier_distribution
from rapport.platform import clock, formatting
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    FormFields,
    NavItem,
    redirect_saying,
    render,
    typed_money,
)
from rapport.platform.charts import Chart, Series
from rapport.platform.db import DbSession
from rapport.platform.errors import NotFound, Problem

NAV = [NavItem("Program and rules", "/admin/loyalty/program", "Loyalty")]
# Included by loyalty.admin, under its /admin/loyalty prefix.
router = APIRouter(include_in_schema=False)

KINDS: dict[str, str] = {
    "rules": "Earning rules",
    "tiers": "Tiers and benefits",
    "checkout": "Checkout caps",
}
EVENTS: dict[str, str] = {
    "order_placed": "An order",
    "preference_shared": "A preference shared",
    "review_verified": "A verified review",
    "birthday": "A birthday",
    "delivery_late": "A late delivery",
    "delivery_failed": "A failed delivery",
}
PROGRAM = "/admin/loyalty/program"
_MINOR_UNITS = re.compile(r"\b(\d+) minor units\b")


def _currency(db: Session) -> str:
    return ledger.get_program(db).currency


def _common(request: Request, db: Session, user: Any) -> dict[str, Any]:
    currency = _currency(db)
    display = getattr(request.state, "display", None)
    locale = getattr(display, "locale", formatting.DEFAULT_LOCALE)
    return {
        "user": user,
        "currency": currency,
        "symbol": get_currency_symbol(currency, locale=locale),
        # One unit of the currency in minor units, for the spend rule's example (¥1 is 1).
        "unit_minor": minor_per_unit(currency),
        "kinds": KINDS,
        "rule_kinds": forms.RULE_KINDS,
        "events": EVENTS,
        "channels": forms.CHANNELS,
        "tier_ladder": configuration.tier_policy(db),
    }


# --- the program page: what is in force, with links to each form ---------------------------


@router.get("/program", response_class=HTMLResponse)
def program_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    currency = _currency(db)
    versions = {kind: configuration.current(db, kind) for kind in KINDS}  # type: ignore[arg-type]
    rules = list(versions["rules"].document.get("rules") or [])
    distribution = tier_distribution(db)
    return render(
        request,
        "loyalty/program.html",
        {
            **_common(request, db, user),
            "versions": versions,
            "rules": [{**rule, "described": forms.describe_rule(rule, currency)} for rule in rules],
            "ladder": parse_tier_policy(versions["tiers"].document),
            "checkout": configuration.parse_checkout_policy(versions["checkout"].document),
            "warnings": [
                {"detail": warning.detail, **_rule_setting(warning.field, rules)}
                for warning in catalog.category_warnings(
                    db, named=named_categories(parse_rule_set(versions["rules"].document))
                )
            ],
            "tier_chart": Chart(
                id="tier-chart",
                kind="bar",
                title="Members by tier",
                labels=[name for _, name, _ in distribution],
                series=[Series("Members", [count for _, _, count in distribution])],
                label_heading="Tier",
            ),
            "breakage": ledger.lifetime_flows(db),
        },
    )


def _rule_setting(field: str, rules: list[dict[str, Any]]) -> dict[str, str]:
    """Where a warning's field (``rules.0.exclude_categories.1``) is, for people: the rule
    (its name and id, for the link to its form) and the setting in the form's words."""
    parts = field.split(".")
    if len(parts) < 3 or parts[0] != "rules" or not parts[1].isdigit():
        return {"rule_id": "", "rule": "", "setting": ""}
    rule = rules[int(parts[1])] if int(parts[1]) < len(rules) else {}
    position = int(parts[3]) + 1 if len(parts) > 3 and parts[3].isdigit() else 0
    setting = {
        "exclude_categories": "categories that earn nothing",
        "multipliers": f"multiplier {position}'s category" if position else "a multiplier",
    }.get(parts[2], parts[2].replace("_", " "))
    return {
        "rule_id": str(rule.get("id", "")),
        "rule": str(rule.get("name") or rule.get("id") or f"rule {int(parts[1]) + 1}"),
        "setting": setting,
    }


# --- earning rules --------------------------------------------------------------------------


def _stored_rule(db: Session, rule_id: str) -> dict[str, Any] | None:
    document = configuration.current(db, "rules").document
    return next((r for r in document.get("rules") or [] if r.get("id") == rule_id), None)


def _rule_page(
    request: Request,
    db: Session,
    user: Any,
    *,
    kind: str,
    values: dict[str, str],
    editing: str | None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    sample = _default_sample(kind, _currency(db))
    return render(
        request,
        "loyalty/program_rule.html",
        {
            **_common(request, db, user),
            "kind": kind,
            "version": configuration.current(db, "rules"),
            "values": values,
            "editing": editing,
            "errors": errors or {},
            "multiplier_rows": forms.multiplier_rows(values),
            "periods": forms.PERIODS,
            "triggers": forms.TRIGGERS,
            "multiplier_on": forms.MULTIPLIER_ON,
            "plans": membership_plans.list_plans(db),
            "sample": sample,
            "simulation": _simulate_rules(
                db, {**values, **sample, "rule_kind": kind, "editing": editing or ""}
            ),
        },
        status_code=status_code,
    )


def _default_sample(kind: str, currency: str) -> dict[str, str]:
    event = {
        "preference_shared": "preference_shared",
        "verified_review": "review_verified",
        "birthday": "birthday",
        "apology": "delivery_late",
    }.get(kind, "order_placed")
    return {
        "sample_event": event,
        # 100 units of the currency: 100.00 EUR, 100 JPY, 100.000 KWD.
        "sample_amount": forms.money_text(100 * minor_per_unit(currency), currency),
        "sample_channel": "web",
        "sample_category": "",
        "sample_tier": "",
        "sample_plan": "",
        "sample_customer": "",
        "sample_field": "shoe_size",
    }


@router.get("/program/rules/new/{kind}", response_class=HTMLResponse)
def new_rule_form(request: Request, kind: str, db: DbSession, user: CurrentAdmin) -> Response:
    if kind not in forms.RULE_KINDS:
        return _back(request, "Unknown kind of rule")
    values = {"active": "true", "name": forms.RULE_KINDS[kind]}
    if kind == "apology":
        values.update({f"on_{trigger}": "true" for trigger in forms.TRIGGERS})
    return _rule_page(request, db, user, kind=kind, values=values, editing=None)


@router.post("/program/rules/new/{kind}", dependencies=[CsrfChecked])
def add_rule(
    request: Request, kind: str, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    return _save_rule(request, db, user, kind=kind, editing=None, fields=fields)


@router.get("/program/rules/{rule_id}", response_class=HTMLResponse)
def edit_rule_form(request: Request, rule_id: str, db: DbSession, user: CurrentAdmin) -> Response:
    rule = _stored_rule(db, rule_id)
    if rule is None:
        return _back(request, "No such rule")
    values = forms.rule_fields(rule, _currency(db))
    return _rule_page(request, db, user, kind=str(rule["kind"]), values=values, editing=rule_id)


@router.post("/program/rules/{rule_id}", dependencies=[CsrfChecked])
def update_rule(
    request: Request, rule_id: str, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    rule = _stored_rule(db, rule_id)
    if rule is None:
        return _back(request, "No such rule")
    return _save_rule(request, db, user, kind=str(rule["kind"]), editing=rule_id, fields=fields)


def _save_rule(
    request: Request,
    db: Session,
    user: Any,
    *,
    kind: str,
    editing: str | None,
    fields: dict[str, str],
) -> Response:
    document = configuration.current(db, "rules").document
    stored = _stored_rule(db, editing) if editing else None
    index = -1
    try:
        rule = forms.rule_from_form(stored, kind, fields, _currency(db))
        draft, index = forms.rules_with(document, editing, rule)
        saved = _save_changed(db, "rules", draft, user=user, note=fields.get("note", ""))
    except FormInvalid as invalid:
        errors = invalid.errors
    except Problem as problem:
        errors = forms.rule_errors(problem, index)
    else:
        return _back(request, _said_saved(db, f"Earning rule {rule['name']!r}", "rules", saved))
    values = {**(forms.rule_fields(stored, _currency(db)) if stored else {}), **fields}
    return _rule_page(
        request,
        db,
        user,
        kind=kind,
        values=values,
        editing=editing,
        errors=errors,
        status_code=422,
    )


@router.post("/program/rules/{rule_id}/delete", dependencies=[CsrfChecked])
def delete_rule(
    request: Request, rule_id: str, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> RedirectResponse:
    rule = _stored_rule(db, rule_id)
    if rule is None:
        return _back(request, "No such rule")
    document = configuration.current(db, "rules").document
    try:
        saved = configuration.save(
            db,
            "rules",
            forms.rules_without(document, rule_id),
            changed_by=user.email,
            note=fields.get("note") or f"removed rule {rule_id}",
        )
    except Problem as problem:
        return _back(request, f"Not removed: {problem.detail}")
    return _back(request, f"Earning rule {rule.get('name')!r} removed: rules version {saved.id}")


def _back(request: Request, message: str) -> RedirectResponse:
    return redirect_saying(request, PROGRAM, message)


def _save_changed(
    db: Session, kind: configuration.ConfigKind, draft: dict[str, Any], *, user: Any, note: str
) -> configuration.ConfigVersion | None:
    """Save a form's draft as a new version of ``kind``, or nothing (None) when it means the
    same as the version in force: compared as the program reads them, so an implicit default
    written out (``"active": true``) or 5 written 5.0 is no change. Raises a 422 problem as
    :func:`versions.save` does."""
    stored = configuration.current(db, kind).document
    read = configuration.validate(kind, draft)
    if configuration.means_the_same(kind, read, stored):
        return None
    return configuration.save(db, kind, draft, changed_by=user.email, note=note)


def _said_saved(
    db: Session,
    what: str,
    kind: configuration.ConfigKind,
    saved: configuration.ConfigVersion | None,
) -> str:
    if saved is None:
        in_force = configuration.current(db, kind).id
        if in_force is None:  # never saved: the program runs on its built-in defaults
            return f"{what}: nothing changed, the built-in defaults stay in force"
        return f"{what}: nothing changed, {kind} version {in_force} stays in force"
    return f"{what} saved: {kind} version {saved.id}"


# --- tiers and checkout caps ----------------------------------------------------------------


def _tiers_page(
    request: Request,
    db: Session,
    user: Any,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = int(values.get("tier_rows") or 0) or 1
    sample = {"sample_value": "", "target": "tiers"}
    return render(
        request,
        "loyalty/program_tiers.html",
        {
            **_common(request, db, user),
            "version": configuration.current(db, "tiers"),
            "recomputing": tier_reviews.recomputing(db),
            "values": values,
            "errors": errors or {},
            "rows": range(rows),
            "priorities": forms.PRIORITIES,
            "sample": sample,
            "simulation": _simulate_tiers(db, {**values, **sample}),
        },
        status_code=status_code,
    )


@router.get("/program/tiers/edit", response_class=HTMLResponse)
def tiers_form(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    stored = configuration.current(db, "tiers").document
    return _tiers_page(request, db, user, values=forms.tier_fields(stored, _currency(db)))


@router.post("/program/tiers/edit", dependencies=[CsrfChecked])
def save_tiers(request: Request, db: DbSession, user: CurrentAdmin, fields: FormFields) -> Response:
    stored = configuration.current(db, "tiers").document
    draft: dict[str, Any] = {}
    rows: list[int] = []
    try:
        draft, rows = forms.tiers_from_form(stored, fields, _currency(db))
        saved = _save_changed(db, "tiers", draft, user=user, note=fields.get("note", ""))
    except FormInvalid as invalid:
        errors = invalid.errors
    except Problem as problem:
        errors = forms.tier_errors(problem, rows, [t["id"] for t in draft.get("tiers", [])])
    else:
        return _back(request, _said_saved(db, "Tiers and benefits", "tiers", saved))
    values = {**forms.tier_fields(stored, _currency(db)), **fields}
    return _tiers_page(request, db, user, values=values, errors=errors, status_code=422)


def _checkout_page(
    request: Request,
    db: Session,
    user: Any,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    sample = {"sample_amount": "100.00", "target": "checkout"}
    return render(
        request,
        "loyalty/program_checkout.html",
        {
            **_common(request, db, user),
            "version": configuration.current(db, "checkout"),
            "values": values,
            "errors": errors or {},
            "point_value": ledger.get_program(db).point_value_minor_per_100,
            "sample": sample,
            "simulation": _simulate_checkout(db, {**values, **sample}),
        },
        status_code=status_code,
    )


@router.get("/program/checkout/edit", response_class=HTMLResponse)
def checkout_form(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    stored = configuration.current(db, "checkout").document
    return _checkout_page(request, db, user, values=forms.checkout_fields(stored))


@router.post("/program/checkout/edit", dependencies=[CsrfChecked])
def save_checkout(
    request: Request, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    stored = configuration.current(db, "checkout").document
    try:
        draft = forms.checkout_from_form(stored, fields)
        saved = _save_changed(db, "checkout", draft, user=user, note=fields.get("note", ""))
    except FormInvalid as invalid:
        errors = invalid.errors
    except Problem as problem:
        errors = forms.checkout_errors(problem)
    else:
        return _back(request, _said_saved(db, "Checkout caps", "checkout", saved))
    values = {**forms.checkout_fields(stored), **fields}
    return _checkout_page(request, db, user, values=values, errors=errors, status_code=422)


# --- the simulator beside each form ---------------------------------------------------------


@router.post("/program/simulate", response_class=HTMLResponse, dependencies=[CsrfChecked])
def simulate_draft(
    request: Request, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> HTMLResponse:
    """What the draft in the form would do (nothing is saved): the rules that fire for a
    sample order or event, the tier a sample member lands in, or what checkout may take."""
    target = fields.get("target", "rules")
    if target == "tiers":
        simulation = _simulate_tiers(db, fields)
    elif target == "checkout":
        simulation = _simulate_checkout(db, fields)
    else:
        simulation = _simulate_rules(db, fields)
    return render(
        request,
        f"loyalty/program_sim_{target if target in KINDS else 'rules'}.html",
        {**_common(request, db, user), "simulation": simulation},
    )


def _simulate_rules(db: Session, fields: dict[str, str]) -> dict[str, Any]:
    currency = _currency(db)
    kind, editing = fields.get("rule_kind", ""), fields.get("editing") or None
    document = configuration.current(db, "rules").document
    stored = _stored_rule(db, editing) if editing else None
    draft_fields = dict(fields)
    if stored is None and not fields.get("id", "").strip():
        draft_fields["id"] = "new-rule"  # a new rule may be simulated before it has an id
    index = -1
    try:
        rule = forms.rule_from_form(stored, kind, draft_fields, currency)
        draft, index = forms.rules_with(document, editing, rule)
        rules = parse_rule_set(draft)
    except FormInvalid as invalid:
        return {"invalid": invalid.errors}
    except Problem as problem:
        return {"invalid": forms.rule_errors(problem, index)}
    try:
        fact = _sample_fact(db, fields, currency)
    except (ValueError, Problem) as error:
        return {"error": getattr(error, "detail", None) or str(error)}
    _version, saved_rules = configuration.rule_set(db, at=fact.occurred_at)
    tier_id, plan_id = fields.get("sample_tier", ""), fields.get("sample_plan", "")
    try:
        draft_result = _evaluate(db, rules, fact, tier_id, plan_id)
        saved_result = _evaluate(db, saved_rules, fact, tier_id, plan_id)
    except Problem as problem:
        return {"error": problem.detail}
    db.rollback()  # reads only
    return {
        **draft_result,
        "rule_id": rule["id"],
        "saved_points": saved_result["points"],
        "amount": sum(line.total_minor for line in fact.lines),
        "event": fact.kind,
    }


def _sample_fact(db: Session, fields: dict[str, str], currency: str) -> Fact:
    event = fields.get("sample_event", "order_placed")
    customer_id = (
        customers.resolve_optional_customer_ref(
            db, ref=fields.get("sample_customer", "").strip() or None
        )
        or "simulated-customer"
    )
    at = clock.now()
    if event == "order_placed":
        text = fields.get("sample_amount", "").strip()
        try:
            amount = typed_money(text, currency)
        except ValueError as unreadable:
            raise ValueError(f"Give the order's amount: {unreadable}") from None
        if amount <= 0:
            raise ValueError("Give an order amount above zero")
        line = {
            "sku": fields.get("sample_sku", "").strip() or "SAMPLE",
            "quantity": 1,
            "unit_price_minor": amount,
            "category": fields.get("sample_category", "").strip() or None,
        }
        channel = fields.get("sample_channel", "web")
        return Fact(
            kind="order_placed",
            customer_id=customer_id,
            occurred_at=at,
            channel=channel if channel in forms.CHANNELS else "web",
            order_id="simulated",
            lines=earning_awards.order_lines(db, [line]),
            total_minor=amount,
            program_currency=currency,
        )
    if event not in EVENT_FACTS:
        raise ValueError(f"Unknown kind of event {event!r}")
    return Fact(
        kind=EVENT_FACTS[event],
        customer_id=customer_id,
        occurred_at=at,
        order_id="simulated",
        preference_field=fields.get("sample_field", "").strip() or "shoe_size",
        review_id="simulated",
    )


# The rule simulator's plan choice for a member with no paid plan (empty: the customer's own).
NO_PLAN = "none"


def _evaluate(
    db: Session, rules: RuleSet, fact: Fact, tier_id: str, plan_id: str = ""
) -> dict[str, Any]:
    """The earning processor's own evaluation, for a member of the sample's tier and paid plan
    (each the sample customer's unless chosen): the points multiplier is the better of the
    tier's and the plan's, by ``benefits.multiplier_with_plan`` as earning has it."""
    member = earning_awards.member_context(db, rules, fact)
    if tier_id or plan_id:
        tier = configuration.tier_policy(db, at=fact.occurred_at).tier(tier_id or member.tier)
        if plan_id == NO_PLAN:
            plan = None
        elif plan_id:
            plan = membership_plans.get_plan(db, plan_id=plan_id)
            if plan is None:
                raise NotFound(f"No plan {plan_id!r}", field="sample_plan")
        else:
            plan = ledger.current_plan(db, customer_id=fact.customer_id, at=fact.occurred_at)
        multiplier, plan_name = multiplier_with_plan(tier.benefits.points_multiplier, plan)
        member = dataclasses.replace(
            member,
            tier=tier.id,
            tier_multiplier=Decimal(str(multiplier)),
            multiplier_plan=plan_name,
        )
    decisions = [_in_currency(d, _currency(db)) for d in evaluate(rules, fact, member)]
    return {
        "decisions": decisions,
        "points": sum(d.points for d in decisions if d.fired),
        "tier": member.tier,
        "tier_multiplier": member.tier_multiplier,
        "multiplier_plan": member.multiplier_plan,
        "first_order": member.earlier_orders == 0,
    }


def _in_currency(decision: Decision, currency: str) -> Decision:
    """The decision with any amount its reason gives in minor units shown as money."""
    why = _MINOR_UNITS.sub(
        lambda found: formatting.money(int(found.group(1)), currency), decision.why
    )
    return dataclasses.replace(decision, why=why) if why != decision.why else decision


def _simulate_tiers(db: Session, fields: dict[str, str]) -> dict[str, Any]:
    currency = _currency(db)
    stored = configuration.current(db, "tiers").document
    saved = parse_tier_policy(stored)
    document: dict[str, Any] = {}
    rows: list[int] = []
    try:
        document, rows = forms.tiers_from_form(stored, fields, currency)
        draft = parse_tier_policy(document)
    except FormInvalid as invalid:
        return {"invalid": invalid.errors}
    except Problem as problem:
        ids = [tier["id"] for tier in document.get("tiers", [])]
        return {"invalid": forms.tier_errors(problem, rows, ids)}
    result: dict[str, Any] = {"draft": draft, "saved": saved, "basis": draft.basis}
    text = fields.get("sample_value", "").strip()
    if text:
        try:
            value = (
                typed_money(text, currency)
                if draft.basis == "spend"
                else int(text.replace(",", ""))
            )
        except ValueError as unreadable:
            result["error"] = (
                f"Give the member's spend: {unreadable}"
                if draft.basis == "spend"
                else "Give the member's qualifying points as a whole number"
            )
        else:
            result["value"] = value
            result["draft_tier"] = draft.qualifying_tier(value)
            result["saved_tier"] = (
                saved.qualifying_tier(value) if saved.basis == draft.basis else None
            )
    if draft.basis == saved.basis:
        result.update(_tier_moves(saved, draft, standings_by_value(db)))
    db.rollback()
    return result


def _tier_moves(
    saved: TierPolicy, draft: TierPolicy, standings: list[tuple[int, int]]
) -> dict[str, Any]:
    """How many members each ladder places in each tier, from their qualifying value at their
    last review (``standings``: value and members with it), and how many the draft moves up
    or down."""
    now: Counter[str] = Counter()
    then: Counter[str] = Counter()
    up = down = 0
    in_draft = {tier.id for tier in draft.tiers}
    for value, members in standings:
        before, after = saved.qualifying_tier(value), draft.qualifying_tier(value)
        now[before.name] += members
        then[after.name] += members
        if before.id != after.id:
            if before.id in in_draft and draft.rank(after.id) < draft.rank(before.id):
                down += members
            else:
                up += members
    names = [tier.name for tier in saved.tiers]
    names += [tier.name for tier in draft.tiers if tier.name not in names]
    return {
        "members": sum(members for _, members in standings),
        "moved_up": up,
        "moved_down": down,
        "by_tier": [(name, now[name], then[name]) for name in names],
    }


def _simulate_checkout(db: Session, fields: dict[str, str]) -> dict[str, Any]:
    currency = _currency(db)
    stored = configuration.current(db, "checkout").document
    try:
        draft = configuration.parse_checkout_policy(forms.checkout_from_form(stored, fields))
    except FormInvalid as invalid:
        return {"invalid": invalid.errors}
    except Problem as problem:
        return {"invalid": forms.checkout_errors(problem)}
    saved = configuration.parse_checkout_policy(stored)
    text = fields.get("sample_amount", "").strip() or "0"
    try:
        basket = typed_money(text, currency)
    except ValueError as unreadable:
        return {"error": f"Give the basket: {unreadable}"}
    value = ledger.get_program(db).point_value_minor_per_100
    db.rollback()

    def caps(policy: configuration.CheckoutPolicy) -> dict[str, int]:
        points_minor = basket * policy.max_points_payment_percent // 100
        return {
            "discount": basket * policy.max_line_discount_percent // 100,
            "points_minor": points_minor,
            "points": points_minor * 100 // value if value else 0,
        }

    return {"basket": basket, "draft": caps(draft), "saved": caps(saved), "point_value": value}


# --- advanced: the documents as JSON --------------------------------------------------------


def _advanced(
    request: Request,
    db: Session,
    user: Any,
    *,
    drafts: dict[str, str] | None = None,
    notes: dict[str, str] | None = None,
    errors: dict[str, list[dict[str, Any]]] | None = None,
    message: str = "",
    simulation: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    versions = {kind: configuration.current(db, kind) for kind in KINDS}  # type: ignore[arg-type]
    documents = {
        kind: (drafts or {}).get(kind) or json.dumps(version.document, indent=2)
        for kind, version in versions.items()
    }
    return render(
        request,
        "loyalty/program_advanced.html",
        {
            "user": user,
            "kinds": KINDS,
            "versions": versions,
            "documents": documents,
            # the note typed with a draft the page refused, shown again with it
            "notes": notes or {},
            "histories": {kind: configuration.history(db, kind, limit=5) for kind in KINDS},  # type: ignore[arg-type]
            "errors": errors or {},
            # Categories the saved rules name that no product is in: kept, but flagged.
            "warnings": {
                "rules": catalog.category_warnings(
                    db, named=named_categories(parse_rule_set(versions["rules"].document))
                )
            },
            "message": message,
            "simulation": simulation,
        },
        status_code=status_code,
    )


@router.get("/program/advanced", response_class=HTMLResponse)
def advanced_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return _advanced(request, db, user)


@router.post("/program/{kind}", response_class=HTMLResponse, dependencies=[CsrfChecked])
def save_program(
    request: Request,
    kind: str,
    db: DbSession,
    user: CurrentAdmin,
    document: Annotated[str, Form(max_length=200_000)],
    note: Annotated[str, Form(max_length=500)] = "",
) -> HTMLResponse:
    if kind not in KINDS:
        return _advanced(request, db, user, message=f"Unknown part {kind!r}", status_code=404)
    try:
        parsed = json.loads(document)
    except json.JSONDecodeError as error:
        problem = [{"field": "document", "message": f"Not JSON: {error}"}]
        return _advanced(
            request,
            db,
            user,
            drafts={kind: document},
            notes={kind: note},
            errors={kind: problem},
            status_code=422,
        )
    try:
        saved = configuration.save(db, kind, parsed, changed_by=user.email, note=note)  # type: ignore[arg-type]
    except Problem as problem:
        found = problem.errors or [{"field": problem.field, "message": problem.detail}]
        return _advanced(
            request,
            db,
            user,
            drafts={kind: document},
            notes={kind: note},
            errors={kind: found},
            status_code=422,
        )
    return _advanced(request, db, user, message=f"{KINDS[kind]}: version {saved.id} saved")


@router.post("/simulate", response_class=HTMLResponse, dependencies=[CsrfChecked])
def simulate(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    lines: Annotated[str, Form(max_length=10_000)] = "",
    channel: Annotated[str, Form(max_length=20)] = "web",
    customer_id: Annotated[str, Form(max_length=40)] = "",
    event: Annotated[str, Form(max_length=40)] = "order_placed",
    field: Annotated[str, Form(max_length=60)] = "",
) -> HTMLResponse:
    """Try the saved rules on an order ("SKU quantity price" per line) or an event."""
    member_id = customer_id.strip() or "simulated-customer"
    at = clock.now()
    try:
        if event == "order_placed":
            raw = [
                _line(number, text)
                for number, text in enumerate(lines.splitlines(), 1)
                if text.strip()
            ]
            if not raw:
                raise ValueError("Give at least one line: SKU quantity unit-price-in-minor-units")
            fact = Fact(
                kind="order_placed",
                customer_id=member_id,
                occurred_at=at,
                channel=channel,
                order_id="simulated",
                lines=earning_awards.order_lines(db, raw),
                total_minor=sum(line["quantity"] * line["unit_price_minor"] for line in raw),
                program_currency=_currency(db),
            )
        else:
            if event not in EVENT_FACTS:
                raise ValueError(f"Unknown kind of event {event!r}")
            fact = Fact(
                kind=EVENT_FACTS[event],
                customer_id=member_id,
                occurred_at=at,
                order_id="simulated",
                preference_field=field.strip() or None,
                review_id="simulated",
            )
    except ValueError as error:
        return _advanced(request, db, user, simulation={"error": str(error)}, status_code=422)
    _version, rules = configuration.rule_set(db, at=at)
    member = earning_awards.member_context(db, rules, fact)
    decisions = evaluate(rules, fact, member)
    db.rollback()
    return _advanced(
        request,
        db,
        user,
        simulation={
            "decisions": decisions,
            "points": sum(d.points for d in decisions if d.fired),
            "tier": member.tier,
            "lines": lines,
            "event": event,
        },
    )


def _line(number: int, text: str) -> dict[str, Any]:
    parts = text.split()
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise ValueError(
            f"Line {number}: write 'SKU quantity unit-price-in-minor-units', e.g. 'W-1 2 1200'"
        )
    return {
        "line_no": number,
        "sku": parts[0],
        "quantity": int(parts[1]),
        "unit_price_minor": int(parts[2]),
    }
