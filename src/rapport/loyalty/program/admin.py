"""Admin pages for the program's configuration: earning rules, tiers and checkout caps, each
edited as validated JSON with its version history; the simulator; the tier distribution and
breakage."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from rapport.catalog import service as catalog
from rapport.loyalty import service as ledger
from rapport.loyalty.earning import awards as earning_awards
from rapport.loyalty.program import versions as configuration
from rapport.loyalty.program.rules import (
    EVENT_FACTS,
    Fact,
    evaluate,
    named_categories,
    parse_rule_set,
)
from rapport.loyalty.tiers.standing import tier_distribution
from rapport.platform import clock
from rapport.platform.admin import CsrfChecked, CurrentAdmin, NavItem, render
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem

NAV = [NavItem("Program and rules", "/admin/loyalty/program", "Loyalty")]
# Included by loyalty.admin, under its /admin/loyalty prefix.
router = APIRouter(include_in_schema=False)

KINDS: dict[str, str] = {
    "rules": "Earning rules",
    "tiers": "Tiers and benefits",
    "checkout": "Checkout caps",
}


def _page(
    request: Request,
    db: DbSession,
    user: Any,
    *,
    drafts: dict[str, str] | None = None,
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
    distribution = tier_distribution(db)
    liability = ledger.liability(db)
    issued = -liability.by_account.get("program:issued", 0)
    expired = liability.by_account.get("program:expired", 0)
    return render(
        request,
        "loyalty/program.html",
        {
            "user": user,
            "kinds": KINDS,
            "versions": versions,
            "documents": documents,
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
            "tiers": {
                "type": "bar",
                "data": {
                    "labels": [name for _, name, _ in distribution],
                    "datasets": [
                        {
                            "label": "Members",
                            "data": [count for _, _, count in distribution],
                            "backgroundColor": "#d4a017",
                        }
                    ],
                },
                "options": {
                    "plugins": {"legend": {"display": False}},
                    "scales": {"y": {"beginAtZero": True}},
                },
            },
            "breakage": {
                "issued": issued,
                "expired": expired,
                "rate": expired / issued if issued else None,
            },
        },
        status_code=status_code,
    )


@router.get("/program", response_class=HTMLResponse)
def program_page(
    request: Request, db: DbSession, user: CurrentAdmin, message: str = ""
) -> HTMLResponse:
    return _page(request, db, user, message=message)


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
        return _page(request, db, user, message=f"Unknown part {kind!r}", status_code=404)
    try:
        parsed = json.loads(document)
    except json.JSONDecodeError as error:
        problem = [{"field": "document", "message": f"Not JSON: {error}"}]
        return _page(
            request, db, user, drafts={kind: document}, errors={kind: problem}, status_code=422
        )
    try:
        saved = configuration.save(db, kind, parsed, changed_by=user.email, note=note)  # type: ignore[arg-type]
    except Problem as problem:
        found = problem.errors or [{"field": problem.field, "message": problem.detail}]
        return _page(
            request, db, user, drafts={kind: document}, errors={kind: found}, status_code=422
        )
    return _page(request, db, user, message=f"{KINDS[kind]}: version {saved.id} saved")


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
                raise ValueError("Give at least one line: SKU quantity unit-price-in-cents")
            fact = Fact(
                kind="order_placed",
                customer_id=member_id,
                occurred_at=at,
                channel=channel,
                order_id="simulated",
                lines=earning_awards.order_lines(db, raw),
                total_minor=sum(line["quantity"] * line["unit_price_minor"] for line in raw),
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
        return _page(request, db, user, simulation={"error": str(error)}, status_code=422)
    _version, rules = configuration.rule_set(db, at=at)
    member = earning_awards.member_context(db, rules, fact)
    decisions = evaluate(rules, fact, member)
    db.rollback()
    return _page(
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
            f"Line {number}: write 'SKU quantity unit-price-in-cents', e.g. 'W-1 2 1200'"
        )
    return {
        "line_no": number,
        "sku": parts[0],
        "quantity": int(parts[1]),
        "unit_price_minor": int(parts[2]),
    }
