"""A loyalty manager adds a paid plan and a reward in headless Chromium: fees, prices and
baskets are typed in the currency ("4.99"), stored in minor units, shown as money, and a bad
value comes back at its field with a message in the currency, nothing saved."""

from __future__ import annotations

from typing import Any

from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.platform import service as platform
from rapport.platform.db import open_session

PASSWORD = "correct horse battery"


def _admin(live_server: Any, page: Any) -> str:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="manager@example.com", password=PASSWORD)
    base = live_server.base_url
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill("manager@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin")
    return str(base)


def test_a_plans_fee_is_typed_in_the_currency(page, live_server) -> None:
    base = _admin(live_server, page)
    page.goto(f"{base}/admin/loyalty/plans")
    form = page.get_by_test_id("plan-form")
    # when a fee with too many decimals is typed
    form.get_by_label("Plan id").fill("plus")
    form.get_by_label("Name").fill("Rapport Plus")
    form.get_by_label("Fee").fill("4.999")
    form.get_by_role("button", name="Save plan").click()
    # then the form comes back with the message at the fee, in the currency, and what was typed
    message = page.locator('[data-field-error="fee"]')
    assert "EUR" in message.inner_text()
    assert "€" in message.inner_text()
    assert page.get_by_test_id("plan-form").get_by_label("Name").input_value() == "Rapport Plus"
    with open_session(live_server.database_url) as db:
        assert membership_plans.get_plan(db, plan_id="plus") is None
    # when the fee is typed as 4.99
    form = page.get_by_test_id("plan-form")
    form.get_by_label("Fee").fill("4.99")
    form.get_by_role("button", name="Save plan").click()
    # then 499 minor units are stored and the list shows €4.99
    assert page.get_by_role("status").inner_text() == "Plan plus saved"
    with open_session(live_server.database_url) as db:
        plan = membership_plans.get_plan(db, plan_id="plus")
        assert plan is not None
        assert plan.fee_minor == 499
        assert plan.currency == "EUR"
    row = page.get_by_test_id("plans").locator("tbody tr").first.inner_text().split("\t")
    assert row[:3] == ["plus", "Rapport Plus", "€4.99"]
    # and its edit page shows the fee as typed, and the plan as JSON for the API
    page.get_by_role("link", name="Edit plus").click()
    assert page.get_by_test_id("plan-form").get_by_label("Fee").input_value() == "4.99"
    page.get_by_text("Advanced (JSON)").click()
    assert '"fee_minor": 499' in page.get_by_test_id("plan-json").inner_text()
    # when a fee beyond the limit is saved, the message gives the range in euros
    form = page.get_by_test_id("plan-form")
    form.get_by_label("Fee").fill("2000000")
    form.get_by_role("button", name="Save plan").click()
    assert "€1,000,000.00" in page.locator('[data-field-error="fee"]').inner_text()
    with open_session(live_server.database_url) as db:
        plan = membership_plans.get_plan(db, plan_id="plus")
        assert plan is not None
        assert plan.fee_minor == 499


def test_a_rewards_coupon_and_basket_are_typed_in_the_currency(page, live_server) -> None:
    base = _admin(live_server, page)
    page.goto(f"{base}/admin/loyalty/rewards")
    form = page.get_by_test_id("reward-form")
    form.get_by_label("Reward id").fill("five-off")
    form.get_by_label("Name").fill("€5 off")
    form.get_by_label("Points cost").fill("500")
    form.get_by_label("Coupon kind").select_option("amount")
    form.get_by_label("Coupon value").fill("5.00")
    form.get_by_label("Minimum basket").fill("thirty")
    form.get_by_role("button", name="Save reward").click()
    # a basket that is not an amount is refused at its field
    assert "EUR" in page.locator('[data-field-error="min_subtotal"]').inner_text()
    form = page.get_by_test_id("reward-form")
    form.get_by_label("Minimum basket").fill("30")
    form.get_by_role("button", name="Save reward").click()
    assert page.get_by_role("status").inner_text() == "Reward five-off saved"
    with open_session(live_server.database_url) as db:
        reward = reward_catalogue.get_reward(db, reward_id="five-off")
        assert reward is not None
        assert (reward.coupon_value, reward.min_subtotal_minor) == (500, 3000)
    row = page.get_by_test_id("rewards").locator("tbody tr").first.inner_text().split("\t")
    assert row[3:5] == ["€5.00 off", "€30.00"]
    # a percent coupon stays a whole percent
    page.get_by_role("link", name="Edit five-off").click()
    form = page.get_by_test_id("reward-form")
    assert form.get_by_label("Coupon value").input_value() == "5.00"
    form.get_by_label("Coupon kind").select_option("percent")
    form.get_by_label("Coupon value").fill("150")
    form.get_by_role("button", name="Save reward").click()
    assert "1 to 100" in page.locator('[data-field-error="coupon_value"]').inner_text()
    form = page.get_by_test_id("reward-form")
    form.get_by_label("Coupon value").fill("15")
    form.get_by_role("button", name="Save reward").click()
    with open_session(live_server.database_url) as db:
        reward = reward_catalogue.get_reward(db, reward_id="five-off")
        assert reward is not None
        assert (reward.coupon_kind, reward.coupon_value) == ("percent", 15)
