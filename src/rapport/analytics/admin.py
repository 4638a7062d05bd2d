"""The admin home page (the business overview) and, under settings, event processing."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from rapport.analytics.service import ACTIVE_DAYS, collect_overview, collect_processing
from rapport.events import service as events
from rapport.platform.admin import CurrentAdmin, NavItem, add_template_dir, render
from rapport.platform.db import DbSession

add_template_dir(Path(__file__).parent / "templates")

# "Overview" leads the shell's own navigation; the processors' lag needs the events domain,
# which the platform's settings pages may not import, so it is analytics' settings page.
NAV: list[NavItem] = [
    NavItem(
        "Event processing",
        "/admin/settings/processing",
        "Settings",
        "Events received and how far each processor has read the log.",
    )
]
router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def overview(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return render(
        request,
        "analytics/overview.html",
        {"user": user, "overview": collect_overview(db), "active_days": ACTIVE_DAYS},
    )


@router.get("/settings/processing", response_class=HTMLResponse)
def processing(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    # A held event waits "behind" itself when a processor it runs after holds it (the
    # triggers after customers.profile): the page names the processor it waits for instead.
    waits_for = {
        proc.name: " and ".join(proc.after) for proc in events.registered_processors() if proc.after
    }
    return render(
        request,
        "analytics/processing.html",
        {"user": user, "processing": collect_processing(db), "waits_for": waits_for},
    )
