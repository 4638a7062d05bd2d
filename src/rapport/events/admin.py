"""Admin page for tracking: the messages refused inside batches (dead letters), by reason."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from rapport.events import dead_letters
from rapport.platform import service as platform
from rapport.platform.admin import CurrentAdmin, NavItem, add_template_dir, render
from rapport.platform.db import DbSession
from rapport.platform.paging import PageParams
from rapport.platform.settings import AppSettings

add_template_dir(Path(__file__).parent / "templates")

NAV = [
    NavItem(
        "Tracking",
        "/admin/events/rejected",
        "Settings",
        "Tracking messages refused at the door, by reason, for the developers of the shop.",
    )
]
router = APIRouter(prefix="/admin/events", include_in_schema=False)


@router.get("/rejected", response_class=HTMLResponse)
def rejected_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    settings: AppSettings,
    paging_request: PageParams,
    reason: str = "",
) -> HTMLResponse:
    reasons = dead_letters.by_reason(db)
    total = sum(found for name, found, _ in reasons if not reason or name == reason)
    paging = paging_request.of(total)
    letters = dead_letters.latest(db, reason=reason or None, limit=paging.offset + paging.per_page)[
        paging.offset :
    ]
    # Each key by its name (revoked ones too): an id says nothing to whoever reads the page.
    key_names = {key.id: key.name for key in platform.list_api_keys(db, include_revoked=True)}
    return render(
        request,
        "events/rejected.html",
        {
            "user": user,
            "reason": reason,
            "reasons": reasons,
            "letters": letters,
            "key_names": key_names,
            "keep": settings.dead_letter_limit,
            "paging": paging,
        },
    )
