"""The feedback domain's part of privacy requests (``rapport.flows.privacy``): what it exports
of a person and how it erases them, keeping scores, ratings and ticket times."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.feedback.models import Invitation, Review, SurveyResponse, Ticket
from rapport.platform import clock
from rapport.platform.privacy import ExportedColumns, PrivacySubject

# Who "moderated" a held review that an erasure took out of the queue, and "resolved" an open
# ticket it closed.
ERASURE_MODERATOR = "erasure"
PRIVACY_TABLES = (
    "feedback_invitations",
    "feedback_responses",
    "feedback_reviews",
    "feedback_tickets",
)


# How the export shows each table's rows: every column exported or left out saying why (see
# ``ExportedColumns``; a test holds every column of PRIVACY_TABLES to one or the other).
_THEIR_ID = "the person's own customer id: the document's customer_id (or a profile merged into it)"
_STAFF = "who on the retailer's staff did it (an admin or API key): staff's data, not theirs"
EXPORTED_COLUMNS = {
    e.table: e
    for e in (
        ExportedColumns(
            "feedback_invitations",
            (
                "invitation_id",
                "survey_id",
                "source_key",
                "locale",
                "channel",
                "store_id",
                "order_id",
                "ticket_id",
                "stage",
                "tier",
                "signals",
                "created_at",
                "expires_at",
                "answered_at",
                "withdrawn_at",
            ),
            left_out={"customer_id": _THEIR_ID},
        ),
        ExportedColumns(
            "feedback_responses",
            (
                "response_id",
                "invitation_id",
                "survey_id",
                "kind",
                "score",
                "comment",
                "answers",
                "locale",
                "channel",
                "store_id",
                "order_id",
                "stage",
                "tier",
                "signals",
                "ticket_id",
                "answered_at",
            ),
            left_out={"customer_id": _THEIR_ID},
        ),
        ExportedColumns(
            "feedback_reviews",
            (
                "review_id",
                "sku",
                "order_id",
                "rating",
                "title",
                "body",
                "photos",
                "locale",
                "verified",
                "status",
                "reasons",
                "device_id",
                "address_digest",
                "created_at",
                "moderated_at",
                "rewarded",
            ),
            left_out={
                "customer_id": _THEIR_ID,
                "purchase_key": "the order line reviewed, internal to Rapport (order_id says "
                "which order)",
                "moderated_by": _STAFF,
            },
        ),
        ExportedColumns(
            "feedback_tickets",
            (
                "ticket_id",
                "order_id",
                "response_id",
                "kind",
                "channel",
                "subject",
                "body",
                "status",
                "priority",
                "priority_reasons",
                "tier",
                "support_level",
                "customer_value_minor",
                "customer_value_currency",
                "sla_due_at",
                "breached_at",
                "opened_at",
                "resolved_at",
                "resolution",
                "apology_points",
            ),
            left_out={
                "customer_id": _THEIR_ID,
                "opened_by": _STAFF,
                "resolved_by": _STAFF,
                "apology_transaction_id": "the loyalty journal's row number, internal to "
                "Rapport (the points are under loyalty.transactions)",
            },
        ),
    )
}


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """The person's survey invitations and answers (with comments, and the signals, tier and
    stage they were asked at), reviews and tickets: every column of every table that is about
    them but those ``EXPORTED_COLUMNS`` leaves out, saying why."""
    ids = list(subject.customer_ids)
    shown = EXPORTED_COLUMNS
    return {
        "survey_invitations": [
            shown["feedback_invitations"].row(i)
            for i in db.scalars(
                select(Invitation)
                .where(Invitation.customer_id.in_(ids))
                .order_by(Invitation.created_at)
            )
        ],
        "survey_responses": [
            shown["feedback_responses"].row(r)
            for r in db.scalars(
                select(SurveyResponse)
                .where(SurveyResponse.customer_id.in_(ids))
                .order_by(SurveyResponse.answered_at)
            )
        ],
        "reviews": [
            shown["feedback_reviews"].row(r)
            for r in db.scalars(
                select(Review).where(Review.customer_id.in_(ids)).order_by(Review.created_at)
            )
        ],
        "tickets": [
            shown["feedback_tickets"].row(t)
            for t in db.scalars(
                select(Ticket).where(Ticket.customer_id.in_(ids)).order_by(Ticket.opened_at)
            )
        ],
    }


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    """Scores, ratings and ticket times stay under the random customer id (NPS, rating
    summaries and SLA reports add up); what the person wrote goes: survey comments and
    free-text answers, review titles, texts and photos (and the device and network digests
    kept for screening), ticket subjects, messages and resolutions. Unanswered survey links
    expire now. Reviews still held for moderation leave the queue as ``rejected`` (by
    ``erasure``), and open tickets close as ``resolved`` by ``erasure``: nothing is published,
    resolved or flagged under the person's id any more."""
    ids = list(subject.customer_ids)
    now = clock.now()
    db.execute(
        update(SurveyResponse)
        .where(SurveyResponse.customer_id.in_(ids))
        .values(comment=None, answers={})
    )
    db.execute(
        update(Invitation)
        .where(Invitation.customer_id.in_(ids), Invitation.answered_at.is_(None))
        .where(Invitation.expires_at > now)
        .values(expires_at=now)
    )
    db.execute(
        update(Review)
        .where(Review.customer_id.in_(ids))
        .values(title="", body="", photos=[], device_id=None, address_digest=None)
    )
    db.execute(
        update(Review)
        .where(Review.customer_id.in_(ids), Review.status == "flagged")
        .values(status="rejected", moderated_at=now, moderated_by=ERASURE_MODERATOR)
    )
    db.execute(
        update(Ticket)
        .where(Ticket.customer_id.in_(ids))
        .values(subject="(erased)", body="", resolution=None)
    )
    # Their open tickets close with the erasure (by ``erasure``: no resolution, no points, no
    # event): none waits in the queue for a resolution nobody may write under their id, and
    # none is flagged breached later under it.
    db.execute(
        update(Ticket)
        .where(Ticket.customer_id.in_(ids), Ticket.status == "open")
        .values(status="resolved", resolved_at=now, resolved_by=ERASURE_MODERATOR)
    )


# How many rows of each feedback table with free text one step of an erasure's sweep reads.
SWEEP_PAGE = 500
# A table's cursor once the sweep has read all of it.
SWEPT = "\uffff"


def _texts_of(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts_of(item)


# Each table the sweep reads: the row class, its key, the free-text fields it looks in and what
# they become (as ``erase_customer_data`` leaves the person's own rows).
_SWEPT: tuple[tuple[type[Any], str, tuple[str, ...], dict[str, Any]], ...] = (
    (
        Ticket,
        "ticket_id",
        ("subject", "body", "resolution"),
        {"subject": "(erased)", "body": "", "resolution": None},
    ),
    (Review, "review_id", ("title", "body"), {"title": "", "body": "", "photos": []}),
    (SurveyResponse, "response_id", ("comment", "answers"), {"comment": None, "answers": {}}),
)


def sweep_free_text(
    db: Session,
    *,
    names_person: Callable[[str], bool],
    customer_ids: Iterable[str],
    after: dict[str, str],
    limit: int | None = None,
) -> dict[str, str] | None:
    """One step of an erasure's sweep: the next ``limit`` rows (``SWEEP_PAGE`` by default) of
    tickets, reviews and survey responses after ``after`` (each table's last key read) that
    belong to someone else or no one, and whose free text ``names_person`` (a ticket a visitor
    filed quoting the erased person's email), lose that text as the person's own rows do
    (a ticket's resolution too). Returns the cursor to go on from, or ``None`` when every table
    has been read. Adds to the caller's transaction."""
    limit = limit or SWEEP_PAGE
    theirs = set(customer_ids)
    cursor = dict(after)
    for model, key, fields, erased in _SWEPT:
        table = model.__tablename__
        last = cursor.get(table, "")
        if last == SWEPT:
            continue
        column = getattr(model, key)
        rows = list(db.scalars(select(model).where(column > last).order_by(column).limit(limit)))
        for row in rows:
            if row.customer_id in theirs:
                continue  # the person's own: erased already
            if any(names_person(text) for f in fields for text in _texts_of(getattr(row, f))):
                for name, value in erased.items():
                    setattr(row, name, value)
        cursor[table] = SWEPT if len(rows) < limit else getattr(rows[-1], key)
    db.flush()
    return None if all(cursor.get(m.__tablename__) == SWEPT for m, *_ in _SWEPT) else cursor
