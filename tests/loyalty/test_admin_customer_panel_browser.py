"""A service agent on the customer 360 page, in headless Chromium: the loyalty panel shows
the member's tier, points and what expires, and gives goodwill points with a reason or a
coupon, each once however often the form is sent."""

from __future__ import annotations

from typing import Any

import httpx

from rapport.loyalty import service as loyalty
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.platform.service import Scope
from tests.conftest import sign_in_as
from tests.loyalty.factories import make_customer
from tests.platform.admin_forms import status_line

PASSWORD = "correct horse battery"


def _member(database_url: str) -> tuple[str, str]:
    """An admin, a member with 100 points and a reward on offer; (customer id, read key)."""
    with open_session(database_url) as db:
        platform.create_admin_user(db, email="agent@example.com", password=PASSWORD)
        customer_id = make_customer(db, email="ann@example.com")
        loyalty.earn(db, customer_id=customer_id, points=100, reason="Order O-1", order_id="O-1")
        reward_catalogue.save_reward(
            db,
            reward_id="coffee",
            name="Free coffee",
            points_cost=80,
            coupon_kind="amount",
            coupon_value=350,
            valid_days=30,
        )
        key = platform.create_api_key(db, name="shop", scopes=[Scope.READ]).secret
    return customer_id, key


def _sign_in(page: Any, base_url: str) -> None:
    sign_in_as(page, base_url, "agent@example.com", PASSWORD)


def _open_panel(page: Any, base_url: str, customer_id: str) -> Any:
    """The loyalty panel as the customer 360 page loads it (htmx) into its Loyalty section."""
    page.goto(f"{base_url}/admin/customers/{customer_id}")
    panel = page.locator('[data-panel="Loyalty"]').get_by_test_id("loyalty-panel")
    panel.wait_for()
    return panel


def _balance(base_url: str, key: str, customer_id: str) -> int:
    answer = httpx.get(
        f"{base_url}/v1/loyalty/members/{customer_id}",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["balance"])


def _said_after(page: Any, base: str, answer: Any) -> str:
    """The status line of the page a form's 303 sends the browser to, with its cookies."""
    return str(status_line(page.request.get(base + answer.headers["location"]).text()))


def _form_fields(form: Any) -> dict[str, str]:
    return dict(
        form.evaluate(
            "f => Array.from(new FormData(f).entries()).filter(([, v]) => typeof v === 'string')"
        )
    )


def test_an_agent_gives_goodwill_points_from_the_customer_page(page, live_server) -> None:
    base = live_server.base_url
    customer_id, key = _member(live_server.database_url)
    _sign_in(page, base)
    # when the agent opens the customer and sees the loyalty panel
    panel = _open_panel(page, base, customer_id)
    assert panel.get_by_test_id("panel-balance").inner_text() == "100"
    assert panel.get_by_test_id("tier").inner_text() != ""
    assert panel.locator("progress").count() == 1
    # and gives 150 points for a late delivery, with a note
    panel.get_by_text("Give goodwill points").click()
    form = panel.get_by_test_id("goodwill-form")
    form.get_by_label("Points").fill("150")
    form.get_by_label("Reason").select_option("Late delivery")
    form.get_by_label("Note").fill("parcel a week late")
    sent = _form_fields(form.element_handle())
    form.get_by_role("button", name="Give points").click()
    # then the message says so, and the panel and the API show 250 points
    page.get_by_text("Gave 150 goodwill points").first.wait_for()
    panel = _open_panel(page, base, customer_id)
    assert panel.get_by_test_id("panel-balance").inner_text() == "250"
    assert _balance(base, key, customer_id) == 250
    # and the ledger has one movement with the reason, shown in the panel
    reason = "Goodwill: Late delivery (parcel a week late)"
    with open_session(live_server.database_url) as db:
        movements = loyalty.statement(db, customer_id=customer_id)
    assert [(m.kind, m.points, m.reason) for m in movements[:1]] == [("adjust", 150, reason)]
    assert reason in panel.get_by_test_id("panel-movements").inner_text()
    # when the same form (the same one-time token) is sent again
    again = page.request.post(
        f"{base}/admin/loyalty/customers/{customer_id}/goodwill", form=sent, max_redirects=0
    )
    # then it is answered, but the points are given once
    assert again.status == 303
    assert "given already" in _said_after(page, base, again)
    assert _balance(base, key, customer_id) == 250
    with open_session(live_server.database_url) as db:
        assert len(loyalty.statement(db, customer_id=customer_id)) == 2


def test_goodwill_points_need_a_bounded_number_and_a_reason(page, live_server) -> None:
    base = live_server.base_url
    customer_id, key = _member(live_server.database_url)
    _sign_in(page, base)
    page.goto(f"{base}/admin/loyalty/customers/{customer_id}/panel")
    form = page.get_by_test_id("goodwill-form")
    fields = _form_fields(form.element_handle())
    url = f"{base}/admin/loyalty/customers/{customer_id}/goodwill"
    refusals = [
        ({"points": "0", "reason": "Late delivery"}, "Points"),
        ({"points": "50000", "reason": "Late delivery"}, "Points"),
        ({"points": "150", "reason": ""}, "Reason"),
        ({"points": "150", "reason": "Other", "note": ""}, "Reason"),
    ]
    for typed, named in refusals:
        answer = page.request.post(url, form={**fields, **typed}, max_redirects=0)
        assert answer.status == 303
        assert answer.headers["location"] == f"/admin/customers/{customer_id}"
        assert _said_after(page, base, answer).startswith(named)
    # through htmx the panel comes back with the message at its field
    answer = page.request.post(
        url,
        form={**fields, "points": "0", "reason": "Late delivery"},
        headers={"HX-Request": "true"},
    )
    assert answer.status == 422
    assert 'data-field-error="points"' in answer.text()
    # and in the customer page itself, htmx swaps the refusal (422) in at the field
    panel = _open_panel(page, base, customer_id)
    panel.get_by_text("Give goodwill points").click()
    goodwill = panel.get_by_test_id("goodwill-form")
    goodwill.get_by_label("Points").fill("0")
    goodwill.get_by_label("Reason").select_option("Late delivery")
    goodwill.get_by_role("button", name="Give points").click()
    error = page.locator('[data-panel="Loyalty"] [data-field-error="points"]')
    error.wait_for()
    assert "Points" in error.inner_text()
    assert _balance(base, key, customer_id) == 100


def test_an_agent_issues_a_coupon_once(page, live_server) -> None:
    base = live_server.base_url
    customer_id, key = _member(live_server.database_url)
    _sign_in(page, base)
    panel = _open_panel(page, base, customer_id)
    # when the agent issues a free coupon on the coffee reward's terms
    panel.get_by_text("Issue a coupon").click()
    form = panel.get_by_test_id("coupon-form")
    form.get_by_label("Coupon").select_option("coffee")
    form.get_by_label("Free (goodwill)").check()
    sent = _form_fields(form.element_handle())
    form.get_by_role("button", name="Issue coupon").click()
    page.get_by_text("Issued coupon").first.wait_for()
    # then the customer has one coupon of €3.50 off, and no points were spent
    with open_session(live_server.database_url) as db:
        coupons = reward_coupons.customer_coupons(db, customer_id=customer_id)
    assert [(c.rule, c.kind, c.value) for c in coupons] == [("goodwill:coffee", "amount", 350)]
    assert _balance(base, key, customer_id) == 100
    panel = _open_panel(page, base, customer_id)
    assert coupons[0].code in panel.get_by_test_id("panel-coupons").inner_text()
    assert "€3.50" in panel.get_by_test_id("panel-coupons").inner_text()
    # when the same form is sent again, no second coupon is issued
    again = page.request.post(
        f"{base}/admin/loyalty/customers/{customer_id}/coupon", form=sent, max_redirects=0
    )
    assert "issued already" in _said_after(page, base, again)
    # when a coupon is paid with the member's points, they are spent, once
    panel = _open_panel(page, base, customer_id)
    panel.get_by_text("Issue a coupon").click()
    form = panel.get_by_test_id("coupon-form")
    form.get_by_label("Paid with the member's points").check()
    sent = _form_fields(form.element_handle())
    form.get_by_role("button", name="Issue coupon").click()
    page.get_by_text("Issued coupon").first.wait_for()
    page.request.post(
        f"{base}/admin/loyalty/customers/{customer_id}/coupon", form=sent, max_redirects=0
    )
    assert _balance(base, key, customer_id) == 20
    with open_session(live_server.database_url) as db:
        assert len(reward_coupons.customer_coupons(db, customer_id=customer_id)) == 2


def test_the_panel_shows_the_paid_plan_against_its_fee(page, live_server) -> None:
    base = live_server.base_url
    customer_id, _ = _member(live_server.database_url)
    with open_session(live_server.database_url) as db:
        membership_plans.save_plan(
            db, plan_id="plus", name="Rapport Plus", fee_minor=499, currency="EUR", period="month"
        )
        loyalty.join(db, customer_id=customer_id, plan_id="plus")
    _sign_in(page, base)
    panel = _open_panel(page, base, customer_id)
    shown = panel.get_by_test_id("membership").inner_text()
    assert "Rapport Plus (\u20ac4.99 a month)" in shown
    assert "renews" in shown
    # nothing saved yet against the first month's fee
    assert panel.get_by_test_id("membership-net").inner_text() == "behind by \u20ac4.99"
