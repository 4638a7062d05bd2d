"""The segment builder in headless Chromium: conditions added and edited with a live count
that follows each change before saving; the saved segment lists its members."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import expect

from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.campaigns.segments.factories import make_customer

PASSWORD = "correct horse battery"


def test_build_a_two_condition_segment_with_a_live_count(page: Any, live_server: Any) -> None:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        make_customer(db, first_name="Léa", last_name="Martin", home_city="Lyon")
        make_customer(db, first_name="Paul", last_name="Durand", home_city="Paris")
        make_customer(db, first_name="Zoé", last_name="Petit", home_city="Lyon", consents={})
    page.goto(f"{live_server.base_url}/admin/login")
    page.get_by_label("Email").fill("ops@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Segments").click()
    page.get_by_test_id("new-segment").click()
    live = page.get_by_test_id("live-count")

    # no condition yet: everyone
    expect(live).to_contain_text("3 customers match now")
    # first condition: accepts marketing email
    page.get_by_test_id("add-kind").select_option("consent")
    page.get_by_test_id("add-condition").click()
    expect(page.get_by_test_id("condition-0")).to_have_value(
        json.dumps({"kind": "consent", "purpose": "marketing_email"})
    )
    expect(live).to_contain_text("2 customers match now")
    # second condition: lives in Lyon
    page.get_by_test_id("add-kind").select_option("trait")
    page.get_by_test_id("add-condition").click()
    page.get_by_test_id("condition-1").fill(
        json.dumps({"kind": "trait", "field": "home_city", "op": "eq", "value": "Lyon"})
    )
    expect(live).to_contain_text("1 customers match now")
    expect(page.get_by_test_id("preview-sample")).to_contain_text("Léa M.")
    # a mistake is named, not saved
    page.get_by_test_id("condition-1").fill(json.dumps({"kind": "trait", "field": "shoe_size"}))
    expect(page.get_by_test_id("preview-error")).to_contain_text("conditions[1]")
    page.get_by_test_id("condition-1").fill(
        json.dumps({"kind": "trait", "field": "home_city", "op": "eq", "value": "Lyon"})
    )
    expect(live).to_contain_text("1 customers match now")

    # save, and see the members
    page.get_by_test_id("segment-name").fill("Lyon, email OK")
    page.get_by_test_id("save-segment").click()
    expect(page.get_by_test_id("message")).to_have_text("Saved: 1 members")
    expect(page.get_by_test_id("members")).to_contain_text("Léa M.")
    expect(page.get_by_test_id("members")).not_to_contain_text("Zoé")
    page.get_by_role("link", name="Segments").first.click()
    expect(page.get_by_test_id("segments")).to_contain_text("Lyon, email OK")
