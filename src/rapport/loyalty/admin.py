"""Admin pages for the loyalty ledger: the program's liability and settings, and a member's
statement (balance, open lots, debt and every movement)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from rapport.customers import service as customers
from rapport.loyalty import service
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    FormFields,
    NavItem,
    add_template_dir,
    form_changes,
    render,
)
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem

add_template_dir(Path(__file__).parent / "templates")

NAV = [NavItem("Members and points", "/admin/loyalty", "Loyalty")]
router = APIRouter(prefix="/admin/loyalty", include_in_schema=False)
STATEMENT_PAGE = 50


@router.get("", response_class=HTMLResponse)
def liability_page(
    request: Request, db: DbSession, user: CurrentAdmin, q: str = "", message: str = ""
) -> HTMLResponse:
    found = []
    if q:
        for customer in customers.search_customers(db, query=q):
            found.append(
                {
                    "customer": customer,
                    "member": service.get_member(db, customer_id=customer.customer_id),
                }
            )
    return render(
        request,
        "loyalty/overview.html",
        {
            "user": user,
            "q": q,
            "found": found,
            "liability": service.liability(db),
            "program": service.get_program(db),
            "message": message,
        },
    )


class ProgramSettingsForm(BaseModel):
    """The program settings its admin form shows; a save changes only what the form carried
    (the program's name and currency are not on it and stay as they are)."""

    point_value_minor_per_100: int = Field(default=0, ge=0, le=1_000_000)
    expiry_months: int = Field(default=24, ge=1, le=120)
    allow_debt: bool = False


@router.post("/program", dependencies=[CsrfChecked])
def update_program(db: DbSession, user: CurrentAdmin, fields: FormFields) -> Response:
    try:
        service.configure_program(db, **form_changes(ProgramSettingsForm, fields))
    except Problem as problem:
        return RedirectResponse(
            f"/admin/loyalty?{urlencode({'message': problem.detail})}", status_code=303
        )
    return RedirectResponse("/admin/loyalty?message=Program+settings+saved", status_code=303)


@router.get("/members/{customer_id}", response_class=HTMLResponse)
def member_page(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin, before: int | None = None
) -> HTMLResponse:
    customer = customers.get_customer(db, customer_id=customer_id)
    member = service.get_member(db, customer_id=customer_id)
    movements = service.statement(
        db, customer_id=customer_id, limit=STATEMENT_PAGE + 1, before=before
    )
    return render(
        request,
        "loyalty/member.html",
        {
            "user": user,
            "customer": customer,
            "customer_id": customer_id,
            "member": member,
            "movements": movements[:STATEMENT_PAGE],
            "older": movements[STATEMENT_PAGE - 1].transaction_id
            if len(movements) > STATEMENT_PAGE
            else None,
            "program": service.get_program(db),
        },
        status_code=200 if customer is not None or member is not None else 404,
    )


# Paid membership and announcements pages.
from rapport.loyalty.membership import admin as membership_admin  # noqa: E402

router.include_router(membership_admin.router)
NAV.extend(membership_admin.NAV)

# The rewards catalogue pages (no menu entry of their own: reached from the membership pages).
from rapport.loyalty.rewards import admin as rewards_admin  # noqa: E402

router.include_router(rewards_admin.router)

# The program's configuration (rules, tiers, checkout caps), simulator and tier chart.
from rapport.loyalty.program import admin as program_admin  # noqa: E402

router.include_router(program_admin.router)
NAV.extend(program_admin.NAV)
