"""The rule simulator multiplies as earning does: with the paid plan the sample customer holds
(the better of its and the tier's multiplier), or with a plan chosen on the form."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty.membership import lifecycle as memberships
from tests.loyalty.factories import make_customer, triple_plan
from tests.platform.admin_forms import page_form

RULE = "/admin/loyalty/program/rules/base-earn"


def _points(admin: TestClient, **sample: str) -> int:
    """What the saved 1-point-per-euro rule gives a €100.00 order of the sample."""
    fields = page_form(admin.get(RULE).text, action=RULE, testid="rule-form")
    token = next(value for name, value in fields if name == "csrf_token")
    body: dict[str, Any] = {}
    for name, value in [*fields, ("target", "rules"), ("sample_amount", "100.00")]:
        body.setdefault(name, []).append(value)
    body.update(sample)
    answer = admin.post(
        "/admin/loyalty/program/simulate", data=body, headers={"X-CSRF-Token": token}
    )
    assert answer.status_code == 200, answer.text
    row = re.search(r'<tr data-rule="base-earn".*?<td class="num">([\d,]+)</td>', answer.text, re.S)
    assert row is not None, answer.text
    return int(row.group(1).replace(",", ""))


def test_the_simulator_uses_the_sample_customers_paid_plan(admin: TestClient, db: Session) -> None:
    # given a customer on a x3 plan, and the plan list on the rule's form
    triple_plan(db)
    member = make_customer(db)
    memberships.join(db, customer_id=member, plan_id="triple")
    assert 'value="triple"' in admin.get(RULE).text
    # when a €100.00 order is simulated for them, as their tier or as the base tier chosen
    as_they_are = _points(admin, sample_customer=member)
    tier_chosen = _points(admin, sample_customer=member, sample_tier="member")
    # then the plan's multiplier counts both ways, as it does when they really buy
    assert (as_they_are, tier_chosen) == (300, 300)
    # and a plan chosen on the form is simulated, for them or for a new customer
    assert _points(admin, sample_customer=member, sample_plan="none") == 100
    assert _points(admin, sample_plan="triple") == 300
    assert _points(admin, sample_plan="triple", sample_tier="member") == 300
