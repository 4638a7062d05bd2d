"""Test helpers for admin forms over HTTP: sign in with the login form, and submit a page's
form the way a browser does (every field it carries, ticked boxes only)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from typing import Any

from fastapi.testclient import TestClient

ADMIN_EMAIL = "ops@example.com"
ADMIN_PASSWORD = "correct horse battery"


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


def sign_in(client: TestClient, *, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> Any:
    """Post the sign-in form; returns the answer (303 on success)."""
    token = csrf_token(client.get("/admin/login").text)
    return client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/admin"},
        follow_redirects=False,
    )


@dataclass
class _Form:
    action: str
    testid: str | None
    fields: list[tuple[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    """Collects each POST form's successful controls as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self._form: _Form | None = None
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._form = _Form(action=a.get("action", ""), testid=a.get("data-testid"))
            self.forms.append(self._form)
        if self._form is None:
            return
        if tag == "input" and "name" in a:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form.fields.append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "button", "reset", "file"):
                self._form.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._options = a.get("name"), []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._form is None:
            return
        if tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected]
            if chosen or self._options:
                self._form.fields.append((self._select, (chosen or [self._options[0][0]])[0]))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            self._form.fields.append((self._textarea, text[1:] if text.startswith("\n") else text))
            self._textarea = None
        elif tag == "form":
            self._form = None


def page_form(html: str, *, action: str, testid: str | None = None) -> list[tuple[str, str]]:
    """The fields the page's POST form to ``action`` submits as it stands."""
    parser = _FormParser()
    parser.feed(html)
    found = [
        form
        for form in parser.forms
        if form.action == action and (testid is None or form.testid == testid)
    ]
    assert len(found) == 1, f"expected one form posting to {action}, found {len(found)}"
    return list(found[0].fields)


def typed(fields: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    """The fields with the text box (or list) ``name`` set to ``value``."""
    positions = [i for i, (key, _) in enumerate(fields) if key == name]
    assert len(positions) == 1, f"the form has no single field {name}"
    changed = list(fields)
    changed[positions[0]] = (name, value)
    return changed


def ticked(fields: list[tuple[str, str]], name: str, on: bool) -> list[tuple[str, str]]:
    """The fields with the checkbox ``name`` ticked or not (its hidden "false" stays)."""
    assert (name, "false") in fields, f"the form has no checkbox {name} with its marker"
    without = [(key, value) for key, value in fields if not (key == name and value != "false")]
    return [*without, (name, "true")] if on else without


def post_form(client: TestClient, action: str, fields: list[tuple[str, str]]) -> Any:
    body: dict[str, Any] = {}
    for name, value in fields:
        body.setdefault(name, []).append(value)
    return client.post(action, data=body, follow_redirects=False)


def status_line(html: str) -> str | None:
    """The text of the page's status line (its first ``role="status"``), unescaped; None
    when the page has none."""
    match = re.search(r'<(\w+)[^>]*\brole="status"[^>]*>(.*?)</\1>', html, re.DOTALL)
    return unescape(re.sub(r"<[^>]+>", "", match.group(2))).strip() if match else None


def said_after(client: TestClient, answer: Any) -> str | None:
    """What the page a form's answer sends the browser to says in its status line: the 303's
    ``Location`` (or htmx's ``HX-Redirect``) opened as the browser does, with its cookies."""
    where = answer.headers.get("location") or answer.headers["hx-redirect"]
    return status_line(client.get(where).text)
