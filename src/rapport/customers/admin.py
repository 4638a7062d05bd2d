"""Admin pages for customers: the filterable customer list and the customer 360 (profile,
identities, consents, preferences, traits, activity chart, paginated timeline and the panels
other domains contribute through ``CUSTOMER_PANELS``), with export, merge and erasure."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rapport.customers import service
from rapport.customers.consent import clipped_consent_source
from rapport.customers.listing import (
    CustomerFilters,
    count_listed_customers,
    list_customers,
)
from rapport.customers.models import CONSENT_PURPOSES, Consent
from rapport.customers.profile_view import activity_by_month, count_timeline
from rapport.flows import privacy
from rapport.flows.currency import shown_currency
from rapport.platform.admin import (
    CUSTOMER_PANELS,
    CsrfChecked,
    CurrentAdmin,
    NavItem,
    add_template_dir,
    redirect_saying,
    render,
)
from rapport.platform.charts import Chart, Series
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput, Problem
from rapport.platform.paging import PageParams, PageRequest

add_template_dir(Path(__file__).parent / "templates")

NAV = [NavItem("Customers", "/admin/customers", "Customers")]
router = APIRouter(prefix="/admin/customers", include_in_schema=False)

# Rows a page shows unless the address asks for another number (``per_page``).
LIST_PER_PAGE = 25
TIMELINE_PER_PAGE = 15

# The orders domain's value fragment, shown on the 360 unless it comes as a panel.
VALUE_PANEL_PATH = "/admin/orders/customer/{customer_id}/value"


# What the customer list's address may say: its filters and paging.
LIST_QUERY = frozenset({"q", "purpose", "joined_from", "joined_to", "page", "per_page"})


def _default_per_page(request: Request, asked: PageRequest, per_page: int) -> PageRequest:
    """The page asked for, ``per_page`` rows long unless the address says how many."""
    if "per_page" in request.query_params:
        return asked
    return PageRequest(page=asked.page, per_page=per_page)


def _day_or_none(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


@router.get("", response_class=HTMLResponse)
def customer_list(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    q: str = "",
    purpose: str = "",
    joined_from: str = "",
    joined_to: str = "",
) -> HTMLResponse:
    """Customers, newest first, a page at a time: search, consent and join-date filters."""
    paging_request = _default_per_page(request, paging_request, LIST_PER_PAGE)
    errors: dict[str, str] = {}
    filters = CustomerFilters(
        query=q[:200],
        purpose=purpose if purpose in CONSENT_PURPOSES else "",
        joined_from=_day_or_none(joined_from),
        joined_to=_day_or_none(joined_to),
    )
    if purpose and not filters.purpose:
        errors["purpose"] = f"Not a consent purpose: use one of {', '.join(CONSENT_PURPOSES)}"
    unknown = sorted(set(request.query_params) - LIST_QUERY)
    error = (
        f"Unknown filter {', '.join(unknown)}: this list filters by search (q), consent granted "
        "(purpose), joined_from and joined_to"
        if unknown
        else ""
    )
    for name, text, parsed in (
        ("joined_from", joined_from, filters.joined_from),
        ("joined_to", joined_to, filters.joined_to),
    ):
        if text.strip() and parsed is None:
            errors[name] = "A date such as 2026-03-31"
    if filters.joined_from and filters.joined_to and filters.joined_to < filters.joined_from:
        errors["joined_to"] = "On or after “Joined from”: the dates are the wrong way round"
    refused = bool(errors or error)  # a filter not understood lists nobody, not everyone
    paging = paging_request.of(0 if refused else count_listed_customers(db, filters))
    rows = (
        [] if refused else list_customers(db, filters, offset=paging.offset, limit=paging.per_page)
    )
    filtered = bool(filters.query or filters.purpose or filters.joined_from or filters.joined_to)
    return render(
        request,
        "customers/search.html",
        {
            "user": user,
            "q": q,
            "purpose": filters.purpose,
            "joined_from": joined_from,
            "joined_to": joined_to,
            "purposes": CONSENT_PURPOSES,
            "results": rows,
            "paging": paging,
            "filtered": filtered,
            "errors": errors,
            "error": error,
        },
        status_code=422 if refused else 200,
    )


def activity_chart(activity: dict[str, Any]) -> Chart:
    """The customer's events per month, stacked by channel."""
    return Chart(
        id="activity-chart",
        kind="bar",
        labels=activity["months"],
        series=[Series(channel, counts) for channel, counts in activity["channels"].items()],
        title="Events per month, by channel",
        unit="count",
        stacked=True,
        label_heading="Month",
    )


def _consents_by_purpose(consents: list[Consent]) -> list[dict[str, Any]]:
    """One row per purpose Rapport knows: granted, refused or unknown (never asked)."""
    chosen = {consent.purpose: consent for consent in consents}
    rows = []
    for purpose in CONSENT_PURPOSES:
        found = chosen.get(purpose)
        rows.append(
            {
                "purpose": purpose,
                "state": "unknown" if found is None else "granted" if found.granted else "refused",
                "at": found.updated_at if found else None,
                "source": found.source if found else None,
            }
        )
    return rows


@router.get("/{customer_id}", response_class=HTMLResponse)
def customer_page(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
) -> Response:
    return _customer_page(request, customer_id, db, user, paging_request)


# What the merge, erase and consent forms show before anything is typed.
ACTION_VALUES = {
    "purpose": "",
    "choice": "",
    "told_by": "call_center",
    "source_customer_id": "",
    "merge_reason": "duplicate profile",
    "reason": "",
    "confirm": "",
}


def _customer_page(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: Any,
    paging_request: PageRequest,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The customer's 360; with ``values`` and ``errors``, the merge and erase forms as the
    user sent them, each message beside its field."""
    said = service.gone_notice(db, customer_id)
    if said is not None:
        return render(request, "customers/gone.html", {"user": user, "said": said}, status_code=404)
    customer = service.get_customer(db, customer_id=customer_id)
    assert customer is not None  # an active customer (gone_notice said nothing)
    if customer.customer_id != customer_id:
        return RedirectResponse(f"/admin/customers/{customer.customer_id}", status_code=303)
    paging_request = _default_per_page(request, paging_request, TIMELINE_PER_PAGE)
    paging = paging_request.of(count_timeline(db, customer_id=customer_id))
    profile = service.customer_profile(
        db,
        customer_id=customer_id,
        currency=shown_currency(db),
        timeline_limit=paging.per_page,
        timeline_offset=paging.offset,
    )
    traits = profile["traits"]
    first_seen = traits["first_seen_at"] if traits else None
    since = min(customer.created_at, first_seen) if first_seen else customer.created_at
    numbers = sorted(
        {
            identity.value
            for identity in profile["identities"]
            if identity.kind in ("external_id", "loyalty_card")
        }
        | ({customer.external_id} if customer.external_id else set())
    )
    panels = [
        {
            "title": panel.title,
            "path": panel.path.format(customer_id=customer_id),
            # a panel of wide tables may ask for the whole width (``wide``)
            "wide": bool(getattr(panel, "wide", False)),
        }
        for panel in CUSTOMER_PANELS
    ]
    return render(
        request,
        "customers/detail.html",
        {
            "user": user,
            "profile": profile,
            "customer": customer,
            "since": since,
            "numbers": numbers,
            "consents_by_purpose": _consents_by_purpose(profile["consents"]),
            "consent_choices": CONSENT_CHOICES,
            "told_by": TOLD_BY,
            "activity": activity_chart(activity_by_month(db, customer_id=customer_id)),
            "paging": paging,
            "panels": panels,
            "value_panel": VALUE_PANEL_PATH not in {panel.path for panel in CUSTOMER_PANELS},
            "values": {**ACTION_VALUES, **(values or {})},
            "errors": errors or {},
        },
        status_code=status_code,
    )


def _back(request: Request, customer_id: str, message: str) -> RedirectResponse:
    return redirect_saying(request, f"/admin/customers/{customer_id}", message)


@router.post("/{customer_id}/export", dependencies=[CsrfChecked])
def export(request: Request, customer_id: str, db: DbSession, user: CurrentAdmin) -> Response:
    """Everything Rapport holds on the customer, from every domain, as a JSON download (the
    request is recorded as asked by the signed-in admin)."""
    try:
        document = privacy.export_customer(db, customer_id=customer_id, requested_by=user.email)
    except Problem as problem:
        return _back(request, customer_id, problem.detail)
    body = json.dumps(jsonable_encoder(document), indent=2, ensure_ascii=False)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.json"'},
    )


@router.post("/{customer_id}/merge", dependencies=[CsrfChecked])
def merge_into(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    source_customer_id: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "duplicate profile",
) -> Response:
    source = source_customer_id.strip()
    typed = {"source_customer_id": source_customer_id, "merge_reason": reason}
    said = ""
    if not source:
        said = (
            "Duplicate customer id: paste the cus_… id or the shop's customer number of the "
            "profile to merge into this one"
        )
    elif source == customer_id:
        said = "Duplicate customer id: give another customer's id, not this one's"
    else:
        try:
            # As the API: a merge names the profiles themselves (a merged one is refused).
            source_id = service.resolve_customer_ref(
                db, ref=source, field="source_customer_id", follow_merges=False
            )
            if source_id == customer_id:
                raise InvalidInput(
                    "give another customer's id, not this one's", field="source_customer_id"
                )
            service.merge_customers(
                db,
                source_customer_id=source_id,
                target_customer_id=customer_id,
                reason=reason.strip() or "duplicate profile",
                actor=user.email,
            )
        except Problem as problem:
            db.rollback()
            said = _merge_said(problem, source)
    if said:
        return _customer_page(
            request,
            customer_id,
            db,
            user,
            paging_request,
            values=typed,
            errors={"source_customer_id": said},
            status_code=422,
        )
    return _back(request, customer_id, f"Merged {source}")


def _merge_said(problem: Problem, source: str) -> str:
    """A refused merge, for people, beside the duplicate's id."""
    if problem.status == 404 and problem.field == "source_customer_id":
        if "erased" in problem.detail:
            return f"Duplicate customer id: {source} was erased; there is nothing to merge"
        return (
            f"Duplicate customer id: no customer has the id or customer number {source}; "
            "paste the cus_… id or the shop's customer number"
        )
    if problem.field == "source_customer_id" and problem.status in (409, 422):
        return f"Duplicate customer id: {problem.detail}"
    if problem.status == 409:
        return "Duplicate customer id: only active profiles can be merged"
    return f"Duplicate customer id: not merged ({problem.detail})"


# The consent form: one purpose at a time, granted or withdrawn, and how the customer told
# staff (the channel its ``consent_changed`` event is logged with).
CONSENT_CHOICES = {"grant": "Grant", "withdraw": "Withdraw"}
TOLD_BY = {"call_center": "on the phone", "store": "in a store", "web": "by email or letter"}


def admin_consent_source(email: str) -> str:
    """What the consent history names as the source of a choice staff recorded."""
    return clipped_consent_source(f"admin:{email}")


async def _sent_twice(request: Request) -> set[str]:
    """The form's fields that came with more than one value (``purpose=a&purpose=b``)."""
    names = [name for name, _ in (await request.form()).multi_items()]
    return {name for name in names if names.count(name) > 1}


@router.post("/{customer_id}/consent", dependencies=[CsrfChecked])
def change_consent(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    twice: Annotated[set[str], Depends(_sent_twice)],
    purpose: Annotated[str, Form()] = "",
    choice: Annotated[str, Form()] = "",
    told_by: Annotated[str, Form()] = "call_center",
) -> Response:
    """Grant or withdraw the one purpose the form names, as the customer asked staff (a phone
    call: "stop emailing me"), recorded through the consent verb with the admin as its
    source. Nothing else changes; an erased or unknown customer has no form, and a purpose,
    choice or channel sent twice is refused beside the field (no choice is guessed)."""
    errors: dict[str, str] = {}
    if purpose not in CONSENT_PURPOSES:
        errors["purpose"] = (
            f"Purpose: choose one of {', '.join(CONSENT_PURPOSES)}"
            if purpose
            else "Purpose: choose the purpose the customer asked about"
        )
    if choice not in CONSENT_CHOICES:
        errors["choice"] = "Choice: grant or withdraw"
    if told_by not in TOLD_BY:
        errors["told_by"] = f"Told us: one of {', '.join(TOLD_BY)}"
    for name, label in (("purpose", "Purpose"), ("choice", "Choice"), ("told_by", "Told us")):
        if name in twice:
            errors[name] = f"{label}: sent more than once; choose one"
    said = service.gone_notice(db, customer_id)
    if said is not None:
        return render(request, "customers/gone.html", {"user": user, "said": said}, status_code=404)
    if errors:
        return _customer_page(
            request,
            customer_id,
            db,
            user,
            paging_request,
            values={"purpose": purpose, "choice": choice, "told_by": told_by},
            errors=errors,
            status_code=422,
        )
    customer = service.get_customer(db, customer_id=customer_id)
    assert customer is not None  # an active customer (gone_notice said nothing)
    if customer.customer_id != customer_id:  # merged away since the page was shown
        return redirect_saying(
            request,
            f"/admin/customers/{customer.customer_id}",
            f"Nothing changed: {customer_id} was merged into this profile; change its consent here",
        )
    granted, source = choice == "grant", admin_consent_source(user.email)
    standing = {
        c.purpose: (c.granted, c.source) for c in service.get_consents(db, customer_id=customer_id)
    }
    shown = f"{purpose.replace('_', ' ').capitalize()}: {'granted' if granted else 'withdrawn'}"
    if standing.get(purpose) == (granted, source):  # as set_consent would leave it: no change
        return _back(request, customer_id, f"{shown} already, as from {source}: nothing changed")
    service.set_consent(
        db,
        customer_id=customer_id,
        purpose=purpose,
        granted=granted,
        source=source,
        channel=told_by,
    )
    return _back(request, customer_id, f"{shown}, recorded as from {source}")


CONFIRM_WORD = "ERASE"


@router.post("/{customer_id}/erase", dependencies=[CsrfChecked])
def erase(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    reason: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    if confirm.strip() != CONFIRM_WORD:
        said = (
            f"Confirm erasure: type {CONFIRM_WORD} in capitals to erase this customer"
            if confirm.strip()
            else f"Confirm erasure: type {CONFIRM_WORD} to erase this customer"
        )
        return _customer_page(
            request,
            customer_id,
            db,
            user,
            paging_request,
            values={"reason": reason, "confirm": confirm},
            errors={"confirm": said},
            status_code=422,
        )
    privacy.erase_customer(
        db, customer_id=customer_id, requested_by=user.email, reason=reason or None
    )
    return redirect_saying(request, "/admin/customers", f"Customer {customer_id} was erased.")
