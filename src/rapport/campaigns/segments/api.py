"""API routes for campaigns' segments (mounted by rapport.campaigns.api): create, read, change
and delete segments, preview one without saving (live count and a masked sample), and page
through a segment's members. Reads need the ``read`` scope, changes ``write``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import Field, PlainValidator
from pydantic_core import PydanticCustomError

from rapport.campaigns.models import Segment
from rapport.campaigns.segments.conditions import parse_definition
from rapport.campaigns.segments.evaluation import preview_segment
from rapport.campaigns.segments.membership import (
    MAX_MEMBERS_PAGE,
    create_segment,
    delete_segment,
    get_segment,
    list_segments,
    segment_members,
    update_segment,
)
from rapport.platform.auth import ReadKey, WriteKey
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput, json_pointer
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.schemas import ReadModel, StrictModel

router = APIRouter(tags=["campaigns"])

DEFINITION_EXAMPLE = {
    "match": "all",
    "conditions": [
        {"kind": "consent", "purpose": "marketing_email"},
        {"kind": "bought_category", "category": "Wine", "days": 90},
    ],
}


def _json_object(value: Any) -> dict[str, Any]:
    """Any JSON object: :func:`parse_definition` checks it, control characters included, and
    names each problem at its own field (``definition.conditions.0.category``), where the
    request model's blanket check on free-form JSON would name only ``definition.conditions``."""
    if not isinstance(value, dict):
        raise PydanticCustomError("dict_type", "Input should be a valid dictionary")
    return value


Definition = Annotated[
    dict[str, Any],
    PlainValidator(_json_object, json_schema_input_type=dict[str, Any]),
    Field(
        description="match (all|any) and conditions, each named by kind "
        "(docs/campaigns-segments.md lists every kind)",
        examples=[DEFINITION_EXAMPLE],
    ),
]


class SegmentIn(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    definition: Definition


class SegmentChange(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    definition: Definition | None = None


class PreviewIn(StrictModel):
    definition: Definition
    sample: Annotated[int, Field(ge=0, le=50)] = 10


class SegmentOut(ReadModel):
    id: int
    name: str
    description: str
    definition: dict[str, Any]
    member_count: int
    refreshed_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class SampleMember(ReadModel):
    customer_id: str
    name: str
    email: str | None
    tier: str


class PreviewOut(ReadModel):
    count: int
    sample: list[SampleMember]


class MembersOut(ReadModel):
    segment_id: int
    members: list[str]
    next: str | None = Field(description="Pass as ``after`` for the next page; null at the end")


# Ids in paths stay within the column's range: PostgreSQL refuses a larger integer outright.
SegmentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Segment id")]


def _in_definition(error: InvalidInput) -> InvalidInput:
    """The same problem, its fields named from the request body, dotted as every problem
    names them (``definition.conditions.1.days``), each with where it is and its JSON pointer
    (``/definition/conditions/1/days``)."""
    field = f"definition.{error.field}" if error.field else "definition"
    errors = [
        {
            "field": f"definition.{entry['field']}",
            "location": "body",
            "pointer": "/definition" + str(entry.get("pointer", "")),
            "message": entry["message"],
            "code": entry["code"],
        }
        for entry in (error.errors or [])
    ]
    if not errors and error.field:
        # Refused when evaluated (an unknown store), named by the condition's field alone.
        errors = [
            {
                "field": field,
                "location": "body",
                "pointer": json_pointer(("definition", *error.field.split("."))),
                "message": error.detail,
                "code": "invalid",
            }
        ]
    return InvalidInput(
        f"{field}: {error.detail.split(': ', 1)[-1]}", field=field, errors=errors or None
    )


def _parsed(definition: dict[str, Any]) -> Any:
    try:
        return parse_definition(definition)
    except InvalidInput as error:
        raise _in_definition(error) from None


@contextmanager
def _conditions_named_in_definition() -> Iterator[None]:
    """A condition refused when the segment is evaluated (``conditions.0.store_id``) named
    from the request body as a refused definition is (``definition.conditions.0.store_id``)."""
    try:
        yield
    except InvalidInput as error:
        if error.field is None or error.field.split(".", 1)[0] != "conditions":
            raise
        raise _in_definition(error) from None


def _out(segment: Segment) -> dict[str, Any]:
    return SegmentOut.model_validate(segment).model_dump(mode="json")


@router.post("/v1/segments", status_code=status.HTTP_201_CREATED, response_model=SegmentOut)
def create(
    body: SegmentIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Create a segment from its definition (validated; a bad condition is named, e.g.
    ``definition.conditions.2.days``) and fill its members."""
    definition = _parsed(body.definition)
    with _conditions_named_in_definition():
        return run_idempotent(
            db,
            scope=f"campaigns.segments.create:{key.id}",
            key=idempotency_key,
            request_body=body.model_dump(mode="json"),
            status_code=status.HTTP_201_CREATED,
            execute=lambda hook: create_segment(
                db,
                name=body.name,
                description=body.description,
                definition=definition,
                created_by=key.name,
                before_commit=hook,
            ),
            render=_out,
        )


@router.get("/v1/segments", response_model=list[SegmentOut])
def list_all(
    db: DbSession,
    key: ReadKey,
    after_id: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Segments by id with their member counts, ``limit`` at a time after ``after_id``."""
    return list_segments(db, after_id=after_id, limit=limit)


@router.post("/v1/segments/preview", response_model=PreviewOut)
def preview(body: PreviewIn, db: DbSession, key: ReadKey) -> Any:
    """How many customers a definition holds now and a few of them (masked), without saving."""
    definition = _parsed(body.definition)
    with _conditions_named_in_definition():
        result = preview_segment(db, definition, sample=body.sample)
    return {"count": result.count, "sample": result.sample}


@router.get("/v1/segments/{segment_id}", response_model=SegmentOut)
def read(segment_id: SegmentId, db: DbSession, key: ReadKey) -> Any:
    return get_segment(db, segment_id=segment_id)


@router.put("/v1/segments/{segment_id}", response_model=SegmentOut)
def change(segment_id: SegmentId, body: SegmentChange, db: DbSession, key: WriteKey) -> Any:
    """Change a segment's name, description or definition (members are refreshed)."""
    definition = _parsed(body.definition) if body.definition is not None else None
    with _conditions_named_in_definition():
        return update_segment(
            db,
            segment_id=segment_id,
            name=body.name,
            description=body.description,
            definition=definition,
        )


@router.delete("/v1/segments/{segment_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove(segment_id: SegmentId, db: DbSession, key: WriteKey) -> Response:
    delete_segment(db, segment_id=segment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/segments/{segment_id}/members", response_model=MembersOut)
def members(
    segment_id: SegmentId,
    db: DbSession,
    key: ReadKey,
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_MEMBERS_PAGE)] = 100,
) -> Any:
    """The segment's members (customer ids, in id order) as of its last evaluation, a page at
    a time: pass ``next`` as ``after`` for the following page."""
    page = segment_members(db, segment_id=segment_id, after=after, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return {"segment_id": segment_id, "members": page, "next": page[-1] if more else None}
