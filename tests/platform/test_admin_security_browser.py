"""The admin pages under their Content-Security-Policy in headless Chromium: every page
loads, draws its charts and logs no policy violation; signing out ends the session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as

PASSWORD = "correct horse battery"

PAGES = [
    "/admin",
    "/admin/customers",
    "/admin/orders",
    "/admin/loyalty",
    "/admin/loyalty/plans",
    "/admin/loyalty/plans/gold",
    "/admin/loyalty/membership-analytics",
    "/admin/loyalty/rewards",
    "/admin/loyalty/rewards/wine-15",
    "/admin/loyalty/announcements",
    "/admin/loyalty/program",
    "/admin/feedback",
    "/admin/feedback/reviews",
    "/admin/feedback/tickets",
    "/admin/recommendations",
]
# Chart pages and the canvas each one draws.
CHARTS = {
    "/admin": "consent-chart",
    "/admin/loyalty/membership-analytics": "membership-spend",
}

# Runs before any page script (outside the page's policy) and keeps every violation.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def test_admin_pages_work_under_the_content_security_policy(
    page: Any, live_server: Any, tmp_path: Path
) -> None:
    # given a signed-in admin, a plan and a reward
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        membership_plans.save_plan(
            db, plan_id="gold", name="Gold", fee_minor=499, currency="EUR", period="month"
        )
        reward_catalogue.save_reward(
            db,
            reward_id="wine-15",
            name="15% off wine",
            points_cost=800,
            coupon_kind="percent",
            coupon_value=15,
        )
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.add_init_script(RECORD_VIOLATIONS)
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    # when every admin page is opened
    for path in PAGES:
        answer = page.goto(f"{live_server.base_url}{path}")
        assert answer is not None
        assert answer.status == 200, path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        page.wait_for_load_state("load")
        if path in CHARTS:
            page.wait_for_function(f"Chart.getChart('{CHARTS[path]}') !== undefined")
        # then nothing was refused by the policy
        assert page.evaluate("window.__cspViolations") == [], path
        if path == "/admin/loyalty/program":
            page.screenshot(path=str(tmp_path / "program.png"), full_page=True)
    page.goto(f"{live_server.base_url}/admin")
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    assert not [line for line in console if "Content Security Policy" in line], console
    assert not [line for line in console if line.startswith("pageerror")], console
    # and every script, style and image the pages ask for is there (browsers ask for a favicon)
    assert [url for url in missing if not url.endswith("/favicon.ico")] == []


def test_signing_out_in_the_browser_ends_the_copied_session(
    page: Any, browser: Any, live_server: Any
) -> None:
    # given a signed-in admin, and a second browser holding a copy of the cookie
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    copy = browser.new_context()
    copy.add_cookies(page.context.cookies())
    other = copy.new_page()
    other.goto(f"{live_server.base_url}/admin")
    assert other.url == f"{live_server.base_url}/admin"
    # when the admin signs out
    page.get_by_test_id("signed-in-as").click()  # the account menu
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.base_url}/admin/login")
    # then the copy no longer opens the admin pages
    other.goto(f"{live_server.base_url}/admin")
    assert "/admin/login" in other.url
    copy.close()
