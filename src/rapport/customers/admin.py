"""Admin pages for customers: search and the customer 360 (identities, consents, preferences,
traits, timeline), with merge and erasure actions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rapport.customers import service
from rapport.events.service import LoggedEvent
from rapport.flows import privacy
from rapport.platform.admin import CsrfChecked, CurrentAdmin, NavItem, add_template_dir, render
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem

add_template_dir(Path(__file__).parent / "templates")

NAV = [NavItem("Customers", "/admin/customers", "Customers")]
router = APIRouter(prefix="/admin/customers", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def customer_search(
    request: Request, db: DbSession, user: CurrentAdmin, q: str = ""
) -> HTMLResponse:
    results = service.search_customers(db, query=q) if q else service.recent_customers(db, limit=20)
    return render(request, "customers/search.html", {"user": user, "q": q, "results": results})


def _activity_by_month(timeline: list[LoggedEvent]) -> dict[str, dict[str, int]]:
    """Events per month and channel, for the activity chart."""
    counts: Counter[tuple[str, str]] = Counter()
    for event in timeline:
        counts[(event.occurred_at.strftime("%Y-%m"), event.channel)] += 1
    months = sorted({month for month, _ in counts})
    channels = sorted({channel for _, channel in counts})
    return {channel: {month: counts[(month, channel)] for month in months} for channel in channels}


@router.get("/{customer_id}", response_class=HTMLResponse)
def customer_page(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin, message: str = ""
) -> Response:
    customer = service.get_customer(db, customer_id=customer_id)
    if customer is None or customer.status != "active":
        return render(
            request,
            "customers/search.html",
            {
                "user": user,
                "q": customer_id,
                "results": [],
                "error": "No such customer (erased or unknown).",
            },
            status_code=404,
        )
    if customer.customer_id != customer_id:
        return RedirectResponse(f"/admin/customers/{customer.customer_id}", status_code=303)
    profile = service.customer_profile(db, customer_id=customer_id, timeline_limit=200)
    return render(
        request,
        "customers/detail.html",
        {
            "user": user,
            "profile": profile,
            "customer": customer,
            "activity": _activity_by_month(profile["timeline"]),
            "message": message,
        },
    )


@router.post("/{customer_id}/merge", dependencies=[CsrfChecked])
def merge_into(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: CurrentAdmin,
    source_customer_id: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "duplicate profile",
) -> Response:
    try:
        service.merge_customers(
            db,
            source_customer_id=source_customer_id.strip(),
            target_customer_id=customer_id,
            reason=reason,
            actor=user.email,
        )
    except Problem as problem:
        return RedirectResponse(
            f"/admin/customers/{customer_id}?message={problem.detail}", status_code=303
        )
    return RedirectResponse(
        f"/admin/customers/{customer_id}?message=Merged {source_customer_id}", status_code=303
    )


@router.post("/{customer_id}/erase", dependencies=[CsrfChecked])
def erase(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: CurrentAdmin,
    reason: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    if confirm != "ERASE":
        return RedirectResponse(
            f"/admin/customers/{customer_id}?message=Type ERASE to confirm the erasure",
            status_code=303,
        )
    privacy.erase_customer(
        db, customer_id=customer_id, requested_by=user.email, reason=reason or None
    )
    return RedirectResponse(f"/admin/customers?q=&erased={customer_id}", status_code=303)
