"""The membership and rewards admin pages in headless Chromium: plans, analytics chart,
reward catalogue, announcements published and queued by the campaigns worker."""

from __future__ import annotations

from playwright.sync_api import expect

from rapport.domains import load_tasks
from rapport.events import service as events
from rapport.loyalty import service as loyalty
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.platform import jobs
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as
from tests.loyalty.factories import make_customer

PASSWORD = "correct horse battery"


def test_plans_analytics_rewards_and_announcements(page, live_server) -> None:
    # given a plan with one paying member (who takes marketing email, so announcements may
    # reach them) and a free member with points
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        membership_plans.save_plan(
            db, plan_id="plus", name="Plus", fee_minor=499, currency="EUR", period="month"
        )
        paying = make_customer(db, consents={"marketing_email": True})
        memberships.join(db, customer_id=paying, plan_id="plus")
        loyalty.earn(db, customer_id=make_customer(db), points=10, reason="Welcome")
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    # when the membership pages open
    page.wait_for_url(f"{live_server.base_url}/admin")
    page.goto(f"{live_server.base_url}/admin/loyalty/plans")
    # then the plan is listed, and a new yearly plan can be added
    assert page.get_by_test_id("plans").locator("tbody tr").all_inner_texts()[0].split("\t")[
        :4
    ] == [
        "plus",
        "Plus",
        "\u20ac4.99",
        "month",
    ]
    page.get_by_label("Plan id").fill("plus-year")
    page.get_by_label("Name", exact=True).fill("Plus yearly")
    page.get_by_label("Fee").fill("49.00")
    page.get_by_label("Period").select_option("year")
    page.get_by_role("button", name="Save plan").click()
    assert page.get_by_role("status").inner_text() == "Plan plus-year saved"
    assert page.get_by_test_id("plans").locator("tbody tr").count() == 2
    # and the analytics compare the three groups, with a drawn chart
    page.get_by_role("link", name="Analytics").click()
    rows = page.get_by_test_id("membership-segments").locator("tbody tr").all_inner_texts()
    assert [row.split("\t")[:2] for row in rows] == [
        ["Paying members", "1"],
        ["Free members", "1"],
        ["Non-members", "0"],
    ]
    page.wait_for_function("() => Chart.getChart('membership-spend') !== undefined")
    # when a reward is added
    page.get_by_role("link", name="Rewards").click()
    page.get_by_label("Reward id").fill("five-off")
    page.get_by_label("Name", exact=True).fill("5 EUR off")
    page.get_by_label("Points cost").fill("500")
    page.get_by_label("Coupon value").fill("5.00")
    page.get_by_role("button", name="Save reward").click()
    assert page.get_by_role("status").inner_text() == "Reward five-off saved"
    assert page.get_by_test_id("rewards").locator("tbody tr").all_inner_texts()[0].split("\t")[
        :4
    ] == ["five-off", "5 EUR off", "500", "\u20ac5.00 off"]
    # when an announcement is created for paying members and the worker runs
    page.get_by_role("link", name="Announcements").click()
    page.get_by_label("Kind").select_option("early_access")
    page.get_by_label("Title").fill("Early access")
    page.get_by_label("Message").fill("Members shop the sale a day early.")
    page.get_by_label("Audience").select_option("paying")
    page.get_by_role("button", name="Create and send").click()
    assert page.get_by_role("status").inner_text().startswith("Announcement published")
    _campaigns_queue(live_server.database_url)
    # publish again: nobody new
    page.get_by_role("button", name="Send to new members", exact=True).click()
    # (the form's answer has arrived before the page is reloaded: a reload while it is on its
    # way finds no page to reload)
    expect(page.get_by_role("status")).to_contain_text("Announcement published again")
    _campaigns_queue(live_server.database_url)
    page.reload()
    # then the paying member's delivery is queued, once (campaigns sends it: its own tests)
    row = page.get_by_test_id("announcements").locator("tbody tr").all_inner_texts()[0]
    assert row.split("\t")[1:6] == ["early access", "Early access", "paying", "1", "0"]


def _campaigns_queue(database_url: str) -> None:
    """The worker's processors (the campaigns producers react to the publication) and jobs
    (the announcement's deliveries are queued), without the dispatcher."""
    load_tasks()
    events.run_processors(database_url=database_url)
    jobs.run_due(worker_id="browser-test", database_url=database_url)
