"""Admin pages for campaigns' segments (mounted by rapport.campaigns.admin): the list with
member counts; the builder, where conditions are added and removed (htmx) and a live count
with a masked sample follows every change before anything is saved; and a segment's members,
page by page. Forms are CSRF-checked and call the same verbs as the API."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rapport.campaigns.segments.conditions import CONDITION_KINDS, parse_definition
from rapport.campaigns.segments.evaluation import customer_sample, preview_segment
from rapport.campaigns.segments.membership import (
    create_segment,
    get_segment,
    list_segments,
    segment_members,
    update_segment,
)
from rapport.platform.admin import CsrfChecked, CurrentAdmin, FormFields, NavItem, render
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput, Problem

NAV: list[NavItem] = [NavItem("Segments", "/admin/segments")]
router = APIRouter(include_in_schema=False)

MEMBERS_PAGE = 50
MAX_CONDITIONS_IN_FORM = 20
# What "Add condition" puts in the builder for each kind: a working example to edit.
KIND_TEMPLATES: dict[str, dict[str, Any]] = {
    "trait": {"kind": "trait", "field": "order_count", "op": "gte", "value": 2},
    "consent": {"kind": "consent", "purpose": "marketing_email"},
    "tier": {"kind": "tier", "tiers": ["gold"]},
    "membership": {"kind": "membership"},
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


def _conditions_from_form(fields: dict[str, str]) -> list[str]:
    """The builder's condition rows (each one condition's JSON), in order."""
    rows = []
    for index in range(MAX_CONDITIONS_IN_FORM):
        text = fields.get(f"condition_{index}")
        if text is None:
            continue
        rows.append(text.strip())
    return [row for row in rows if row]


def _definition_from_form(fields: dict[str, str]) -> dict[str, Any]:
    conditions: list[Any] = []
    for index, text in enumerate(_conditions_from_form(fields)):
        try:
            conditions.append(json.loads(text))
        except json.JSONDecodeError as error:
            raise InvalidInput(
                f"conditions[{index}]: not JSON ({error.msg})", field=f"conditions[{index}]"
            ) from None
    return {"match": fields.get("match", "all"), "conditions": conditions}


def _builder_context(
    *, name: str, description: str, match: str, conditions: list[str], segment_id: int | None
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "match": match,
        "conditions": conditions,
        "segment_id": segment_id,
        "kinds": CONDITION_KINDS,
    }


@router.get("/admin/segments", response_class=HTMLResponse)
def segments_page(
    request: Request, db: DbSession, user: CurrentAdmin, message: str = ""
) -> HTMLResponse:
    return render(
        request,
        "campaigns/segments_list.html",
        {"user": user, "segments": list_segments(db, limit=500), "message": message},
    )


@router.get("/admin/segments/new", response_class=HTMLResponse)
def new_segment_page(request: Request, user: CurrentAdmin) -> HTMLResponse:
    context = _builder_context(name="", description="", match="all", conditions=[], segment_id=None)
    return render(request, "campaigns/segments_edit.html", {"user": user, **context})


@router.get("/admin/segments/{segment_id:int}", response_class=HTMLResponse)
def segment_page(
    request: Request,
    segment_id: int,
    db: DbSession,
    user: CurrentAdmin,
    after: str | None = None,
    message: str = "",
) -> HTMLResponse:
    segment = get_segment(db, segment_id=segment_id)
    page = segment_members(db, segment_id=segment_id, after=after, limit=MEMBERS_PAGE + 1)
    more = len(page) > MEMBERS_PAGE
    page = page[:MEMBERS_PAGE]
    definition = segment.definition or {}
    context = _builder_context(
        name=segment.name,
        description=segment.description,
        match=str(definition.get("match", "all")),
        conditions=[json.dumps(c) for c in definition.get("conditions", [])],
        segment_id=segment.id,
    )
    return render(
        request,
        "campaigns/segments_edit.html",
        {
            "user": user,
            **context,
            "segment": segment,
            "members": customer_sample(db, page),
            "next_after": page[-1] if more else None,
            "message": message,
        },
    )


@router.post("/admin/segments/builder", response_class=HTMLResponse, dependencies=[CsrfChecked])
def builder(request: Request, user: CurrentAdmin, fields: FormFields) -> HTMLResponse:
    """Add a condition of a kind, or remove one, and answer the builder again (htmx)."""
    conditions = _conditions_from_form(fields)
    action = fields.get("action", "")
    if action == "add":
        kind = fields.get("add_kind", "")
        if kind in KIND_TEMPLATES and len(conditions) < MAX_CONDITIONS_IN_FORM:
            conditions.append(json.dumps(KIND_TEMPLATES[kind]))
    elif action.startswith("remove:"):
        with contextlib.suppress(ValueError, IndexError):
            del conditions[int(action.removeprefix("remove:"))]
    segment_id = fields.get("segment_id") or None
    context = _builder_context(
        name=fields.get("name", ""),
        description=fields.get("description", ""),
        match=fields.get("match", "all"),
        conditions=conditions,
        segment_id=int(segment_id) if segment_id and segment_id.isdigit() else None,
    )
    return render(request, "campaigns/segments_builder.html", {"user": user, **context})


@router.post("/admin/segments/preview", response_class=HTMLResponse, dependencies=[CsrfChecked])
def preview(
    request: Request, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> HTMLResponse:
    """The live count and a masked sample for the builder's conditions, nothing saved."""
    try:
        definition = parse_definition(_definition_from_form(fields))
        result = preview_segment(db, definition, sample=10)
    except Problem as problem:
        return render(
            request,
            "campaigns/segments_preview.html",
            {"error": problem.detail, "field": problem.field},
        )
    return render(
        request,
        "campaigns/segments_preview.html",
        {"count": result.count, "sample": result.sample, "error": None},
    )


@router.post("/admin/segments/save", dependencies=[CsrfChecked])
def save(db: DbSession, user: CurrentAdmin, fields: FormFields) -> Response:
    segment_id = fields.get("segment_id") or ""
    try:
        definition = _definition_from_form(fields)
        if segment_id.isdigit():
            segment = update_segment(
                db,
                segment_id=int(segment_id),
                name=fields.get("name", ""),
                description=fields.get("description", ""),
                definition=definition,
            )
        else:
            segment = create_segment(
                db,
                name=fields.get("name", ""),
                description=fields.get("description", ""),
                definition=definition,
                created_by=user.email,
            )
    except Problem as problem:
        back = f"/admin/segments/{segment_id}" if segment_id.isdigit() else "/admin/segments"
        return RedirectResponse(f"{back}?{urlencode({'message': problem.detail})}", status_code=303)
    message = f"Saved: {segment.member_count:,} members"
    return RedirectResponse(
        f"/admin/segments/{segment.id}?{urlencode({'message': message})}", status_code=303
    )
