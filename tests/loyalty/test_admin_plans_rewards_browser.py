"""A loyalty manager adds a paid plan and a reward in headless Chromium: fees, prices and
baskets are typed in the currency ("4.99"), stored in minor units, shown as money, and a bad
value comes back at its field with a message in the currency, nothing saved."""

from __future__ import annotations

from typing import Any

from rapport.loyalty import overview as reads
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as

PASSWORD = "correct horse battery"


def _admin(live_server: Any, page: Any) -> str:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="manager@example.com", password=PASSWORD)
    base = live_server.base_url
    sign_in_as(page, base, "manager@example.com", PASSWORD)
    return str(base)


def test_a_plans_fee_is_typed_in_the_currency(page, live_server) -> None:
    base = _admin(live_server, page)
    page.goto(f"{base}/admin/loyalty/plans")
    form = page.get_by_test_id("plan-form")
    # when a fee with too many decimals is typed
    form.get_by_label("Plan id").fill("plus")
    form.get_by_label("Name", exact=True).fill("Rapport Plus")
    form.get_by_label("Fee").fill("4.999")
    form.get_by_role("button", name="Save plan").click()
    # then the form comes back with the message at the fee, in the currency, and what was typed
    message = page.locator('[data-field-error="fee"]')
    assert message.inner_text() == (
        "Fee: an amount in EUR, which takes at most 2 decimals; type it like 1,234.50"
    )
    assert (
        page.get_by_test_id("plan-form").get_by_label("Name", exact=True).input_value()
        == "Rapport Plus"
    )
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
    form.get_by_label("Name", exact=True).fill("€5 off")
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


def test_a_coupon_campaign_issues_a_set_listed_a_page_at_a_time(page, live_server) -> None:
    base = _admin(live_server, page)
    page.goto(f"{base}/admin/loyalty/coupons")
    form = page.get_by_test_id("coupon-campaign-form")
    # when a set of 60 coupons of €5.00 off is asked for with a chosen code
    form.get_by_label("Campaign").fill("spring-flyer")
    form.get_by_label("Value").fill("5")
    form.get_by_label("How many").fill("60")
    form.get_by_role("textbox", name="Code").fill("SPRING24")
    form.get_by_role("button", name="Issue coupons").click()
    # then it is refused at the code: a chosen code makes one coupon
    assert "one coupon" in page.locator('[data-field-error="code"]').inner_text()
    form = page.get_by_test_id("coupon-campaign-form")
    form.get_by_role("textbox", name="Code").fill("")
    form.get_by_role("button", name="Issue coupons").click()
    # then 60 single-use coupons are issued, listed 50 to a page under the campaign
    assert page.get_by_role("status").inner_text() == "Issued 60 coupons for spring-flyer"
    rows = page.get_by_test_id("coupons").locator("tbody tr")
    assert rows.count() == 50
    assert "\u20ac5.00" in rows.first.inner_text()
    assert "open" in rows.first.inner_text()
    page.get_by_role("link", name="Next").click()
    assert page.get_by_test_id("coupons").locator("tbody tr").count() == 10
    with open_session(live_server.database_url) as db:
        codes = {
            c.code
            for c in reads.coupon_page(
                db, reads.CouponFilter(rule="spring-flyer"), offset=0, limit=100
            )
        }
    assert len(codes) == 60
    # and one coupon under a printed code can be found by its code
    page.goto(f"{base}/admin/loyalty/coupons")
    form = page.get_by_test_id("coupon-campaign-form")
    form.get_by_label("Campaign").fill("radio")
    form.get_by_label("Kind").select_option("percent")
    form.get_by_label("Value").fill("10")
    form.get_by_role("textbox", name="Code").fill("radio-10")
    form.get_by_role("button", name="Issue coupons").click()
    assert page.get_by_role("status").inner_text() == "Issued RADIO10 for radio"
    page.get_by_label("Code", exact=True).first.fill("RADIO10")
    page.get_by_role("button", name="Find").click()
    assert (
        page.get_by_test_id("coupons")
        .locator("tbody tr")
        .all_inner_texts()[0]
        .startswith("RADIO10\tradio\tanyone\t10%")
    )
