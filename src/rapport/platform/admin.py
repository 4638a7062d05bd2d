"""The admin shell: sign-in, CSRF protection, layout and the kit every page uses (the
overview page is analytics').

Domains add pages with their own ``admin.py`` exposing ``router`` and ``NAV`` (label, path,
section) and optionally ``CUSTOMER_PANELS`` (what the domain shows on the customer 360 page,
loaded into it by htmx); they render templates that extend ``base.html`` and import
``macros.html`` (pager, chart, form field). Numbers, money and dates go through the
``money``/``number``/``share``/``day``/``moment`` filters (:mod:`rapport.platform.formatting`);
a list edited as text goes through ``list_text`` and back through :func:`typed_list`.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader, pass_context
from jinja2.runtime import Context
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rapport.platform import admin_security, clock, formatting, service
from rapport.platform.db import DbSession
from rapport.platform.errors import Conflict, InvalidInput, invalid_document
from rapport.platform.idempotency import BeforeCommit, run_idempotent
from rapport.platform.models import AdminUser
from rapport.platform.settings import AppSettings, get_settings

TEMPLATE_DIRS: list[Path] = [Path(__file__).parent / "templates"]
templates = Jinja2Templates(directory=TEMPLATE_DIRS)

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


# The navigation's sections, in order: what each person works on, with operations last.
SECTIONS = (
    "Overview",
    "Customers",
    "Loyalty",
    "Orders & stock",
    "Experience",
    "Recommendations",
    "Campaigns",
    "Settings",
)


@dataclass(frozen=True)
class NavItem:
    """A page in the navigation: under ``section`` (one of :data:`SECTIONS`); a section with
    one page is a plain link, one with several a menu."""

    label: str
    path: str
    section: str = ""
    description: str = ""  # what the page is for, on its section's index (settings)

    @property
    def group(self) -> str:
        return self.section or self.label


@dataclass(frozen=True)
class NavSection:
    label: str
    items: list[NavItem]

    @property
    def path(self) -> str:
        return self.items[0].path


@dataclass(frozen=True)
class CustomerPanel:
    """A domain's part of the customer 360 page: ``path`` (with ``{customer_id}``) answers
    an HTML fragment (without its own title), loaded into the page under ``title``."""

    title: str
    path: str
    order: int = 50
    wide: bool = False  # across the whole grid (long tables), not in one of its two columns


NAV: list[NavItem] = [NavItem("Overview", "/admin", "Overview")]
CUSTOMER_PANELS: list[CustomerPanel] = []


def nav_sections() -> list[NavSection]:
    """The navigation grouped by section, sections in :data:`SECTIONS` order."""
    groups: dict[str, list[NavItem]] = {}
    for item in NAV:
        groups.setdefault(item.group, []).append(item)
    order = {name: index for index, name in enumerate(SECTIONS)}
    names = sorted(groups, key=lambda name: order.get(name, len(SECTIONS) - 1))
    return [NavSection(name, groups[name]) for name in names]


def add_customer_panels(panels: Sequence[CustomerPanel]) -> None:
    for panel in panels:
        if panel not in CUSTOMER_PANELS:
            CUSTOMER_PANELS.append(panel)
    CUSTOMER_PANELS.sort(key=lambda panel: panel.order)


# The currency money is shown in: the loyalty program's, read by a function the composition
# root installs (the platform knows no domain).
_currency_source: Callable[[Session], str] | None = None


def set_currency_source(source: Callable[[Session], str]) -> None:
    global _currency_source
    _currency_source = source


@dataclass(frozen=True)
class Display:
    """How this request's pages show numbers: the locale and the program's currency."""

    locale: str = formatting.DEFAULT_LOCALE
    currency: str = formatting.DEFAULT_CURRENCY


def _display(request: Request) -> Display:
    found = getattr(request.state, "display", None)
    return found if isinstance(found, Display) else Display(locale=get_settings().locale)


def shown_moment(request: Request, value: datetime | None) -> str:
    """A date and time as the admin pages show it, for a message a route writes ("Scheduled
    for 8 Dec 2026, 04:05 UTC"): the ``moment`` filter's words, in this request's locale."""
    return formatting.moment(value, _display(request).locale)


def _context_display(context: Context) -> Display:
    found = context.get("display")
    return found if isinstance(found, Display) else Display()


@pass_context
def _money(context: Context, minor: int | float | None, currency: str | None = None) -> str:
    shown = _context_display(context)
    return formatting.money(minor, currency or shown.currency, shown.locale)


def typed_money(text: str, currency: str) -> int:
    """What a person typed in an admin money field, in minor units of ``currency``: the one
    reading every admin form uses (:func:`formatting.parse_money`), in the locale the pages
    show amounts in. Raises :class:`formatting.MoneyUnreadable` saying how to type it."""
    return formatting.parse_money(text, currency, get_settings().locale)


def _plain_item(item: str) -> bool:
    """Whether a list item reads back unchanged from comma-separated text."""
    return (
        bool(item)
        and item == item.strip()
        and "," not in item
        and item.splitlines() == [item]
        and not item.startswith("[")
    )


def list_text(items: Sequence[str]) -> str:
    """A list of names (categories, plans, values) as an admin form's text field shows it:
    separated by commas, or, when an item could not be read back from that (it holds a
    comma or a line break, starts with ``[``, is empty, or has spaces at either end), the
    list as JSON (``["Beer, Wine & Spirits", "Red"]``). :func:`typed_list` reads either back
    to the same list, so a form saved unchanged never changes a list it shows."""
    if all(_plain_item(item) for item in items):
        return ", ".join(items)
    return json.dumps(list(items), ensure_ascii=False)


def typed_list(text: str) -> list[str]:
    """The list an admin form's list field holds (what :func:`list_text` shows): a JSON list
    of strings when the text starts with ``[``, else the names separated by commas or line
    breaks, each trimmed, empty ones left out. Raises :class:`ValueError` saying how to write
    it when JSON was meant but the text is not a JSON list of strings."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            found = json.loads(stripped)
        except json.JSONDecodeError:
            found = None
        if not isinstance(found, list) or not all(isinstance(item, str) for item in found):
            raise ValueError(
                'a list starting with "[" is read as JSON: write it as ["first", "second"],'
                " or separate the names with commas"
            )
        return found
    return [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]


# The largest whole number an admin form or filter passes on: what an INTEGER column holds on
# both databases (PostgreSQL's is 32 bits; SQLite raises OverflowError beyond 64).
INTEGER_MAX = 2**31 - 1


def whole_number(text: str, *, low: int = 0, high: int = INTEGER_MAX) -> int | None:
    """The whole number typed in an admin form field or list filter (thousands separators
    and spaces allowed), or None when it is none or lies outside ``low``..``high``: the page
    then marks the field, and a number no column holds never reaches SQL."""
    cleaned = "".join(text.replace(",", "").split())
    if not cleaned or len(cleaned) > 20:
        return None
    try:
        number = int(cleaned)
    except ValueError:
        return None
    return number if low <= number <= high else None


FORM_TOKEN_FIELD = "token"


def form_token() -> str:
    """A fresh one-time token for one rendering of a form that must act once (its hidden
    ``token`` field); :func:`run_form_once` takes it back as the command's Idempotency-Key."""
    return secrets.token_urlsafe(18)


def sent_token(fields: Mapping[str, str]) -> str:
    """The one-time token a form came back with; empty when it carried none (the page then
    refuses it as expired)."""
    return fields.get(FORM_TOKEN_FIELD, "").strip()


def run_form_once(
    db: Session,
    *,
    user: Any,
    action: str,
    subject: str,
    token: str,
    request_body: Any,
    execute: Callable[[BeforeCommit], Any],
    render: Callable[[Any], Any],
) -> tuple[Any, bool]:
    """Run a form's command once per one-time token, as the API runs one per Idempotency-Key
    (:func:`rapport.platform.idempotency.run_idempotent`), scoped to the signed-in admin, the
    ``action`` and its ``subject`` (a customer, an order): the same form sent again answers
    what the first sending did and applies nothing. The command's answer (``render`` of its
    result), and whether it was such a repeat."""
    answer = run_idempotent(
        db,
        scope=f"admin.{action}:{user.id}:{subject}",
        key=token,
        request_body=request_body,
        status_code=201,
        execute=execute,
        render=render,
    )
    return json.loads(bytes(answer.body)), answer.headers.get("idempotent-replayed") == "true"


def money_field(minor: int | None, currency: str) -> str:
    """Minor units as an admin money field shows them ("1,234.50"), which
    :func:`typed_money` reads back."""
    return formatting.money_input(minor, currency, get_settings().locale)


@pass_context
def _number(context: Context, value: int | float | None, digits: int = 0) -> str:
    return formatting.number(value, _context_display(context).locale, digits)


@pass_context
def _share(context: Context, value: float | None, digits: int = 1) -> str:
    return formatting.share(value, _context_display(context).locale, digits)


@pass_context
def _day(context: Context, value: Any) -> str:
    return formatting.day(value, _context_display(context).locale)


@pass_context
def _moment(context: Context, value: Any) -> str:
    return formatting.moment(value, _context_display(context).locale)


templates.env.filters.update(
    money=_money, number=_number, share=_share, day=_day, moment=_moment, list_text=list_text
)


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


def field_messages(
    model: type[BaseModel],
    fields: Mapping[str, str],
    *,
    labels: Mapping[str, str],
    field_of: Callable[[str], str] = str,
) -> dict[str, str]:
    """What is wrong with a form, before anything is saved: for each field of ``model`` the
    form carried that does not validate, its message starting with the field's label, keyed
    by the name the form gives the field (``field_of`` maps a model field to it)."""
    try:
        model.model_validate({n: v for n, v in fields.items() if n in model.model_fields})
    except ValidationError as failure:
        messages: dict[str, str] = {}
        for detail in failure.errors(include_url=False):
            name = field_of(str(detail["loc"][0]))
            said = str(detail["msg"]).removeprefix("Value error, ")  # pydantic's, not ours
            messages.setdefault(name, f"{labels.get(name, name)}: {said}")
        return messages
    return {}


def settings_after_save(
    model: type[BaseModel],
    fields: Mapping[str, str],
    stored: object | None,
    *,
    needs: Sequence[str],
    noun: str,
    id_field: str,
) -> dict[str, Any]:
    """Every setting of an object after its form is saved: what is stored, changed only where
    the form carried a field (:func:`form_changes`). An "add" form (its hidden ``new``) may
    not overwrite an object that exists, and a new object needs each of ``needs``. Raises a
    :class:`~rapport.platform.errors.Problem` naming the field."""
    changes = form_changes(model, fields)
    if stored is not None and fields.get("new") == "true":
        raise Conflict(
            f"{noun} {fields.get(id_field, '')} already exists; change it from its Edit link",
            field=id_field,
        )
    kept = {name: getattr(stored, name) for name in model.model_fields} if stored else {}
    settings = {**kept, **changes}
    for needed in needs:
        if needed not in settings:
            raise InvalidInput(f"A new {noun.lower()} needs its {needed}", field=needed)
    return settings


SESSION_KEY = "admin_session"


def current_admin(request: Request, db: DbSession) -> AdminUser:
    """The signed-in admin: the cookie names a session that must still exist on the server
    (signing out or a new password deletes it) and not have expired."""
    token = request.session.get(SESSION_KEY)
    user = admin_security.session_user(db, token) if isinstance(token, str) else None
    if user is None:
        request.session.pop(SESSION_KEY, None)
        raise LoginRequired(request.url.path)
    currency = _currency_source(db) if _currency_source else formatting.DEFAULT_CURRENCY
    request.state.display = Display(locale=get_settings().locale, currency=currency)
    return user


CurrentAdmin = Annotated[AdminUser, Depends(current_admin)]
CsrfChecked = Depends(verify_csrf)


# Where a form's outcome waits for the page it redirects to (see redirect_saying).
FLASH_KEY = "flash"
FLASH_MAX = 500


def flash(request: Request, message: str) -> None:
    """Have the next admin page this browser is shown say ``message`` in its status line
    (``message`` in the template's context, :func:`render`), once. The message waits in the
    signed session cookie, never in the address, so nobody can send a staff member a link to
    a real admin page saying what they like ("Your session expired, call …"): an address's
    ``?message=`` shows nothing."""
    request.session[FLASH_KEY] = message[:FLASH_MAX]


def redirect_saying(request: Request, url: str, message: str) -> RedirectResponse:
    """A form's 303 to the page ``url``, which says ``message`` (:func:`flash`)."""
    flash(request, message)
    return RedirectResponse(url, status_code=303)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render an admin template with the shell's context (nav, CSRF token, signed-in user),
    and the message a form's redirect left for it (:func:`redirect_saying`) when the page
    says none of its own."""
    base = {
        "nav": nav_sections(),
        "display": _display(request),
        "csrf_token": csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "path": request.url.path,
    }
    shown = {**base, **(context or {})}
    flashed = request.session.pop(FLASH_KEY, None)
    if isinstance(flashed, str) and not shown.get("message"):
        shown["message"] = flashed
    return templates.TemplateResponse(request, name, shown, status_code=status_code)


def problem_page(
    request: Request, *, status: int, title: str, detail: str, headers: dict[str, str] | None
) -> HTMLResponse:
    """A problem as a page (``problem.html``), for :func:`rapport.platform.errors.answer_problem`:
    its status, headers and wording, a *Try again* link for a page (a form is not sent again
    by a link) and one to the admin home."""
    if status == 404 and detail.lower() == title.lower():
        detail = "There is no admin page at this address."  # rather than "Not Found" again
    # No link back to an address that cannot be asked again (one holding a control character).
    path = request.url.path
    again = path if request.method in ("GET", "HEAD") and path.isprintable() else None
    return templates.TemplateResponse(
        request,
        "problem.html",
        {"title": title, "detail": detail, "again": again},
        status_code=status,
        headers=headers,
    )


class SessionCookie:
    """Starlette's signed session cookie (``rapport_admin``), marked ``Secure`` whenever the
    request came over HTTPS, or always when the operator says so (``secure_cookies``).

    The scheme is the one uvicorn saw: behind a proxy it comes from ``X-Forwarded-Proto`` only
    when the proxy's address is trusted (``FORWARDED_ALLOW_IPS``), so a client cannot ask for
    a cookie that would then travel in clear text. The cookie holds the CSRF token, the
    server-side session's secret and, from a form's redirect to the page it shows, the outcome
    that page says once (:func:`redirect_saying`), nothing else."""

    def __init__(
        self, app: ASGIApp, /, *, secret_key: str, max_age: int, secure_always: bool
    ) -> None:
        options: dict[str, Any] = {
            "secret_key": secret_key,
            "session_cookie": "rapport_admin",
            "max_age": max_age,
            "same_site": "strict",
        }
        self.plain = SessionMiddleware(app, https_only=secure_always, **options)
        self.secure = SessionMiddleware(app, https_only=True, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self.secure if scope.get("scheme") == "https" else self.plain
        await chosen(scope, receive, send)


# Scripts, styles and images from Rapport's own origin only (the JSON data blocks pages carry
# are not scripts); no framing, no plugins, forms post back to Rapport only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
# The customers' pages (a survey, an unsubscribe confirmation): the admin's set, but their
# URLs carry a token, so no page they link to learns it from a Referer.
PUBLIC_SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (name, b"no-referrer" if name == b"referrer-policy" else value)
    for name, value in SECURITY_HEADERS
]


class SecurityHeaders:
    """Adds ``headers`` (:data:`SECURITY_HEADERS`) to every answer it wraps, but those the
    answer sets itself (main.py wraps /admin, and the public pages with
    :data:`PUBLIC_SECURITY_HEADERS`)."""

    def __init__(
        self, app: ASGIApp, /, *, headers: list[tuple[bytes, bytes]] = SECURITY_HEADERS
    ) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


router = APIRouter(prefix="/admin", include_in_schema=False)


def _safe_next(next_path: str | None) -> str:
    # Only same-site admin paths, so the login form cannot be used as an open redirect.
    if next_path and next_path.startswith("/admin") and not next_path.startswith("//"):
        return next_path
    return "/admin"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


def _client_address(request: Request) -> str:
    # uvicorn puts the forwarded client here only for proxies the operator trusts
    # (FORWARDED_ALLOW_IPS), so a client cannot pick its own address.
    return request.client.host if request.client else "unknown"


@router.post("/login", response_class=HTMLResponse, dependencies=[CsrfChecked])
def login(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/admin",
) -> Response:
    subjects = admin_security.login_subjects(email, _client_address(request))
    locked = admin_security.locked_until(db, subjects)
    if locked is None:
        user = service.authenticate_admin(db, email=email, password=password)
        if user is not None:
            admin_security.clear_failures(db, subjects)
            token = admin_security.start_session(
                db, user=user, max_age_seconds=settings.session_max_age_seconds
            )
            # A fresh cookie on sign-in, so a token planted before login is useless afterwards.
            request.session.clear()
            request.session[SESSION_KEY] = token
            return RedirectResponse(_safe_next(next), status_code=303)
        locked = admin_security.record_failure(db, subjects)
    # While locked the password is not even checked, so guesses learn nothing.
    error = "Wrong email or password."
    if locked is not None:
        error = admin_security.wait_message(locked)
    response = render(
        request,
        "login.html",
        {"next": _safe_next(next), "error": error, "email": email},
        status_code=401 if locked is None else 429,
    )
    if locked is not None:
        seconds = (locked - clock.now()).total_seconds()
        response.headers["Retry-After"] = str(max(1, math.ceil(seconds)))
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, db: DbSession) -> RedirectResponse:
    token = request.session.get(SESSION_KEY)
    if isinstance(token, str):
        admin_security.end_session(db, token)
    request.session.clear()
    return RedirectResponse("/admin/login", status_code=303)


@router.get("/settings", response_class=HTMLResponse)
def settings_index(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    """Operations, away from the business pages: keys, jobs, tracking, webhooks."""
    pages = [item for item in NAV if item.group == "Settings" and item.path != "/admin/settings"]
    return render(request, "settings.html", {"user": user, "pages": pages})
