"""Admin pages for measured experience: the CX dashboard (NPS, CSAT and CES trends with
intervals, breakdowns, targets and alerts, moments of truth, comment themes), the review
moderation queue and the ticket queue with SLA clocks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from rapport.feedback import service
from rapport.feedback.scores.arithmetic import Score
from rapport.platform import clock
from rapport.platform.admin import CsrfChecked, CurrentAdmin, NavItem, add_template_dir, render
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem

add_template_dir(Path(__file__).parent / "templates")

NAV = [NavItem("Scores and feedback", "/admin/feedback", "Experience")]
router = APIRouter(prefix="/admin/feedback", include_in_schema=False)

KIND_NAMES = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}


def _trend_chart(kind: str, rows: list[service.Keyed]) -> dict[str, Any]:
    """A Chart.js line chart of the score with its 95% interval as a shaded band."""

    def series(values: list[float | None]) -> list[float | None]:
        return [round(v, 1) if v is not None else None for v in values]

    return {
        "type": "line",
        "data": {
            "labels": [r.key for r in rows],
            "datasets": [
                {
                    "label": "95% low",
                    "data": series([r.score.low for r in rows]),
                    "borderWidth": 0,
                    "pointRadius": 0,
                    "fill": False,
                },
                {
                    "label": "95% high",
                    "data": series([r.score.high for r in rows]),
                    "borderWidth": 0,
                    "pointRadius": 0,
                    "backgroundColor": "rgba(47, 91, 234, 0.15)",
                    "fill": "-1",
                },
                {
                    "label": KIND_NAMES[kind],
                    "data": series([r.score.value for r in rows]),
                    "borderColor": "#2f5bea",
                    "fill": False,
                },
            ],
        },
        "options": {"plugins": {"legend": {"display": False}}, "animation": False},
    }


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
    since = now - timedelta(days=365)
    kinds = []
    charts = {}
    for kind in ("nps", "csat", "ces"):
        rows = service.trend(db, kind=kind, period=period, since=since)
        charts[f"trend-{kind}"] = _trend_chart(kind, rows)
        kinds.append(
            {
                "kind": kind,
                "name": KIND_NAMES[kind],
                "overall": service.overall_score(db, kind=kind, since=now - timedelta(days=90)),
                "trend": rows,
                "breakdown": service.scores_by(
                    db, kind=kind, by=by, since=now - timedelta(days=90)
                )[:12],
            }
        )
    themes = service.comment_themes(db, since=now - timedelta(days=92), per_period=6)
    return render(
        request,
        "feedback/dashboard.html",
        {
            "user": user,
            "kinds": kinds,
            "charts": charts,
            "by": by,
            "period": period,
            "breakdowns": service.BREAKDOWNS,
            "targets": service.target_status(db),
            "alerts": service.recent_alerts(db, limit=10),
            "moments": service.moments(db, kind="nps", since=since),
            "themes": themes,
            "fmt": fmt,
            "reviews": service.count_reviews(db),
            "tickets": service.ticket_counts(db),
        },
    )


@router.get("/reviews", response_class=HTMLResponse)
def moderation_page(
    request: Request, db: DbSession, user: CurrentAdmin, message: str | None = None
) -> HTMLResponse:
    return render(
        request,
        "feedback/moderation.html",
        {"user": user, "queue": service.moderation_queue(db, limit=200), "message": message},
    )


@router.post("/reviews/{review_id}", dependencies=[CsrfChecked])
def moderate(
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
    return RedirectResponse(f"/admin/feedback/reviews?message={message}", status_code=303)


@router.get("/tickets", response_class=HTMLResponse)
def ticket_page(
    request: Request, db: DbSession, user: CurrentAdmin, message: str | None = None
) -> HTMLResponse:
    now = clock.now()
    rows = []
    for ticket in service.ticket_queue(db, limit=200):
        left = clock.as_utc(ticket.sla_due_at) - now
        hours = left.total_seconds() / 3600
        rows.append(
            {
                "ticket": ticket,
                "overdue": hours < 0,
                "clock": f"{'overdue ' if hours < 0 else ''}{abs(hours):.1f} h",
            }
        )
    return render(
        request,
        "feedback/tickets.html",
        {
            "user": user,
            "rows": rows,
            "sla": service.sla_report(db, since=now - timedelta(days=90)),
            "message": message,
        },
    )


@router.post("/tickets/{ticket_id}/resolve", dependencies=[CsrfChecked])
def resolve(
    ticket_id: str,
    db: DbSession,
    user: CurrentAdmin,
    resolution: Annotated[str, Form()],
    apology_points: Annotated[int, Form()] = 0,
) -> RedirectResponse:
    try:
        ticket = service.resolve_ticket(
            db,
            ticket_id=ticket_id,
            resolution=resolution.strip() or "Resolved",
            resolved_by=user.email,
            apology_points=max(apology_points, 0),
        )
        message = f"Ticket {ticket.ticket_id} resolved"
        if ticket.apology_points:
            message += f" with {ticket.apology_points} apology points"
    except Problem as problem:
        db.rollback()
        message = problem.detail
    return RedirectResponse(f"/admin/feedback/tickets?message={message}", status_code=303)
