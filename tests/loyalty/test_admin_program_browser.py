"""A loyalty manager edits the program with its forms in Chromium, the simulator beside each
form answering for the draft as they type, before anything is saved."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from rapport.loyalty.models import TierStanding
from rapport.loyalty.program import versions as program_versions
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as

EMAIL, PASSWORD = "manager@example.com", "correct horse battery"


def _sign_in(page: Any, base_url: str) -> None:
    sign_in_as(page, base_url, EMAIL, PASSWORD)


def _text_is(page: Any, testid: str, text: str) -> None:
    page.wait_for_function(
        "([id, text]) => document.querySelector(`[data-testid='${id}']`)?.textContent.trim()"
        " === text",
        arg=[testid, text],
    )


def test_a_manager_lowers_a_tier_threshold_and_the_simulator_shows_the_effect(
    page: Any, live_server: Any
) -> None:
    # given the built-in ladder (Silver from €500.00) and three members: two who spent
    # €450.00 and one €1,200.00 over the year, all in the Member tier
    now = datetime.now(UTC)
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email=EMAIL, password=PASSWORD)
        key = platform.create_api_key(db, name="reader", scopes=[platform.Scope.READ]).secret
        for number, spent in enumerate([45000, 45000, 120000]):
            db.add(
                TierStanding(
                    customer_id=f"cus_{number}",
                    tier_id="member",
                    since=now,
                    review_at=now + timedelta(days=365),
                    qualifying_value=spent,
                    updated_at=now,
                )
            )
        db.commit()
    _sign_in(page, live_server.base_url)
    page.goto(f"{live_server.base_url}/admin/loyalty/program")
    page.get_by_test_id("edit-tiers").click()

    # when they ask the simulator about a member who spent €450.00
    page.get_by_test_id("sample-value").fill("450.00")
    # then, with the ladder as it is, that member is in Member
    _text_is(page, "draft-tier", "Member")

    # when they lower Silver's threshold to €400.00 in the form, without saving
    page.get_by_test_id("threshold-1").fill("400.00")

    # then the simulator says the member would land in Silver, not Member as now, and that
    # two of the three members would move up
    _text_is(page, "draft-tier", "Silver")
    assert page.get_by_test_id("saved-tier").inner_text() == "Member"
    moves = page.get_by_test_id("tier-moves").inner_text()
    assert "Of 3 members" in moves
    assert "move 2 up and 0 down" in moves
    # and nothing is saved yet
    with open_session(live_server.database_url) as db:
        assert program_versions.current(db, "tiers").id is None

    # when they save
    page.get_by_role("button", name="Save tiers").click()

    # then the program page shows the new threshold in euros
    assert "Tiers and benefits saved" in page.get_by_test_id("program-message").inner_text()
    assert page.get_by_test_id("threshold-silver").inner_text() == "€400.00"
    # and the API serves it in minor units
    request = urllib.request.Request(
        f"{live_server.base_url}/v1/loyalty/program/tiers",
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        served = json.load(answer)
    assert [tier["threshold"] for tier in served["document"]["tiers"]] == [0, 40000, 150000]


def test_a_manager_adds_a_first_order_bonus_with_a_minimum_basket_in_euros(
    page: Any, live_server: Any
) -> None:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email=EMAIL, password=PASSWORD)
    _sign_in(page, live_server.base_url)
    page.goto(f"{live_server.base_url}/admin/loyalty/program")

    # given the form for a new first purchase bonus, filled in
    page.get_by_role("link", name="First purchase bonus").last.click()
    form = page.get_by_test_id("rule-form")
    form.get_by_label("Rule id").fill("big-first")
    form.get_by_label("Name").fill("Big first basket")
    form.locator("#f-points").fill("500")
    form.get_by_label("Minimum basket (€)").fill("100.00")

    # when the simulator is given an order above the minimum, then below it
    simulator = page.get_by_test_id("simulator")
    simulator.get_by_test_id("sample-amount").fill("150.00")
    page.wait_for_function(
        "() => document.querySelector(\"[data-testid='this-rule'] td:nth-child(2)\")"
        "?.textContent === 'yes'"
    )
    assert page.get_by_test_id("this-rule").locator("td").nth(2).inner_text() == "500"
    simulator.get_by_test_id("sample-amount").fill("50.00")
    page.wait_for_function(
        "() => document.querySelector(\"[data-testid='this-rule'] td:nth-child(2)\")"
        "?.textContent === 'no'"
    )
    assert "under €100.00" in page.get_by_test_id("this-rule").inner_text()

    # when bad values are saved: negative points, a minimum basket of "abc"
    form.locator("#f-points").fill("-5")
    form.get_by_label("Minimum basket (€)").fill("abc")
    form.get_by_role("button", name="Save rule").click()

    # then each message is next to its field, what was typed is kept, and nothing is saved
    page.wait_for_selector("[data-field-error='min_total']")
    assert page.locator("[data-field-error='points']").inner_text() == "Give at least 1 point"
    assert (
        page.locator("[data-field-error='min_total']").inner_text()
        == "Give an amount in EUR; type it like 1,234.50, with a comma between thousands and"
        " a point before the decimals"
    )
    assert page.get_by_label("Minimum basket (€)").input_value() == "abc"
    with open_session(live_server.database_url) as db:
        assert program_versions.current(db, "rules").id is None

    # when they are corrected and saved
    page.locator("#f-points").fill("500")
    page.get_by_label("Minimum basket (€)").fill("100.00")
    page.get_by_role("button", name="Save rule").click()

    # then the rule is stored in minor units and listed in euros
    assert "rules version 1" in page.get_by_test_id("program-message").inner_text()
    row = page.locator("[data-testid='rules-table'] tr[data-rule='big-first']").inner_text()
    assert "500 points on a first order of at least €100.00" in row
    with open_session(live_server.database_url) as db:
        rules = program_versions.current(db, "rules").document["rules"]
    assert [r["min_total_minor"] for r in rules if r["id"] == "big-first"] == [10000]
