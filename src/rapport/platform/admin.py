"""The admin shell: sign-in, CSRF protection, layout and the overview page.

Domains add pages with their own ``admin.py`` exposing ``router`` and ``NAV`` (label, path);
they render templates that extend ``base.html``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader
from pydantic import BaseModel, ValidationError

from rapport.platform import service
from rapport.platform.db import DbSession
from rapport.platform.errors import invalid_document
from rapport.platform.models import AdminUser

TEMPLATE_DIRS: list[Path] = [Path(__file__).parent / "templates"]
templates = Jinja2Templates(directory=TEMPLATE_DIRS)

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str


NAV: list[NavItem] = [NavItem("Overview", "/admin")]


def add_template_dir(directory: Path) -> None:
    """Let a domain's admin pages find their templates next to the shell's."""
    if directory not in TEMPLATE_DIRS:
        TEMPLATE_DIRS.append(directory)
        templates.env.loader = ChoiceLoader([FileSystemLoader(str(d)) for d in TEMPLATE_DIRS])


def add_nav(items: list[NavItem]) -> None:
    for item in items:
        if item not in NAV:
            NAV.append(item)


class LoginRequired(Exception):
    """Raised by :func:`current_admin`; answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class CsrfFailed(Exception):
    """A state-changing admin request without the session's CSRF token."""


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def verify_csrf(request: Request) -> None:
    """Dependency for every admin POST: the form field or header must match the session."""
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not secrets.compare_digest(str(expected), sent):
        raise CsrfFailed


async def form_fields(request: Request) -> dict[str, str]:
    """The fields a submitted form carried, each with its last value.

    Edit forms put a hidden ``false`` before each checkbox of the same name, so a box the form
    shows but leaves unticked still arrives (as ``false``), while a setting the form does not
    show is absent and so stays as it is (see :func:`form_changes`)."""
    form = await request.form()
    return {name: value for name, value in form.multi_items() if isinstance(value, str)}


FormFields = Annotated[dict[str, str], Depends(form_fields)]


def form_changes(model: type[BaseModel], fields: Mapping[str, str]) -> dict[str, Any]:
    """What a save changes: the fields of ``model`` that the form carried, validated and
    converted; a setting the form did not carry is left out, so it keeps its stored value.
    Raises :class:`~rapport.platform.errors.InvalidInput` naming the field."""
    carried = {name: value for name, value in fields.items() if name in model.model_fields}
    try:
        parsed = model.model_validate(carried)
    except ValidationError as failure:
        raise invalid_document(failure) from None
    return parsed.model_dump(exclude_unset=True)


def current_admin(request: Request, db: DbSession) -> AdminUser:
    user_id = request.session.get("admin_user_id")
    user = service.get_admin_user(db, user_id=user_id) if user_id else None
    if user is None:
        request.session.pop("admin_user_id", None)
        raise LoginRequired(request.url.path)
    return user


CurrentAdmin = Annotated[AdminUser, Depends(current_admin)]
CsrfChecked = Depends(verify_csrf)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render an admin template with the shell's context (nav, CSRF token, signed-in user)."""
    base = {
        "nav": NAV,
        "csrf_token": csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "path": request.url.path,
    }
    return templates.TemplateResponse(
        request, name, {**base, **(context or {})}, status_code=status_code
    )


router = APIRouter(prefix="/admin", include_in_schema=False)


def _safe_next(next_path: str | None) -> str:
    # Only same-site admin paths, so the login form cannot be used as an open redirect.
    if next_path and next_path.startswith("/admin") and not next_path.startswith("//"):
        return next_path
    return "/admin"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse, dependencies=[CsrfChecked])
def login(
    request: Request,
    db: DbSession,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/admin",
) -> Response:
    user = service.authenticate_admin(db, email=email, password=password)
    if user is None:
        return render(
            request,
            "login.html",
            {"next": _safe_next(next), "error": "Wrong email or password.", "email": email},
            status_code=401,
        )
    # A fresh session on sign-in, so a token planted before login is useless afterwards.
    request.session.clear()
    request.session["admin_user_id"] = user.id
    request.session["admin_email"] = user.email
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> RedirectResponse:
    request.session.clear()
    return RedirectResponse("/admin/login", status_code=303)


@router.get("", response_class=HTMLResponse)
def overview(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    from rapport.platform.overview import collect_overview

    return render(request, "overview.html", {"user": user, "overview": collect_overview(db)})
