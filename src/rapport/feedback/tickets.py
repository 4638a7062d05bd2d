"""Support tickets: priority from the issue, the customer's support level (tier or paid plan)
and value; an SLA due time for every ticket; resolution with apology points through the
loyalty ledger; the queue and the SLA report. A ticket that passes its due time unresolved
logs ``ticket_breached`` once: the scheduled check (:func:`flag_breached_tickets`, every few
minutes) finds open ones; a ticket resolved late before the check saw it logs it at
resolution."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import log_event
from rapport.feedback.events import TicketBreached, TicketOpened, TicketResolved
from rapport.feedback.models import Ticket
from rapport.feedback.named_orders import require_customers_order
from rapport.feedback.personal_data import ERASURE_MODERATOR
from rapport.feedback.schemas import APOLOGY_POINTS_MAX, TicketIn
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.db import read_only
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from rapport.platform.formatting import minor_unit_digits, money
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.ids import new_id

# Base priority by issue, and what the customer's support level and value add.
ISSUE_WEIGHT = {"complaint": 30, "delivery_problem": 30, "return_problem": 20, "question": 10}
LEVEL_WEIGHT = {"standard": 0, "priority": 20, "dedicated": 40}
# First response due within these hours, by issue; better support levels get a fraction.
SLA_HOURS = {"complaint": 24, "delivery_problem": 24, "return_problem": 48, "question": 72}
LEVEL_SLA_FACTOR = {"standard": 1.0, "priority": 0.5, "dedicated": 0.25}
HIGH_VALUE_MAJOR = 500  # spend (in the shop's currency) from which value adds to the priority
# The highest priority a ticket can have: the weightiest issue and support level, full value.
MAX_PRIORITY = max(ISSUE_WEIGHT.values()) + max(LEVEL_WEIGHT.values()) + 4 * 5


def high_value_minor(currency: str) -> int:
    """:data:`HIGH_VALUE_MAJOR` in ``currency``'s minor units (500.00 EUR, ¥500, 500.000 KWD)."""
    return HIGH_VALUE_MAJOR * int(10 ** minor_unit_digits(currency))


def prioritise(
    kind: str, support_level: str, value_minor: int, currency: str
) -> tuple[int, list[str]]:
    """The ticket's priority (higher first) and why; ``value_minor`` is the customer's value in
    minor units of ``currency`` (the shop's)."""
    reasons = [f"{kind.replace('_', ' ')} +{ISSUE_WEIGHT[kind]}"]
    priority = ISSUE_WEIGHT[kind]
    level = LEVEL_WEIGHT.get(support_level, 0)
    if level:
        priority += level
        reasons.append(f"{support_level} support +{level}")
    value_points = min(value_minor // high_value_minor(currency), 4) * 5
    if value_points:
        priority += value_points
        reasons.append(f"customer value {money(value_minor, currency)} +{value_points}")
    return priority, reasons


def sla_due(kind: str, support_level: str, opened_at: datetime) -> datetime:
    """When the ticket is due: every ticket has a due time, better tiers sooner."""
    hours = SLA_HOURS[kind] * LEVEL_SLA_FACTOR.get(support_level, 1.0)
    return opened_at + timedelta(hours=hours)


def customer_value(db: Session, *, customer_id: str, currency: str) -> int:
    """What the customer has spent in ``currency`` (the shop's), in its minor units: orders
    not cancelled among the latest 500; orders in another currency are left out, as loyalty
    leaves them out of points."""
    return sum(
        o.total_minor
        for o in orders.customer_orders(db, customer_id=customer_id, limit=500)
        if o.status != "cancelled" and o.currency == currency
    )


def open_ticket(
    db: Session,
    *,
    ticket: TicketIn,
    response_id: str | None = None,
    opened_at: datetime | None = None,
    opened_by: str | None = None,
    commit: bool = True,
    before_commit: BeforeCommit | None = None,
) -> Ticket:
    """Open a ticket: its priority comes from the issue, the customer's support level (their
    tier or paid plan) and their value; its SLA due time from the issue and support level.
    An ``order_id`` is one of the customer's orders (a guest order for a ticket without a
    customer), else ``422`` naming it (:mod:`rapport.feedback.named_orders`, as for answers and
    reviews); a detractor's ticket (``response_id``) keeps the order its answer names, checked
    when the answer was recorded. ``opened_by`` is who opened it (an admin user's login,
    ``api:<key name>``; None for a survey's detractor ticket)."""
    now = opened_at or clock.now()
    tier, level, value = None, "standard", 0
    currency = loyalty.get_program(db).currency  # the shop's: the value is counted in it
    if ticket.customer_id is not None:
        customers.require_customer(db, ticket.customer_id)
    if ticket.order_id is not None and response_id is None:
        require_customers_order(db, order_id=ticket.order_id, customer_id=ticket.customer_id)
    if ticket.customer_id is not None:
        benefits = loyalty.member_benefits(db, customer_id=ticket.customer_id)
        tier, level = benefits.tier_id, benefits.support_priority
        value = customer_value(db, customer_id=ticket.customer_id, currency=currency)
    priority, reasons = prioritise(ticket.kind, level, value, currency)
    row = Ticket(
        ticket_id=new_id("tkt"),
        customer_id=ticket.customer_id,
        order_id=ticket.order_id,
        kind=ticket.kind,
        channel=ticket.channel,
        subject=ticket.subject,
        body=ticket.body,
        status="open",
        priority=priority,
        priority_reasons=reasons,
        tier=tier,
        support_level=level,
        customer_value_minor=min(value, 2**31 - 1),
        customer_value_currency=currency,
        sla_due_at=sla_due(ticket.kind, level, now),
        opened_at=now,
        opened_by=opened_by,
        response_id=response_id,
    )
    db.add(row)
    db.flush()
    log_event(
        db,
        TicketOpened(
            ticket_id=row.ticket_id, kind=row.kind, order_id=row.order_id, priority=priority
        ),
        channel=ticket.channel if ticket.channel != "survey" else "web",
        customer_id=ticket.customer_id,
        occurred_at=now,
    )
    if before_commit is not None:
        before_commit(db, row)
    if commit:
        db.commit()
    return row


def resolve_ticket(
    db: Session,
    *,
    ticket_id: str,
    resolution: str,
    resolved_by: str,
    apology_points: int = 0,
    before_commit: BeforeCommit | None = None,
) -> Ticket:
    """Close a ticket, granting apology points if asked: goodwill
    (``loyalty.give_goodwill``, by ``resolved_by``), counted in the customer's goodwill window;
    the ledger transaction is recorded on the ticket, in the same database transaction. Points
    beyond what the window leaves are refused (409 naming ``apology_points``, saying what is
    left and from when) and the ticket stays open, to be resolved with fewer or none. An
    erased customer's ticket is not resolved (404 "was erased" naming ``ticket_id``):
    nothing is written under an erased person's id, as for publishing their review."""
    ticket = db.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"No ticket {ticket_id!r}", field="ticket_id")
    if ticket.customer_id is not None:
        owner = customers.get_customer(db, customer_id=ticket.customer_id)
        if owner is not None and owner.status == "erased":
            raise customers.was_erased(ticket.customer_id, field="ticket_id")
    if ticket.status != "open":
        raise Conflict("The ticket is already resolved", field="ticket_id")
    if not 0 <= apology_points <= APOLOGY_POINTS_MAX:
        raise InvalidInput(
            f"Apology points are a whole number from 0 to {APOLOGY_POINTS_MAX:,}",
            field="apology_points",
        )
    if apology_points and ticket.customer_id is None:
        raise InvalidInput("Apology points need a customer on the ticket", field="apology_points")
    # Claim the ticket before crediting or logging: of two resolutions at once, the second
    # waits for the first's commit and then finds it resolved (one credit, one event).
    claimed = db.execute(
        update(Ticket)
        .where(Ticket.ticket_id == ticket_id, Ticket.status == "open")
        .values(status="resolved")
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        raise Conflict("The ticket is already resolved", field="ticket_id")
    now = clock.now()
    if apology_points:
        # Goodwill, counted in the customer's window under their account's lock: beyond
        # what the window leaves, 409 naming apology_points and the ticket stays open.
        posted = loyalty.give_goodwill(
            db,
            customer_id=ticket.customer_id or "",
            points=apology_points,
            reason=f"Apology for ticket {ticket.ticket_id}",
            actor=resolved_by,
            commit=False,
            field="apology_points",
        )
        ticket.apology_points = apology_points
        ticket.apology_transaction_id = posted.transaction_id
    if now > clock.as_utc(ticket.sla_due_at) and ticket.breached_at is None:
        _log_breach(db, ticket, now=now, still_open=False)
    ticket.status = "resolved"
    ticket.resolution = resolution
    ticket.resolved_by = resolved_by
    ticket.resolved_at = now
    opened = clock.as_utc(ticket.opened_at)
    log_event(
        db,
        TicketResolved(
            ticket_id=ticket.ticket_id,
            kind=ticket.kind,
            order_id=ticket.order_id,
            resolution_hours=round((now - opened).total_seconds() / 3600, 2),
            within_sla=now <= clock.as_utc(ticket.sla_due_at),
            apology_points=apology_points,
        ),
        channel="call_center",
        customer_id=ticket.customer_id,
        occurred_at=now,
    )
    if before_commit is not None:
        before_commit(db, ticket)
    db.commit()
    return ticket


def _log_breach(db: Session, ticket: Ticket, *, now: datetime, still_open: bool) -> None:
    ticket.breached_at = now
    due = clock.as_utc(ticket.sla_due_at)
    log_event(
        db,
        TicketBreached(
            ticket_id=ticket.ticket_id,
            kind=ticket.kind,
            order_id=ticket.order_id,
            priority=ticket.priority,
            support_level=ticket.support_level,
            sla_due_at=due.isoformat(),
            open=still_open,
        ),
        channel="call_center",
        customer_id=ticket.customer_id,
        occurred_at=due,
    )


BREACH_PAGE = 200


def flag_breached_tickets(db: Session, *, now: datetime | None = None) -> int:
    """Log ``ticket_breached`` for every open ticket past its due time not flagged yet, a
    page at a time (each page commits); returns how many were flagged. An erased customer's
    ticket is marked breached without an event: nothing is logged under an erased id."""
    at = now or clock.now()
    overdue = (
        Ticket.status == "open",
        Ticket.breached_at.is_(None),
        Ticket.sla_due_at < at,
    )
    # A plain read first: a check that finds nothing must not take SQLite's write turn.
    began_here = not db.in_transaction()
    if began_here:
        read_only(db)
    nothing = db.scalar(select(Ticket.ticket_id).where(*overdue).limit(1)) is None
    if began_here:
        db.commit()
    if nothing:
        return 0
    flagged = 0
    while True:
        due = list(
            db.scalars(
                select(Ticket)
                .where(*overdue)
                .order_by(Ticket.sla_due_at, Ticket.ticket_id)
                .limit(BREACH_PAGE)
            )
        )
        erased = customers.erased_among(db, {t.customer_id for t in due if t.customer_id})
        for ticket in due:
            if ticket.customer_id in erased:
                # Marked, so it is not found again, but nothing is logged under the erased id
                # (their open tickets close with the erasure; one an earlier version left).
                ticket.breached_at = at
                continue
            _log_breach(db, ticket, now=at, still_open=True)
        db.commit()
        flagged += len(due)
        if len(due) < BREACH_PAGE:
            return flagged


def get_ticket(db: Session, *, ticket_id: str) -> Ticket | None:
    return db.get(Ticket, ticket_id)


def ticket_queue(db: Session, *, limit: int = 100) -> list[Ticket]:
    """Open tickets, most urgent first: priority, then the earliest SLA due time."""
    return list(
        db.scalars(
            select(Ticket)
            .where(Ticket.status == "open")
            .order_by(Ticket.priority.desc(), Ticket.sla_due_at, Ticket.ticket_id)
            .limit(limit)
        )
    )


@dataclass(frozen=True, slots=True)
class SlaLine:
    key: str
    tickets: int
    resolved: int
    resolved_in_time: int
    breached: int  # resolved late, or open past due
    open_overdue: int


def sla_report(
    db: Session, *, since: datetime | None = None, now: datetime | None = None
) -> list[SlaLine]:
    """SLA breaches per issue and support level, for tickets opened since ``since``. Tickets
    an erasure closed are left out: nobody resolved them, in time or late."""
    at = now or clock.now()
    query = select(Ticket).where(
        or_(Ticket.resolved_by.is_(None), Ticket.resolved_by != ERASURE_MODERATOR)
    )
    if since is not None:
        query = query.where(Ticket.opened_at >= since)
    lines: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for ticket in db.scalars(query):
        due = clock.as_utc(ticket.sla_due_at)
        key = f"{ticket.kind} / {ticket.support_level}"
        line = lines[key]
        line[0] += 1
        if ticket.resolved_at is not None:
            line[1] += 1
            if clock.as_utc(ticket.resolved_at) <= due:
                line[2] += 1
            else:
                line[3] += 1
        elif at > due:
            line[3] += 1
            line[4] += 1
    return [SlaLine(key, *values) for key, values in sorted(lines.items())]


def ticket_counts(db: Session) -> dict[str, int]:
    rows = db.execute(select(Ticket.status, func.count()).group_by(Ticket.status)).all()
    return {str(status): int(count) for status, count in rows}


def _ticket_filters(
    *,
    status: str | None,
    breached: bool | None,
    kind: str | None,
    min_priority: int | None,
    customer_ids: list[str] | None,
    text: str | None,
    now: datetime,
) -> list[Any]:
    where: list[Any] = []
    if status:
        where.append(Ticket.status == status)
    if breached is True:
        where.append(
            or_(
                Ticket.breached_at.is_not(None),
                and_(Ticket.status == "open", Ticket.sla_due_at < now),
            )
        )
    elif breached is False:
        where.append(Ticket.breached_at.is_(None))
        where.append(or_(Ticket.status != "open", Ticket.sla_due_at >= now))
    if kind:
        where.append(Ticket.kind == kind)
    if min_priority is not None:
        where.append(Ticket.priority >= min_priority)
    if text:
        like = f"%{text.lower()}%"
        matches = [
            func.lower(Ticket.subject).like(like),
            func.lower(Ticket.body).like(like),
            Ticket.ticket_id == text,
            Ticket.order_id == text,
        ]
        if customer_ids:
            matches.append(Ticket.customer_id.in_(customer_ids))
        where.append(or_(*matches))
    return where


def find_tickets(
    db: Session,
    *,
    status: str | None = "open",
    breached: bool | None = None,
    kind: str | None = None,
    min_priority: int | None = None,
    text: str | None = None,
    offset: int = 0,
    limit: int = 50,
    now: datetime | None = None,
) -> tuple[int, list[Ticket]]:
    """A page of tickets (open ones most urgent first, others newest first) and how many
    match: by status, breached or not (past due while open counts), issue, a lowest
    priority, and text (subject, message, ticket or order id, the customer's name or email)."""
    at = now or clock.now()
    customer_ids = (
        [c.customer_id for c in customers.search_customers(db, query=text, limit=200)]
        if text
        else None
    )
    where = _ticket_filters(
        status=status,
        breached=breached,
        kind=kind,
        min_priority=min_priority,
        customer_ids=customer_ids,
        text=text,
        now=at,
    )
    total = int(db.scalar(select(func.count()).select_from(Ticket).where(*where)) or 0)
    order = (
        (Ticket.priority.desc(), Ticket.sla_due_at, Ticket.ticket_id)
        if status == "open"
        else (Ticket.opened_at.desc(), Ticket.ticket_id)
    )
    rows = list(
        db.scalars(select(Ticket).where(*where).order_by(*order).offset(offset).limit(limit))
    )
    return total, rows


def customer_tickets(db: Session, *, customer_id: str, limit: int = 20) -> list[Ticket]:
    """A customer's tickets, newest first."""
    return list(
        db.scalars(
            select(Ticket)
            .where(Ticket.customer_id == customer_id)
            .order_by(Ticket.opened_at.desc(), Ticket.ticket_id)
            .limit(limit)
        )
    )
