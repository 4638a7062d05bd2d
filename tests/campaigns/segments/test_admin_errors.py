"""The builder puts each refusal beside the input it names: problems name fields dotted
(``conditions.1.days``, as the whole API does), and the page reads that form."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from sqlalchemy.orm import Session

from rapport.platform import service as platform
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_token, sign_in


@pytest.fixture
def signed_in(client: Any, db: Session) -> str:
    """A signed-in admin; returns the session's CSRF token."""
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    sign_in(client)
    return csrf_token(client.get("/admin/segments/new").text)


def _slot(html: str, slot: str) -> str:
    match = re.search(rf'data-testid="error-{slot}">([^<]*)<', html)
    assert match is not None, f"no error slot {slot}"
    return unescape(match.group(1))


def _save(client: Any, token: str, **fields: str) -> str:
    answer = client.post(
        "/admin/segments/save", data={"csrf_token": token, "name": "Wine lovers", **fields}
    )
    assert answer.status_code in (200, 422), answer.text
    return str(answer.text)


def test_a_refused_number_is_said_beside_its_input(client: Any, signed_in: str) -> None:
    page = _save(
        client,
        signed_in,
        **{
            "c0.kind": "consent",
            "c0.purpose": "location",
            "c1.kind": "bought_category",
            "c1.category": "Wine",
            "c1.days": "99999",
        },
    )
    assert "less than or equal to 3650" in _slot(page, "c1-days")
    assert _slot(page, "c1") == ""
    assert "Condition 2" in page
    assert "[conditions.1.days]" in page
    assert "Wine lovers" not in client.get("/admin/segments").text


def test_a_control_character_is_said_beside_its_own_input(client: Any, signed_in: str) -> None:
    page = _save(
        client,
        signed_in,
        **{"c0.kind": "bought_category", "c0.category": "Wi\x01ne", "c0.days": "30"},
    )
    assert "control characters" in _slot(page, "c0-category")
    assert _slot(page, "c0") == ""
    assert "[conditions.0.category]" in page
    assert "Wine lovers" not in client.get("/admin/segments").text


def test_a_spend_that_is_no_amount_is_said_in_the_currency(client: Any, signed_in: str) -> None:
    # when the builder is saved with a total spend "is at least" abc
    page = _save(
        client,
        signed_in,
        **{"c0.kind": "trait", "c0.field": "spend_minor", "c0.op": "gte", "c0.value": "abc"},
    )
    # then the value's slot and the page's message ask for an amount in the currency
    assert _slot(page, "c0-value") == "Total spend: an amount in EUR, such as 12.50"
    assert "spend_minor compares with a number" not in unescape(page)
