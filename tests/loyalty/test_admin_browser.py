"""The loyalty admin pages in headless Chromium: liability, settings, a member's statement."""

from __future__ import annotations

from rapport.loyalty import service as loyalty
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as
from tests.loyalty.factories import make_customer

PASSWORD = "correct horse battery"


def test_liability_settings_and_a_members_statement(page, live_server) -> None:
    # given two members with points, one with a return that left debt
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        ann = make_customer(db, email="ann@example.com")
        bob = make_customer(db, email="bob@example.com")
        loyalty.earn(
            db, customer_id=ann, points=500, reason="Order O-1", order_id="O-1", rule_id="base"
        )
        loyalty.redeem(db, customer_id=ann, points=120, reason="Coffee reward")
        loyalty.earn(db, customer_id=bob, points=100, reason="Order O-2", order_id="O-2")
        loyalty.redeem(db, customer_id=bob, points=100, reason="Reward")
        loyalty.reverse_for_return(db, customer_id=bob, order_id="O-2", points=40)
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    # when the loyalty page opens
    page.goto(f"{live_server.base_url}/admin/loyalty")
    # then it shows what the program owes and its value at the default 1.00 per 100 points
    assert page.get_by_test_id("outstanding-points").inner_text() == "380"
    assert page.get_by_test_id("liability-value").inner_text() == "€3.80"
    # when the point value changes to 2.50 per 100 points
    page.get_by_label("Value of 100 points").fill("2.50")
    page.get_by_role("button", name="Save settings").click()
    # then the liability is valued at the new rate
    assert page.get_by_role("status").inner_text() == "Program settings saved"
    assert page.get_by_test_id("liability-value").inner_text() == "€9.50"
    # when a member is found by email and opened
    page.get_by_label("Find a member").fill("ann@example.com")
    page.get_by_role("button", name="Find").click()
    results = page.get_by_test_id("member-results").locator("tbody tr").all_inner_texts()
    assert len(results) == 1
    assert results[0].split("\t")[1:] == ["ann@example.com", "Member", "380", "€9.50", ""]
    page.get_by_test_id("member-results").get_by_role("link", name="statement").click()
    # then the statement lists the balance, the open lot and every movement with its reason
    assert page.get_by_test_id("balance").inner_text() == "380"
    lots = page.get_by_test_id("open-lots").locator("tbody tr").all_inner_texts()
    assert len(lots) == 1
    assert "\t500\t380\t" in lots[0]
    movements = page.get_by_test_id("movements").locator("tbody tr").all_inner_texts()
    assert [row.split("\t")[1:5] for row in movements] == [
        ["redeem", "-120", "Coffee reward", ""],
        ["earn", "+500", "Order O-1", "O-1"],
    ]
    # and a member with debt shows it
    page.goto(f"{live_server.base_url}/admin/loyalty/members/{bob}")
    assert page.get_by_test_id("debt").inner_text() == "40"
