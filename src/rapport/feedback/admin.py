"""Admin pages for measured experience: the CX dashboard (NPS, CSAT and CES with intervals,
trends drawn through the chart kit, breakdowns, targets and alerts, moments of truth, comment
themes), the ticket queue (customer, subject and message, channel, priority, age, SLA; filters
and pages) with each ticket's page, review moderation, surveys (``surveys/admin.py``), targets
and action plans (``scores/admin.py``), and the customer 360's Experience panel with its
"open a ticket" action."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from rapport.customers import service as customers
from rapport.feedback import service
from rapport.feedback.models import TICKET_KINDS
from rapport.feedback.schemas import APOLOGY_POINTS_MAX, RESOLUTION_MAX_LENGTH, TicketIn
from rapport.feedback.scores import admin as scores_admin
from rapport.feedback.scores.arithmetic import Score, score_range
from rapport.feedback.surveys import admin as surveys_admin
from rapport.feedback.tickets import MAX_PRIORITY
from rapport.platform import clock
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    CustomerPanel,
    FormFields,
    NavItem,
    add_template_dir,
    redirect_saying,
    render,
    shown_moment,
    whole_number,
)
from rapport.platform.charts import Chart, Series
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem, pinpointed
from rapport.platform.idempotency import run_idempotent
from rapport.platform.paging import PageParams

add_template_dir(Path(__file__).parent / "templates")

NAV = [
    NavItem("Scores and feedback", "/admin/feedback", "Experience"),
    NavItem("Tickets", "/admin/feedback/tickets", "Experience"),
    NavItem("Surveys", "/admin/feedback/surveys", "Experience"),
    NavItem("Targets and action plans", "/admin/feedback/targets", "Experience"),
    NavItem("Review moderation", "/admin/feedback/reviews", "Experience"),
]
CUSTOMER_PANELS = [CustomerPanel("Experience", "/admin/feedback/customers/{customer_id}/panel", 40)]
router = APIRouter(prefix="/admin/feedback", include_in_schema=False)

KIND_NAMES = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}
ISSUE_NAMES = {
    "complaint": "Complaint",
    "delivery_problem": "Delivery problem",
    "return_problem": "Return problem",
    "question": "Question",
}
CHANNELS = ("call_center", "email", "web", "app", "store")
TREND_DAYS = 365


def trend_since(now: datetime) -> datetime:
    """Where the dashboard's trends start: midnight UTC a year ago (as the API's ``since``)."""
    return datetime.combine((now - timedelta(days=TREND_DAYS)).date(), time(), tzinfo=UTC)


def _rounded(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def trend_chart(kind: str, rows: list[service.Keyed]) -> Chart:
    """The score per period with its 95% interval, as the scores API serves it (two
    decimals), on an axis that spans the kind's scale (NPS -100 to 100, CSAT 0 to 100, CES 1
    to 7: a CES axis from 0 would show a score no answer can give)."""
    lowest, highest = score_range(kind)
    return Chart(
        id=f"trend-{kind}",
        kind="line",
        labels=[r.key for r in rows],
        series=[
            Series(KIND_NAMES[kind], [_rounded(r.score.value) for r in rows]),
            Series("95% low", [_rounded(r.score.low) for r in rows], color="#9db2f5"),
            Series("95% high", [_rounded(r.score.high) for r in rows], color="#9db2f5"),
        ],
        unit="score",
        title=f"{KIND_NAMES[kind]} per period",
        label_heading="Period",
        y_min=lowest,
        y_max=highest,
    )


def fmt(score: Score) -> str:
    if score.value is None:
        return "-"
    if score.low is None or score.high is None:
        return f"{score.value:.1f}"
    return f"{score.value:.1f} ({score.low:.1f} to {score.high:.1f})"


@router.get("", response_class=HTMLResponse)
def dashboard(
    request: Request, db: DbSession, user: CurrentAdmin, by: str = "store", period: str = "month"
) -> HTMLResponse:
    by = by if by in service.BREAKDOWNS else "store"
    period = period if period in ("month", "week") else "month"
    now = clock.now()
    since = trend_since(now)
    kinds: list[dict[str, Any]] = []
    breakdown: dict[str, dict[str, Score]] = {}
    for kind in ("nps", "csat", "ces"):
        rows = service.trend(db, kind=kind, period=period, since=since)
        for row in service.scores_by(db, kind=kind, by=by, since=now - timedelta(days=90)):
            breakdown.setdefault(row.key, {})[kind] = row.score
        kinds.append(
            {
                "kind": kind,
                "name": KIND_NAMES[kind],
                "overall": service.overall_score(db, kind=kind, since=now - timedelta(days=90)),
                "chart": trend_chart(kind, rows),
            }
        )
    themes = service.comment_themes(db, since=now - timedelta(days=92), per_period=6)
    return render(
        request,
        "feedback/dashboard.html",
        {
            "user": user,
            "kinds": kinds,
            "by": by,
            "period": period,
            "breakdowns": service.BREAKDOWNS,
            "targets": service.target_status(db),
            "alerts": service.recent_alerts(db, limit=5),
            "moments": service.moments(db, kind="nps", since=since),
            "moments_days": TREND_DAYS,
            "themes": themes[:12],
            "breakdown": sorted(
                breakdown.items(), key=lambda item: -sum(v.n for v in item[1].values())
            )[:15],
            "fmt": fmt,
            "reviews": service.count_reviews(db),
            "tickets": service.ticket_counts(db),
            "overdue": service.find_tickets(db, status="open", breached=True, limit=1)[0],
        },
    )


@router.get("/reviews", response_class=HTMLResponse)
def moderation_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
) -> HTMLResponse:
    paging = paging_request.of(service.count_reviews(db).get("flagged", 0))
    queue = service.moderation_queue(db, limit=paging.offset + paging.per_page)[paging.offset :]
    return render(
        request,
        "feedback/moderation.html",
        {"user": user, "queue": queue, "paging": paging},
    )


@router.post("/reviews/{review_id}", dependencies=[CsrfChecked])
def moderate(
    request: Request,
    review_id: str,
    db: DbSession,
    user: CurrentAdmin,
    decision: Annotated[str, Form()],
) -> RedirectResponse:
    try:
        review = service.moderate_review(
            db, review_id=review_id, decision=decision, moderator=user.email
        )
        message = f"Review {review.review_id} {review.status}"
    except Problem as problem:
        message = problem.detail
    return redirect_saying(request, "/admin/feedback/reviews", message)


# ------------------------------------------------------------------------------- tickets


def _age(opened: datetime, now: datetime) -> str:
    hours = (now - clock.as_utc(opened)).total_seconds() / 3600
    if hours < 48:
        return f"{max(hours, 0):.0f} h"
    return f"{hours / 24:.0f} days"


def _clock(ticket: Any, now: datetime) -> dict[str, Any]:
    """The SLA state of a ticket: due in / overdue by, breached or not."""
    due = clock.as_utc(ticket.sla_due_at)
    if ticket.status != "open":
        late = ticket.breached_at is not None or (
            ticket.resolved_at is not None and clock.as_utc(ticket.resolved_at) > due
        )
        return {"breached": late, "text": "resolved late" if late else "resolved in time"}
    hours = (due - now).total_seconds() / 3600
    if hours < 0:
        return {"breached": True, "text": f"overdue {abs(hours):.1f} h"}
    return {"breached": False, "text": f"due in {hours:.1f} h"}


def _customer_names(db: DbSession, customer_ids: set[str]) -> dict[str, Any]:
    found = {}
    for customer_id in customer_ids:
        customer = customers.get_customer(db, customer_id=customer_id)
        if customer is not None:
            found[customer_id] = customer
    return found


def customer_name(customer: Any | None) -> str:
    if customer is None:
        return ""
    if customer.status == "erased":
        return "(erased)"
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    return name or customer.email or customer.customer_id


def _truncate(text: str, length: int = 120) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


@router.get("/tickets", response_class=HTMLResponse)
def ticket_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    status: str = "open",
    breached: str = "",
    kind: str = "",
    priority: str = "",
    q: str = "",
) -> HTMLResponse:
    now = clock.now()
    status = status if status in ("open", "resolved", "all") else "open"
    kind = kind if kind in TICKET_KINDS else ""
    errors: dict[str, str] = {}
    min_priority = whole_number(priority, low=0, high=MAX_PRIORITY) if priority.strip() else None
    if priority.strip() and min_priority is None:
        # a number no ticket reaches (or none at all) never reaches SQL: the filter says so
        errors["priority"] = (
            f"A whole number from 0 to {MAX_PRIORITY} (the highest priority a ticket has)"
        )
    filters: dict[str, Any] = {
        "status": None if status == "all" else status,
        "breached": {"yes": True, "no": False}.get(breached),
        "kind": kind or None,
        "min_priority": min_priority,
        "text": q.strip() or None,
    }
    total, tickets = 0, []  # type: tuple[int, list[Any]]
    if not errors:  # a filter not understood lists nothing, not everything
        total, _ = service.find_tickets(db, **filters, limit=0, now=now)
    paging = paging_request.of(total)
    if not errors:
        _, tickets = service.find_tickets(
            db, **filters, offset=paging.offset, limit=paging.per_page, now=now
        )
    names = _customer_names(db, {t.customer_id for t in tickets if t.customer_id})
    rows = [
        {
            "ticket": t,
            "customer": names.get(t.customer_id or ""),
            "customer_name": customer_name(names.get(t.customer_id or "")),
            "message": _truncate(t.body),
            "age": _age(t.opened_at, now),
            "sla": _clock(t, now),
        }
        for t in tickets
    ]
    return render(
        request,
        "feedback/tickets.html",
        {
            "user": user,
            "rows": rows,
            "paging": paging,
            "status": status,
            "breached": breached,
            "kind": kind,
            "priority": priority,
            "q": q,
            "issues": ISSUE_NAMES,
            "sla": service.sla_report(db, since=now - timedelta(days=90)),
            "errors": errors,
            "max_priority": MAX_PRIORITY,
        },
        status_code=422 if errors else 200,
    )


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def one_ticket_page(
    request: Request, ticket_id: str, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    return _ticket_page(request, db, user, ticket_id)


def _ticket_page(
    request: Request,
    db: DbSession,
    user: Any,
    ticket_id: str,
    *,
    message: str = "",
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A ticket's page; a refused resolve form comes back in it with its messages at the
    fields and what was typed."""
    ticket = service.get_ticket(db, ticket_id=ticket_id)
    if ticket is None:
        return render(
            request,
            "feedback/ticket.html",
            {"user": user, "ticket": None, "message": f"No ticket {ticket_id!r}"},
            status_code=404,
        )
    customer = (
        customers.get_customer(db, customer_id=ticket.customer_id) if ticket.customer_id else None
    )
    now = clock.now()
    return render(
        request,
        "feedback/ticket.html",
        {
            "user": user,
            "ticket": ticket,
            "customer": customer,
            "customer_name": customer_name(customer),
            "issues": ISSUE_NAMES,
            "age": _age(ticket.opened_at, now),
            "sla": _clock(ticket, now),
            "others": [
                t
                for t in service.customer_tickets(db, customer_id=ticket.customer_id, limit=10)
                if t.ticket_id != ticket.ticket_id
            ]
            if ticket.customer_id
            else [],
            "message": message,
            "errors": errors or {},
            "typed": typed or {},
            "apology_max": APOLOGY_POINTS_MAX,
            "resolution_max": RESOLUTION_MAX_LENGTH,
        },
        status_code=status_code,
    )


def _resolve_errors(typed: dict[str, str]) -> tuple[dict[str, str], int]:
    """What is wrong with the resolve form (by field), and the apology points it asks."""
    errors: dict[str, str] = {}
    resolution = typed["resolution"].strip()
    if not resolution:
        errors["resolution"] = "Reply: write what was done; it is kept on the ticket"
    elif len(resolution) > RESOLUTION_MAX_LENGTH:
        errors["resolution"] = f"Reply: at most {RESOLUTION_MAX_LENGTH:,} characters"
    text = typed["apology_points"]
    points = whole_number(text, low=0, high=APOLOGY_POINTS_MAX) if text.strip() else 0
    if points is None:
        errors["apology_points"] = (
            f"Apology points: a whole number from 0 to {APOLOGY_POINTS_MAX:,}"
        )
    return errors, points or 0


@router.post("/tickets/{ticket_id}/resolve", dependencies=[CsrfChecked])
def resolve(
    request: Request, ticket_id: str, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    """Resolve the ticket with the reply and any apology points (at most what the API
    grants); a refused form comes back with its messages at the fields and what was typed."""
    typed = {name: fields.get(name, "") for name in ("resolution", "apology_points")}
    errors, points = _resolve_errors(typed)
    if errors:
        return _ticket_page(
            request, db, user, ticket_id, errors=errors, typed=typed, status_code=422
        )
    try:
        ticket = service.resolve_ticket(
            db,
            ticket_id=ticket_id,
            resolution=typed["resolution"].strip(),
            resolved_by=user.email,
            apology_points=points,
        )
    except Problem as problem:
        db.rollback()
        field = problem.field if problem.field in typed else None
        if field is None:
            return _ticket_page(
                request, db, user, ticket_id, message=problem.detail, status_code=problem.status
            )
        return _ticket_page(
            request,
            db,
            user,
            ticket_id,
            errors={field: problem.detail},
            typed=typed,
            status_code=422,
        )
    message = f"Ticket {ticket.ticket_id} resolved"
    if ticket.apology_points:
        message += f" with {ticket.apology_points:,} apology points"
    where = (
        f"/admin/feedback/tickets/{ticket_id}"
        if fields.get("back") == "ticket"
        else "/admin/feedback/tickets"
    )
    return redirect_saying(request, where, message)


# ------------------------------------------------------------------ customer 360 panel


@router.get("/customers/{customer_id}/panel", response_class=HTMLResponse)
def customer_panel(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    """The customer's tickets, reviews and survey answers, and a form to open a ticket: an
    HTML fragment the customer 360 page loads with htmx, or a page of its own for a browser
    without JavaScript."""
    return _panel(request, db, customer_id, page=None if _is_htmx(request) else user)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _panel(
    request: Request,
    db: DbSession,
    customer_id: str,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    message: str = "",
    status_code: int = 200,
    page: Any | None = None,
) -> HTMLResponse:
    """The Experience panel, or, with ``page`` (the signed-in admin), the panel as a page in
    the admin shell with a way back to the customer; a refused "open a ticket" form comes back
    in it with its messages at the fields and what was typed."""
    now = clock.now()
    tickets = service.customer_tickets(db, customer_id=customer_id, limit=5)
    reviews = service.customer_reviews(db, customer_id=customer_id, limit=5)
    label = customer_name(customers.get_customer(db, customer_id=customer_id)) or customer_id
    return render(
        request,
        "feedback/customer_experience.html" if page else "feedback/customer_panel.html",
        {
            "user": page,
            "customer_id": customer_id,
            "customer_label": label,
            "tickets": [{"ticket": t, "sla": _clock(t, now)} for t in tickets],
            "reviews": reviews,
            "removed": service.removed_at_request(db, reviews),
            "removed_note": service.REMOVED_AT_REQUEST,
            "responses": service.customer_responses(db, customer_id=customer_id, limit=5),
            "issues": ISSUE_NAMES,
            "channels": CHANNELS,
            # A fresh one-time token per rendering: the same form sent twice opens one ticket.
            "ticket_token": secrets.token_urlsafe(18),
            "errors": errors or {},
            "typed": typed or {},
            "message": message,
        },
        status_code=status_code,
    )


TICKET_FIELDS = ("subject", "body", "kind", "channel")
TICKET_LABELS = {"subject": "Subject", "body": "Message", "kind": "Issue", "channel": "Channel"}


def _ticket_form_errors(typed: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not typed["subject"].strip():
        errors["subject"] = "Subject: write what the ticket is about"
    if typed["kind"] not in ISSUE_NAMES:
        errors["kind"] = "Issue: choose one"
    if typed["channel"] not in CHANNELS:
        errors["channel"] = "Channel: choose one"
    if errors:
        return errors
    try:
        _ticket_in("cus_check", typed)
    except ValidationError as failure:
        for detail in failure.errors(include_url=False, include_input=False):
            loc, reason = pinpointed(detail)
            name = str(loc[0]) if loc else "subject"
            name = "subject" if name not in TICKET_FIELDS else name
            errors.setdefault(name, f"{TICKET_LABELS[name]}: {reason}")
    return errors


def _ticket_in(customer_id: str, typed: dict[str, str]) -> TicketIn:
    return TicketIn(
        customer_id=customer_id,
        kind=typed["kind"],
        channel=typed["channel"],
        subject=typed["subject"].strip(),
        body=typed["body"].strip(),
    )


@router.post("/customers/{customer_id}/tickets", dependencies=[CsrfChecked])
def open_customer_ticket(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    """Open a ticket for the customer from their 360 page, once per form (its one-time token
    is the command's Idempotency-Key: a form sent twice opens one ticket). A refused form
    comes back in the panel with the messages at the fields and what was typed."""
    typed = {name: fields.get(name, "") for name in TICKET_FIELDS}
    typed["kind"] = typed["kind"] or "question"
    typed["channel"] = typed["channel"] or "call_center"
    htmx = _is_htmx(request)

    def refused(errors: dict[str, str]) -> Response:
        # The panel again, 422, with the message at its field and everything typed: swapped
        # in on the customer page (the shell swaps a 422 in, base.html), or as a page of its
        # own for a browser without JavaScript.
        return _panel(
            request,
            db,
            customer_id,
            errors=errors,
            typed=typed,
            status_code=422,
            page=None if htmx else user,
        )

    errors = _ticket_form_errors(typed)
    if errors:
        return refused(errors)
    token = fields.get("token", "").strip()
    if not token:
        return refused({"subject": "This form has expired; open it again"})
    ticket_in = _ticket_in(customer_id, typed)
    try:
        answer = run_idempotent(
            db,
            scope=f"admin.ticket:{user.id}:{customer_id}",
            key=token,
            request_body=ticket_in.model_dump(mode="json"),
            status_code=201,
            execute=lambda hook: service.open_ticket(
                db, ticket=ticket_in, opened_by=user.email, before_commit=hook
            ),
            render=lambda ticket: {
                "ticket_id": ticket.ticket_id,
                "subject": ticket.subject,
                "sla_due_at": clock.as_utc(ticket.sla_due_at).isoformat(),
            },
        )
    except Problem as problem:
        db.rollback()
        field = problem.field if problem.field in TICKET_FIELDS else "subject"
        return refused({field: problem.detail})
    opened = orjson.loads(answer.body)
    if answer.headers.get("idempotent-replayed") == "true":
        message = f"This ticket was opened already (the form was sent twice): {opened['subject']}"
    else:
        due = shown_moment(request, datetime.fromisoformat(opened["sla_due_at"]))
        message = f"Ticket opened: {opened['subject']} (due {due})"
    if htmx:
        return _panel(request, db, customer_id, message=message)
    return redirect_saying(request, f"/admin/customers/{customer_id}", message)


router.include_router(surveys_admin.router)
router.include_router(scores_admin.router)
