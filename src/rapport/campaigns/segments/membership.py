"""Segments as stored objects: create, change, read and delete them; keep their members in
``campaign_segment_members`` (a refresh rewrites only the difference, in SQL); page through
members; and evaluate an audience in batches for a launch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.campaigns.models import Campaign, Segment, SegmentMember
from rapport.campaigns.segments.conditions import SegmentDefinition, parse_definition
from rapport.campaigns.segments.evaluation import keyset_batches, segment_query
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound

MAX_MEMBERS_PAGE = 1000


def _check_name(name: str) -> str:
    cleaned = (name or "").strip()
    if not cleaned:
        raise InvalidInput("A segment needs a name", field="name")
    if len(cleaned) > 200:
        raise InvalidInput("A segment's name has at most 200 characters", field="name")
    return cleaned


def definition_of(segment: Segment) -> SegmentDefinition:
    return parse_definition(segment.definition)


def get_segment(db: Session, *, segment_id: int) -> Segment:
    segment = db.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"No segment {segment_id}", field="segment_id")
    return segment


def list_segments(db: Session, *, after_id: int | None = None, limit: int = 100) -> list[Segment]:
    """Segments by id, ``limit`` at a time, after ``after_id``."""
    query = select(Segment).order_by(Segment.id).limit(max(1, min(limit, 500)))
    if after_id is not None:
        query = query.where(Segment.id > after_id)
    return list(db.scalars(query))


def _name_taken(db: Session, name: str, *, other_than: int | None = None) -> bool:
    query = select(Segment.id).where(Segment.name == name)
    if other_than is not None:
        query = query.where(Segment.id != other_than)
    return db.scalar(query) is not None


def create_segment(
    db: Session,
    *,
    name: str,
    definition: dict[str, Any] | SegmentDefinition,
    description: str = "",
    created_by: str = "",
    refresh: bool = True,
    before_commit: Any = None,
) -> Segment:
    """Validate and store a segment, and fill its members (``refresh``). Commits."""
    cleaned = _check_name(name)
    parsed = parse_definition(definition)
    if _name_taken(db, cleaned):
        raise Conflict(f"A segment named {cleaned!r} exists already", field="name")
    now = clock.now()
    segment = Segment(
        name=cleaned,
        description=description or "",
        definition=parsed.as_json(),
        member_count=0,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    db.add(segment)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict(f"A segment named {cleaned!r} exists already", field="name") from None
    if refresh:
        _rewrite_members(db, segment, parsed, now=now)
    if before_commit is not None:
        before_commit(db, segment)
    db.commit()
    return segment


def update_segment(
    db: Session,
    *,
    segment_id: int,
    name: str | None = None,
    definition: dict[str, Any] | SegmentDefinition | None = None,
    description: str | None = None,
    refresh: bool = True,
) -> Segment:
    """Change what is given (a new definition is validated, then members are refreshed).
    Commits."""
    segment = get_segment(db, segment_id=segment_id)
    parsed = parse_definition(definition) if definition is not None else None
    if name is not None:
        cleaned = _check_name(name)
        if _name_taken(db, cleaned, other_than=segment.id):
            raise Conflict(f"A segment named {cleaned!r} exists already", field="name")
        segment.name = cleaned
    if description is not None:
        segment.description = description
    now = clock.now()
    if parsed is not None:
        segment.definition = parsed.as_json()
        if refresh:
            _rewrite_members(db, segment, parsed, now=now)
    segment.updated_at = now
    db.commit()
    return segment


def delete_segment(db: Session, *, segment_id: int) -> None:
    """Remove a segment and its members. Commits. A segment that a campaign not finished yet
    (any status but sent or cancelled) sends to is refused (409 naming those campaigns): its
    launch would find no audience."""
    segment = get_segment(db, segment_id=segment_id)
    users = list(
        db.execute(
            select(Campaign.id, Campaign.name)
            .where(
                Campaign.segment_id == segment.id,
                Campaign.status.not_in(("sent", "cancelled")),
            )
            .order_by(Campaign.id)
        )
    )
    if users:
        named = ", ".join(f"{name!r} (#{cid})" for cid, name in users)
        raise Conflict(
            f"Segment {segment.name!r} is used by campaign{'s' if len(users) > 1 else ''} "
            f"{named}; pick another segment for {'them' if len(users) > 1 else 'it'} or "
            "cancel them first"
        )
    db.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
    db.delete(segment)
    db.commit()


def _changed(db: Session, statement: Any, *, count: bool) -> int:
    """Run a change; with ``count``, how many rows it changed (RETURNING counts exactly on
    both databases, where a driver's rowcount for INSERT .. SELECT may be -1). A whole
    refresh recounts instead of fetching a row per change."""
    if not count:
        db.execute(statement)
        return 0
    return len(db.execute(statement.returning(literal(1))).all())


def _rewrite_members(
    db: Session,
    segment: Segment,
    definition: SegmentDefinition,
    *,
    now: datetime,
    customer_ids: Sequence[str] | None = None,
) -> tuple[int, int]:
    """Make the stored members match the segment's SQL now (only among ``customer_ids`` when
    given): delete those gone, insert those new, in two statements. Returns (added, removed)
    and keeps ``member_count`` in step. Does not commit."""
    current = segment_query(db, definition, now=now, customer_ids=customer_ids)
    members = cast(Table, SegmentMember.__table__)
    gone = delete(members).where(
        members.c.segment_id == segment.id, members.c.customer_id.not_in(current)
    )
    if customer_ids is not None:
        gone = gone.where(members.c.customer_id.in_(list(customer_ids)))
    removed = _changed(db, gone, count=customer_ids is not None)
    already = select(members.c.customer_id).where(members.c.segment_id == segment.id)
    fresh = current.subquery()
    added_rows = select(
        literal(segment.id), fresh.c[0], literal(now, type_=members.c.added_at.type)
    ).where(fresh.c[0].not_in(already))
    adding = insert(members).from_select(["segment_id", "customer_id", "added_at"], added_rows)
    added = _changed(db, adding, count=customer_ids is not None)
    if customer_ids is None:
        segment.member_count = int(
            db.scalar(
                select(func.count()).select_from(members).where(members.c.segment_id == segment.id)
            )
            or 0
        )
        segment.refreshed_at = now
    else:
        segment.member_count = max(0, (segment.member_count or 0) + int(added) - int(removed))
    return int(added), int(removed)


def refresh_segment(db: Session, *, segment_id: int, commit: bool = True) -> Segment:
    """Re-evaluate the whole segment and store the difference. Commits unless told not to."""
    segment = get_segment(db, segment_id=segment_id)
    _rewrite_members(db, segment, definition_of(segment), now=clock.now())
    if commit:
        db.commit()
    return segment


def refresh_all_segments(db: Session) -> int:
    """Refresh every segment, each in its own transaction. Returns how many."""
    ids = list(db.scalars(select(Segment.id).order_by(Segment.id)))
    db.rollback()
    for segment_id in ids:
        try:
            refresh_segment(db, segment_id=segment_id)
        except NotFound:
            db.rollback()  # deleted meanwhile
    return len(ids)


def refresh_customers(db: Session, *, customer_ids: Sequence[str]) -> int:
    """Re-evaluate every segment for ``customer_ids`` only (their events just arrived), in the
    caller's transaction. Returns how many memberships changed."""
    if not customer_ids:
        return 0
    changed = 0
    now = clock.now()
    wanted = sorted(set(customer_ids))
    for segment in db.scalars(select(Segment).order_by(Segment.id)):
        try:
            definition = definition_of(segment)
        except InvalidInput:
            continue  # a stored definition no longer valid: the admin page says so
        added, removed = _rewrite_members(db, segment, definition, now=now, customer_ids=wanted)
        changed += added + removed
    return changed


def segment_members(
    db: Session, *, segment_id: int, after: str | None = None, limit: int = 100
) -> list[str]:
    """The segment's stored members by customer id, ``limit`` (at most 1000) after
    ``after``."""
    get_segment(db, segment_id=segment_id)
    query = (
        select(SegmentMember.customer_id)
        .where(SegmentMember.segment_id == segment_id)
        .order_by(SegmentMember.customer_id)
        .limit(max(1, min(limit, MAX_MEMBERS_PAGE + 1)))
    )
    if after is not None:
        query = query.where(SegmentMember.customer_id > after)
    return [str(customer_id) for customer_id in db.scalars(query)]


def iter_audience(db: Session, *, segment_id: int, batch: int = 1000) -> Iterator[list[str]]:
    """The segment's customers evaluated now, in customer-id order, ``batch`` per list: the
    stored members are refreshed first (in the caller's transaction), then read in keyset
    pages, so commits between batches are safe."""
    segment = get_segment(db, segment_id=segment_id)
    _rewrite_members(db, segment, definition_of(segment), now=clock.now())
    db.flush()
    members = select(SegmentMember.customer_id).where(SegmentMember.segment_id == segment_id)
    yield from keyset_batches(db, members, batch=max(1, batch))  # type: ignore[arg-type]
