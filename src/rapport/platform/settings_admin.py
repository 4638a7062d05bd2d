"""The settings area's own pages: API keys and background jobs (operations, apart from the
business pages). Other domains add their settings pages with ``NavItem(..., "Settings")``.

The pages call the same platform verbs as ``/v1/keys`` and ``rapport keys``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from rapport.platform import clock, jobs, service
from rapport.platform.admin import CsrfChecked, CurrentAdmin, NavItem, redirect_saying, render
from rapport.platform.api import ApiKeyRequest
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem, pinpointed
from rapport.platform.paging import PageParams

NAV: list[NavItem] = [
    NavItem(
        "API keys",
        "/admin/settings/keys",
        "Settings",
        "Keys for shops, apps, tills and tracking SDKs: create, scope, revoke.",
    ),
    NavItem(
        "Background jobs",
        "/admin/settings/jobs",
        "Settings",
        "Imports, training and scheduled work: what is queued, running or failed, and why.",
    ),
]
router = APIRouter(prefix="/admin/settings", include_in_schema=False)

KeyId = Annotated[str, Path(max_length=40)]
SCOPE_HELP = {
    "ingest": "send tracking events (a site's pages, an app, tills)",
    "read": "read customers, points, orders, scores",
    "write": "place orders, earn and redeem points, answer surveys",
    "admin": "everything, including managing keys",
}


def _keys_page(
    request: Request,
    db: DbSession,
    user: Any,
    *,
    created: service.IssuedKey | None = None,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    keys = service.list_api_keys(db, include_revoked=True)
    return render(
        request,
        "settings/keys.html",
        {
            "user": user,
            "keys": sorted(keys, key=lambda key: (key.revoked_at is not None, key.created_at)),
            "states": {key.id: str(service.key_orders_from_tracking(key)) for key in keys},
            "scope_help": SCOPE_HELP,
            "created": created,
            "form": form or {"name": "", "scopes": [], "orders_from_tracking": True},
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return _keys_page(request, db, user)


@router.post("/keys", response_class=HTMLResponse, dependencies=[CsrfChecked])
def create_key(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    name: Annotated[str, Form(max_length=1000)] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    orders_from_tracking: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    """Create a key and show its secret, once (it is not stored)."""
    form = {
        "name": name,
        "scopes": scopes or [],
        "orders_from_tracking": orders_from_tracking,
    }
    errors: dict[str, str] = {}
    try:
        wanted = ApiKeyRequest(
            name=name.strip(), scopes=scopes or [], orders_from_tracking=orders_from_tracking
        )
        issued = service.create_api_key(
            db,
            name=wanted.name,
            scopes=[service.Scope(scope) for scope in wanted.scopes],
            orders_from_tracking=wanted.orders_from_tracking,
        )
    except ValidationError as failure:
        for error in failure.errors():
            loc, message = pinpointed(error)
            where = str(loc[0]) if loc else "name"
            errors.setdefault(where, _message(where, message))
    except Problem as problem:
        errors[problem.field or "name"] = problem.detail
    if errors:
        return _keys_page(request, db, user, form=form, errors=errors, status_code=422)
    return _keys_page(request, db, user, created=issued, status_code=201)


def _message(field: str, pydantic_message: str) -> str:
    if field == "name":
        return "Give the key a name (what it is for), up to 200 characters"
    if field == "scopes":
        return "Tick at least one scope"
    return pydantic_message


@router.get("/keys/{key_id}/revoke", response_class=HTMLResponse)
def confirm_revoke(
    request: Request, db: DbSession, user: CurrentAdmin, key_id: KeyId
) -> HTMLResponse:
    """Ask before revoking: requests with the key are refused from then on."""
    key = service.get_api_key(db, key_id=key_id)
    return render(request, "settings/revoke_key.html", {"user": user, "key": key})


@router.post("/keys/{key_id}/revoke", dependencies=[CsrfChecked])
def revoke_key(
    request: Request, db: DbSession, _user: CurrentAdmin, key_id: KeyId
) -> RedirectResponse:
    key = service.revoke_api_key(db, key_id=key_id)
    return redirect_saying(request, "/admin/settings/keys", f"Key {key.name} ({key.id}) revoked")


@router.post("/keys/{key_id}/orders-from-tracking", dependencies=[CsrfChecked])
def set_orders_from_tracking(
    request: Request,
    db: DbSession,
    _user: CurrentAdmin,
    key_id: KeyId,
    enabled: Annotated[bool, Form()],
) -> RedirectResponse:
    key = service.set_api_key_orders_from_tracking(db, key_id=key_id, enabled=enabled)
    state = service.key_orders_from_tracking(key)
    return redirect_saying(
        request, "/admin/settings/keys", f"Orders from tracking for {key.name}: {state}"
    )


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    status: Annotated[str | None, Query(max_length=20)] = None,
    kind: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    """Counts by status and the jobs, newest first, filtered by status and kind."""
    status = status or None
    kind = kind or None
    total = service.list_jobs(db, status=status, kind=kind, limit=0).total
    paging = paging_request.of(total)
    found = service.list_jobs(
        db, status=status, kind=kind, offset=paging.offset, limit=paging.per_page
    )
    return render(
        request,
        "settings/jobs.html",
        {
            "user": user,
            "counts": jobs.job_counts(db),
            "statuses": service.JOB_STATUSES,
            "kinds": service.job_kinds(db),
            "jobs": found.jobs,
            "now": clock.now(),
            "stale_after_s": jobs.STALE_AFTER.total_seconds(),
            "paging": paging,
            "status": status,
            "kind": kind,
        },
    )
