"""The admin home page: the overview of customers, catalog, events, keys and jobs."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from rapport.analytics.service import collect_overview
from rapport.platform.admin import CurrentAdmin, NavItem, add_template_dir, render
from rapport.platform.db import DbSession

add_template_dir(Path(__file__).parent / "templates")

NAV: list[NavItem] = []  # "Overview" leads the shell's own navigation
router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def overview(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return render(
        request, "analytics/overview.html", {"user": user, "overview": collect_overview(db)}
    )
