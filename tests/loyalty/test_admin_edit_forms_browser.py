"""Editing a plan and a reward in headless Chromium: the edit page shows every setting, and
changing one leaves the others as they were."""

from __future__ import annotations

from typing import Any

from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as

PASSWORD = "correct horse battery"


def _sign_in(page: Any, base_url: str) -> None:
    sign_in_as(page, base_url, "ops@example.com", PASSWORD)


def _plan(database_url: str) -> dict[str, Any]:
    with open_session(database_url) as db:
        plan = membership_plans.get_plan(db, plan_id="gold")
        assert plan is not None
        return {
            name: getattr(plan, name)
            for name in (
                "name",
                "fee_minor",
                "currency",
                "period",
                "free_shipping",
                "member_prices",
                "early_access_hours",
                "points_multiplier",
                "active",
            )
        }


def _reward(database_url: str) -> dict[str, Any]:
    with open_session(database_url) as db:
        reward = reward_catalogue.get_reward(db, reward_id="wine-15")
        assert reward is not None
        return {
            name: getattr(reward, name)
            for name in (
                "name",
                "points_cost",
                "coupon_kind",
                "coupon_value",
                "min_subtotal_minor",
                "categories",
                "stackable",
                "valid_days",
                "active",
            )
        }


def test_changing_a_plans_fee_keeps_its_other_settings(page, live_server) -> None:
    # given a plan with every setting away from its default
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        membership_plans.save_plan(
            db,
            plan_id="gold",
            name="Gold club",
            fee_minor=999,
            currency="USD",
            period="year",
            free_shipping=False,
            member_prices=False,
            early_access_hours=0,
            points_multiplier=2.0,
            active=False,
        )
    before = _plan(live_server.database_url)
    _sign_in(page, live_server.base_url)
    # when its fee is changed on its edit page
    page.goto(f"{live_server.base_url}/admin/loyalty/plans")
    page.get_by_role("link", name="Edit gold").click()
    form = page.get_by_test_id("plan-form")
    assert not form.get_by_label("Free shipping").is_checked()
    assert form.get_by_label("Points multiplier").input_value() == "2.0"
    form.get_by_label("Fee").fill("12.99")
    form.get_by_role("button", name="Save plan").click()
    # then the fee changed and nothing else did
    assert page.get_by_role("status").inner_text() == "Plan gold saved"
    assert _plan(live_server.database_url) == {**before, "fee_minor": 1299}
    row = page.get_by_test_id("plans").locator("tbody tr").first.inner_text().split("\t")
    assert row[2:9] == ["US$12.99", "year", "no", "no", "0 h", "\u00d72.0", "retired"]


def test_changing_a_rewards_points_cost_keeps_its_other_settings(page, live_server) -> None:
    # given a reward limited to some categories that does not combine with other coupons
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        reward_catalogue.save_reward(
            db,
            reward_id="wine-15",
            name="15% off wine",
            points_cost=800,
            coupon_kind="percent",
            coupon_value=15,
            min_subtotal_minor=2500,
            categories=["Wine", "Spirits"],
            stackable=False,
            valid_days=30,
            active=False,
        )
    before = _reward(live_server.database_url)
    _sign_in(page, live_server.base_url)
    # when its points cost is changed on its edit page
    page.goto(f"{live_server.base_url}/admin/loyalty/rewards")
    page.get_by_role("link", name="Edit wine-15").click()
    form = page.get_by_test_id("reward-form")
    assert form.get_by_label("Only for categories").input_value() == "Wine, Spirits"
    form.get_by_label("Points cost").fill("900")
    form.get_by_role("button", name="Save reward").click()
    # then the cost changed and the categories and non-stacking stayed
    assert page.get_by_role("status").inner_text() == "Reward wine-15 saved"
    assert _reward(live_server.database_url) == {**before, "points_cost": 900}
