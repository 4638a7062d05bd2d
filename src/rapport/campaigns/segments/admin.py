"""Admin pages for campaigns' segments (mounted by rapport.campaigns.admin): the list with
member counts; the builder, where each condition is a small form of labelled inputs (made by
segments/forms.py from the condition models), conditions are added and removed (htmx) and a
live count with a masked sample follows every change before anything is saved; and a
segment's members, page by page. Forms are CSRF-checked and save the same JSON definition as
the API."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from rapport.campaigns.segments.conditions import CONDITION_KINDS, parse_definition
from rapport.campaigns.segments.evaluation import customer_sample, preview_segment
from rapport.campaigns.segments.forms import (
    KIND_LABELS,
    MAX_CONDITIONS_IN_FORM,
    MONEY_TRAITS,
    TRAIT_LABELS,
    condition_form,
    conditions_from_form,
    currency_of,
    summary,
    widgets_for,
)
from rapport.campaigns.segments.membership import (
    create_segment,
    get_segment,
    list_segments,
    segment_members,
    update_segment,
)
from rapport.catalog import service as catalog
from rapport.loyalty import service as loyalty
from rapport.platform.admin import CsrfChecked, CurrentAdmin, NavItem, redirect_saying, render
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem

NAV: list[NavItem] = [NavItem("Segments", "/admin/segments", "Campaigns")]
router = APIRouter(include_in_schema=False)

MEMBERS_PAGE = 50
MAX_LISTED_STORES = 200
# What "Add condition" puts in the builder for each kind: a working example to edit.
KIND_TEMPLATES: dict[str, dict[str, Any]] = {
    "trait": {"kind": "trait", "field": "order_count", "op": "gte", "value": 2},
    "consent": {"kind": "consent", "purpose": "marketing_email", "granted": True},
    "tier": {"kind": "tier", "tiers": ["gold"]},
    "membership": {"kind": "membership", "member": True},
    "rfm": {"kind": "rfm", "recency": [4, 5]},
    "predicted_value": {"kind": "predicted_value", "min_minor": 10000},
    "value_tier": {"kind": "value_tier", "tiers": ["top5"]},
    "p_alive": {"kind": "p_alive", "min": 0.5},
    "bought_category": {"kind": "bought_category", "category": "Wine", "days": 90},
    "spent_more_than": {"kind": "spent_more_than", "amount_minor": 10000, "days": 365},
    "event": {"kind": "event", "type": "product_viewed", "min_count": 1, "days": 30},
    "store": {"kind": "store", "store_id": "store-1", "by": "preferred"},
    "near": {"kind": "near", "latitude": 48.8566, "longitude": 2.3522, "radius_km": 50},
}
# A field as problems name it, dotted: ``conditions.1`` or ``conditions.1.days`` (deeper
# parts, ``conditions.1.value.0``, belong to the input ``days`` or ``value``).
_CONDITION_FIELD = re.compile(r"conditions\.(\d+)(?:\.(\w+))?(?:\.|$)")


async def _all_form_fields(request: Request) -> dict[str, list[str]]:
    """Every value of every submitted field (ticks of a list arrive as several values)."""
    form = await request.form()
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(key, []).append(value)
    return fields


AllFormFields = Annotated[dict[str, list[str]], Depends(_all_form_fields)]


def _choices(db: Session) -> dict[str, list[tuple[str, str]]]:
    """The options known only at run time: the stores (when few enough to list), the
    loyalty tiers and the program's currency."""
    choices: dict[str, list[tuple[str, str]]] = {}
    if catalog.count_stores(db) <= MAX_LISTED_STORES:
        stores = catalog.list_stores(db)
        if stores:
            choices["store_id"] = [(s.store_id, f"{s.name} ({s.store_id})") for s in stores]
    with contextlib.suppress(Problem, LookupError):
        tiers = loyalty.tier_policy(db).tiers
        choices["tier.tiers"] = [(t.id, t.name or t.id) for t in tiers]
    # Money conditions are typed in the program's currency.
    with contextlib.suppress(Problem, LookupError):
        currency = loyalty.get_program(db).currency
        choices["currency"] = [(currency, currency)]
    return choices


def _new_condition(kind: str, choices: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, Any]:
    """The example a new condition of ``kind`` starts from, with a real store or tier."""
    condition = dict(KIND_TEMPLATES[kind])
    if kind == "store" and choices.get("store_id"):
        condition["store_id"] = choices["store_id"][0][0]
    if kind == "tier" and choices.get("tier.tiers"):
        condition["tiers"] = [choices["tier.tiers"][-1][0]]
    return condition


def _in_currency(message: str, currency: str) -> str:
    """A money trait's value refused as no number, said as the builder asks for it: an
    amount in the currency (the condition holds minor units, the input takes major ones)."""
    for trait in MONEY_TRAITS:
        if message.endswith(f"{trait} compares with a number"):
            return f"{TRAIT_LABELS[trait]}: an amount in {currency}, such as 12.50"
    return message


def _errors_by_slot(problem: Problem, currency: str) -> dict[str, list[str]]:
    """Each error under the input it names (``c1-days``), or its condition (``c1``), or the
    form (``form``)."""
    details = list(problem.errors or []) or [{"field": problem.field, "message": problem.detail}]
    slots: dict[str, list[str]] = {}
    for detail in details:
        match = _CONDITION_FIELD.match(str(detail.get("field") or ""))
        if match is None:
            slot = "form"
        else:
            slot = f"c{match[1]}-{match[2]}" if match[2] else f"c{match[1]}"
        message = str(detail.get("message") or problem.detail)
        message = _in_currency(message.removeprefix(f"{detail.get('field')}: "), currency)
        slots.setdefault(slot, []).append(message)
    return slots


def _in_words(problem: Problem, fields: Mapping[str, list[str]], currency: str) -> str:
    """The first error naming the condition as the builder numbers it ("Condition 2, Profile
    trait, trait: ..."), the field path kept for reference."""
    match = _CONDITION_FIELD.match(problem.field or "")
    if match is None:
        return problem.detail
    kind = _last(fields, f"c{match[1]}.kind")
    where = f"Condition {int(match[1]) + 1}"
    label = match[2]
    if kind in KIND_LABELS:
        where += f" ({KIND_LABELS[kind]})"
        label = next((w.label for w in widgets_for(kind) if w.name == label), label)
    if label:
        where += f", {label}"
    message = _in_currency(problem.detail.removeprefix(f"{problem.field}: "), currency)
    return f"{where}: {message} [{problem.field}]"


def _builder_context(
    *,
    name: str,
    description: str,
    match: str,
    conditions: Sequence[Any],
    segment_id: int | None,
    choices: Mapping[str, Sequence[tuple[str, str]]],
    as_json: Sequence[int] = (),
    errors: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "match": match,
        "conditions": [
            condition_form(i, c, choices=choices, force_json=i in as_json)
            for i, c in enumerate(conditions)
        ],
        "segment_id": segment_id,
        "kinds": [(kind, KIND_LABELS[kind]) for kind in CONDITION_KINDS],
        "kind_names": CONDITION_KINDS,
        "errors": errors or {},
    }


def _slots(fields: Mapping[str, list[str]]) -> list[str]:
    """Every error slot the builder shows, so a new answer clears the old messages."""
    slots = ["form"]
    for index in range(MAX_CONDITIONS_IN_FORM):
        kind = _last(fields, f"c{index}.kind")
        if f"c{index}.json" in fields:
            slots.append(f"c{index}")
        elif kind in KIND_LABELS:
            slots.append(f"c{index}")
            slots.extend(f"c{index}-{w.name}" for w in widgets_for(kind))
    return slots


@router.get("/admin/segments", response_class=HTMLResponse)
def segments_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return render(
        request,
        "campaigns/segments_list.html",
        {"user": user, "segments": list_segments(db, limit=500)},
    )


def _edit_page(
    request: Request,
    db: Session,
    user: Any,
    context: dict[str, Any],
    *,
    segment_id: int | None,
    message: str = "",
    after: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    extra: dict[str, Any] = {}
    if segment_id is not None:
        segment = get_segment(db, segment_id=segment_id)
        page = segment_members(db, segment_id=segment_id, after=after, limit=MEMBERS_PAGE + 1)
        more = len(page) > MEMBERS_PAGE
        page = page[:MEMBERS_PAGE]
        extra = {
            "segment": segment,
            "members": customer_sample(db, page),
            "next_after": page[-1] if more else None,
        }
    return render(
        request,
        "campaigns/segments_edit.html",
        {"user": user, **context, **extra, "message": message},
        status_code=status_code,
    )


@router.get("/admin/segments/new", response_class=HTMLResponse)
def new_segment_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    context = _builder_context(
        name="",
        description="",
        match="all",
        conditions=[],
        segment_id=None,
        choices=_choices(db),
    )
    return _edit_page(request, db, user, context, segment_id=None)


@router.get("/admin/segments/{segment_id:int}", response_class=HTMLResponse)
def segment_page(
    request: Request,
    segment_id: int,
    db: DbSession,
    user: CurrentAdmin,
    after: str | None = None,
) -> HTMLResponse:
    segment = get_segment(db, segment_id=segment_id)
    definition = segment.definition or {}
    context = _builder_context(
        name=segment.name,
        description=segment.description,
        match=str(definition.get("match", "all")),
        conditions=list(definition.get("conditions", [])),
        segment_id=segment.id,
        choices=_choices(db),
    )
    return _edit_page(request, db, user, context, segment_id=segment.id, after=after)


def _segment_id(fields: Mapping[str, list[str]]) -> int | None:
    text = (fields.get("segment_id") or [""])[-1]
    return int(text) if text.isdigit() else None


def _last(fields: Mapping[str, list[str]], key: str, default: str = "") -> str:
    values = fields.get(key)
    return values[-1] if values else default


@router.post("/admin/segments/builder", response_class=HTMLResponse, dependencies=[CsrfChecked])
def builder(
    request: Request, db: DbSession, user: CurrentAdmin, fields: AllFormFields
) -> HTMLResponse:
    """Add a condition of a kind, remove one, or switch one between its form and its JSON,
    and answer the builder again (htmx)."""
    choices = _choices(db)
    action = _last(fields, "action")
    as_json = [i for i in range(MAX_CONDITIONS_IN_FORM) if f"c{i}.json" in fields]
    errors: dict[str, list[str]] = {}
    try:
        conditions_from_form(fields, choices=choices)
    except Problem as problem:
        errors = _errors_by_slot(problem, currency_of(choices))
    # JSON that does not parse stays as it was typed; the other rows keep what was entered.
    conditions = conditions_from_form(fields, choices=choices, strict=False)
    if action == "add":
        kind = _last(fields, "add_kind")
        if kind in KIND_TEMPLATES and len(conditions) < MAX_CONDITIONS_IN_FORM:
            conditions.append(_new_condition(kind, choices))
    elif action.startswith(("remove:", "json:", "form:")):
        verb, _, number = action.partition(":")
        index = int(number) if number.isdigit() else -1
        if verb == "remove" and 0 <= index < len(conditions):
            del conditions[index]
            as_json = [i if i < index else i - 1 for i in as_json if i != index]
        elif verb == "json":
            as_json.append(index)
        elif verb == "form":
            as_json = [i for i in as_json if i != index]
    context = _builder_context(
        name=_last(fields, "name"),
        description=_last(fields, "description"),
        match=_last(fields, "match", "all"),
        conditions=conditions,
        segment_id=_segment_id(fields),
        choices=choices,
        as_json=as_json,
        errors=errors,
    )
    return render(request, "campaigns/segments_builder.html", {"user": user, **context})


def _definition_from_form(
    fields: Mapping[str, list[str]], choices: Mapping[str, Sequence[tuple[str, str]]]
) -> dict[str, Any]:
    return {
        "match": _last(fields, "match", "all"),
        "conditions": conditions_from_form(fields, choices=choices),
    }


@router.post("/admin/segments/preview", response_class=HTMLResponse, dependencies=[CsrfChecked])
def preview(
    request: Request, db: DbSession, user: CurrentAdmin, fields: AllFormFields
) -> HTMLResponse:
    """The live count and a masked sample for the builder's conditions, nothing saved; each
    condition's summary and each error (next to its input) travel along (htmx out-of-band)."""
    choices = _choices(db)
    summaries: list[tuple[int, str]] = []
    with contextlib.suppress(Problem):
        raw = conditions_from_form(fields, choices=choices)
        summaries = [(i, summary(c, choices=choices)) for i, c in enumerate(raw)]
    context: dict[str, Any] = {"summaries": summaries, "slots": _slots(fields), "errors": {}}
    try:
        definition = parse_definition(_definition_from_form(fields, choices))
        result = preview_segment(db, definition, sample=10)
    except Problem as problem:
        currency = currency_of(choices)
        context |= {
            "error": _in_words(problem, fields, currency),
            "errors": _errors_by_slot(problem, currency),
        }
        return render(request, "campaigns/segments_preview.html", context)
    context |= {"count": result.count, "sample": result.sample, "error": None}
    return render(request, "campaigns/segments_preview.html", context)


@router.post("/admin/segments/save", response_class=HTMLResponse, dependencies=[CsrfChecked])
def save(request: Request, db: DbSession, user: CurrentAdmin, fields: AllFormFields) -> Response:
    """Save the segment (the same JSON definition the API takes). A mistake answers the
    builder again as it was filled in, the error next to its input; nothing is saved."""
    segment_id = _segment_id(fields)
    choices = _choices(db)
    name, description = _last(fields, "name"), _last(fields, "description")
    try:
        definition = _definition_from_form(fields, choices)
        if segment_id is not None:
            segment = update_segment(
                db,
                segment_id=segment_id,
                name=name,
                description=description,
                definition=definition,
            )
        else:
            segment = create_segment(
                db,
                name=name,
                description=description,
                definition=definition,
                created_by=user.email,
            )
    except Problem as problem:
        db.rollback()
        as_json = [i for i in range(MAX_CONDITIONS_IN_FORM) if f"c{i}.json" in fields]
        conditions = conditions_from_form(fields, choices=choices, strict=False)
        context = _builder_context(
            name=name,
            description=description,
            match=_last(fields, "match", "all"),
            conditions=conditions,
            segment_id=segment_id,
            choices=choices,
            as_json=as_json,
            errors=_errors_by_slot(problem, currency_of(choices)),
        )
        return _edit_page(
            request,
            db,
            user,
            context,
            segment_id=segment_id,
            message=f"Not saved. {_in_words(problem, fields, currency_of(choices))}",
            status_code=problem.status,
        )
    return redirect_saying(
        request, f"/admin/segments/{segment.id}", f"Saved: {segment.member_count:,} members"
    )
