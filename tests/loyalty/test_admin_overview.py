"""The loyalty overview's member list over HTTP: its filters take what a person types, and a
bound they cannot take is marked beside it, never sent to the database."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.platform import clock
from tests.loyalty.factories import make_customer


def _error(html: str, field: str) -> str | None:
    found = re.search(rf'data-field-error="{field}">([^<]*)<', html)
    return found.group(1) if found else None


def _listed(html: str) -> int:
    table = html.split('data-testid="member-results"', 1)[1].split("</table>", 1)[0]
    return table.count("/admin/loyalty/members/")


@pytest.mark.parametrize("field", ["min_balance", "max_balance"])
@pytest.mark.parametrize("typed", ["99999999999999999999", "-5", "lots"])
def test_a_balance_bound_the_list_cannot_take_is_marked_on_the_form(
    admin: TestClient, db: Session, field: str, typed: str
) -> None:
    member = make_customer(db)
    loyalty.earn(db, customer_id=member, points=500, reason="Order")
    page = admin.get("/admin/loyalty", params={field: typed})
    # then the page answers, the bound is marked and kept as typed, and nobody is listed
    assert page.status_code == 422
    assert (
        _error(page.text, field) == "A whole number of points from 0 to 9,223,372,036,854,775,807"
    )
    assert f'name="{field}" min="0" value="{typed}"' in page.text
    assert _listed(page.text) == 0


def test_balance_bounds_within_range_filter_the_members(admin: TestClient, db: Session) -> None:
    for points in (100, 500, 900):
        loyalty.earn(db, customer_id=make_customer(db), points=points, reason="Order")
    page = admin.get(
        "/admin/loyalty", params={"min_balance": "200", "max_balance": "9223372036854775807"}
    )
    assert page.status_code == 200
    assert _listed(page.text) == 2
    backwards = admin.get("/admin/loyalty", params={"min_balance": "900", "max_balance": "100"})
    assert backwards.status_code == 422
    assert "wrong way round" in (_error(backwards.text, "max_balance") or "")


def test_a_statement_lists_the_soonest_expiring_lots_and_counts_the_rest(
    admin: TestClient, db: Session
) -> None:
    member = make_customer(db)
    start = clock.now() + timedelta(days=30)
    for n in range(55):
        loyalty.earn(
            db,
            customer_id=member,
            points=1,
            reason=f"Order O-{n}",
            expires_at=start + timedelta(days=n),
        )
    page = admin.get(f"/admin/loyalty/members/{member}")
    assert page.status_code == 200
    lots = page.text.split('data-testid="open-lots"', 1)[1].split("</tbody>", 1)[0]
    assert lots.count("<tr><td>") == 50
    assert "50 soonest to expire; 5 more open lots expire later" in page.text
