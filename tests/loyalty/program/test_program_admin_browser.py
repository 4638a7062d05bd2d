"""The loyalty program's advanced page in headless Chromium: rules edited as validated JSON,
the simulator of the saved rules; the program page's tiers and breakage."""

from __future__ import annotations

import json

from rapport.loyalty.program import versions as program_versions
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as
from tests.orders.factories import CHIANTI, seed_catalog

PASSWORD = "correct horse battery"


def test_rules_are_validated_saved_and_simulated(page, live_server) -> None:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        seed_catalog(db)
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    page.goto(f"{live_server.base_url}/admin/loyalty/program")

    # the tier chart and breakage are shown
    page.wait_for_function("() => Chart.getChart('tier-chart') !== undefined")
    assert "0 of 0 points issued" in page.get_by_test_id("breakage").inner_text()
    page.get_by_role("link", name="Advanced (JSON)").click()

    # an invalid rule is refused naming the field, and nothing is saved
    rules = json.loads(page.get_by_test_id("rules-document").input_value())
    rules["rules"][0]["points_per_unit"] = "-1"
    page.get_by_test_id("rules-document").fill(json.dumps(rules))
    page.locator("#rules").get_by_role("button", name="Validate and save").click()
    assert "rules.0.points_per_unit" in page.get_by_test_id("rules-errors").inner_text()
    with open_session(live_server.database_url) as db:
        assert program_versions.current(db, "rules").id is None

    # a valid change is saved as version 1
    rules["rules"][0]["points_per_unit"] = "2"
    page.get_by_test_id("rules-document").fill(json.dumps(rules))
    page.locator("#rules").get_by_label("Note").fill("double points")
    page.locator("#rules").get_by_role("button", name="Validate and save").click()
    assert page.get_by_test_id("program-message").inner_text() == "Earning rules: version 1 saved"

    # the simulator applies it: 2 x 12.00 at 2 per euro, plus the first purchase bonus
    page.get_by_label("Order lines").fill(f"{CHIANTI} 2 1200")
    page.get_by_role("button", name="Simulate").click()
    assert page.get_by_test_id("simulated-points").inner_text().endswith("248 points.")
    rows = page.get_by_test_id("simulated-decisions").locator("tbody tr").all_inner_texts()
    assert rows[0].split("\t")[1:3] == ["yes", "48"]
