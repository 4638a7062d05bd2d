"""The segment builder in headless Chromium: each condition is a small form of labelled inputs
(no JSON to type); the live count follows each change before saving, a mistake is shown next
to its input, and a saved segment shows its values again and lists its members."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from rapport.campaigns.segments.membership import create_segment, get_segment
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.campaigns.segments.factories import make_customer, make_stores
from tests.conftest import sign_in_as

PASSWORD = "correct horse battery"


def _screenshot(page: Any, name: str) -> None:
    """Screenshots for a person to look at, when RAPPORT_SCREENSHOTS names a folder."""
    folder = os.environ.get("RAPPORT_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_build_a_two_condition_segment_with_forms(page: Any, live_server: Any) -> None:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        make_stores(db, {"lyon-1": (45.76, 4.86)})
        make_customer(db, first_name="Léa", last_name="Martin", home_city="Lyon")
        make_customer(db, first_name="Paul", last_name="Durand", home_city="Paris")
        make_customer(db, first_name="Zoé", last_name="Petit", home_city="Lyon", consents={})
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    page.locator("details[data-section=Campaigns] > summary").click()
    page.get_by_role("link", name="Segments").click()
    page.get_by_test_id("new-segment").click()
    live = page.get_by_test_id("live-count")

    # no condition yet: everyone
    expect(live).to_contain_text("3 customers match now")
    # first condition: a consent, with its sensible default (marketing email, granted)
    page.get_by_test_id("add-kind").select_option("consent")
    page.get_by_test_id("add-condition").click()
    expect(page.get_by_test_id("c0-purpose")).to_have_value("marketing_email")
    expect(page.get_by_test_id("c0-granted")).to_be_checked()
    expect(page.get_by_test_id("summary-0")).to_have_text("Granted marketing email consent")
    expect(live).to_contain_text("2 customers match now")
    # unticking "granted" turns it round at once
    page.get_by_test_id("c0-granted").uncheck()
    expect(live).to_contain_text("1 customer matches now")
    expect(page.get_by_test_id("summary-0")).to_have_text("Has not granted marketing email consent")
    page.get_by_test_id("c0-granted").check()
    expect(live).to_contain_text("2 customers match now")

    # second condition: lives in Lyon, typed into labelled inputs
    page.get_by_test_id("add-kind").select_option("trait")
    page.get_by_test_id("add-condition").click()
    page.get_by_test_id("c1-field").fill("home_city")
    page.get_by_test_id("c1-op").select_option("eq")
    page.get_by_test_id("c1-value").fill("Lyon")
    expect(live).to_contain_text("1 customer matches now")
    expect(page.get_by_test_id("preview-sample")).to_contain_text("Léa M.")
    expect(page.get_by_test_id("summary-1")).to_have_text("Home city is Lyon")
    _screenshot(page, "segment-builder")

    # a mistake is shown next to its input, not saved; fixing it clears the message
    page.get_by_test_id("c1-field").fill("shoe_size")
    expect(page.get_by_test_id("error-c1-field")).to_contain_text("unknown trait 'shoe_size'")
    expect(page.get_by_test_id("preview-error")).to_contain_text(
        "Condition 2 (Profile trait), Trait: unknown trait"
    )
    # the field named dotted, as every API problem names it
    expect(page.get_by_test_id("preview-error")).to_contain_text("[conditions.1.field]")
    _screenshot(page, "segment-builder-error")
    page.get_by_test_id("c1-field").fill("home_city")
    expect(live).to_contain_text("1 customer matches now")
    expect(page.get_by_test_id("error-c1-field")).to_have_text("")

    # the JSON fallback shows the same condition, and back
    page.get_by_test_id("as-json-1").click()
    expect(page.get_by_test_id("c1-json")).to_have_value(
        '{"kind": "trait", "field": "home_city", "op": "eq", "value": "Lyon"}'
    )
    page.get_by_test_id("as-form-1").click()
    expect(page.get_by_test_id("c1-value")).to_have_value("Lyon")

    # save, reload: the values are shown in the forms, and the members listed
    page.get_by_test_id("segment-name").fill("Lyon, email OK")
    page.get_by_test_id("save-segment").click()
    expect(page.get_by_test_id("message")).to_have_text("Saved: 1 members")
    page.reload()
    expect(page.get_by_test_id("c0-purpose")).to_have_value("marketing_email")
    expect(page.get_by_test_id("c0-granted")).to_be_checked()
    expect(page.get_by_test_id("c1-field")).to_have_value("home_city")
    expect(page.get_by_test_id("c1-op")).to_have_value("eq")
    expect(page.get_by_test_id("c1-value")).to_have_value("Lyon")
    expect(page.get_by_test_id("members")).to_contain_text("Léa M.")
    expect(page.get_by_test_id("members")).not_to_contain_text("Zoé")

    # a number outside its bounds, saved anyway: refused, the error next to the input
    page.get_by_test_id("add-kind").select_option("bought_category")
    page.get_by_test_id("add-condition").click()
    expect(page.get_by_test_id("c2-days")).to_have_value("90")
    page.get_by_test_id("c2-days").evaluate("input => input.removeAttribute('max')")
    page.get_by_test_id("c2-days").fill("99999")
    page.get_by_test_id("save-segment").click()
    expect(page.get_by_test_id("message")).to_contain_text("Not saved")
    expect(page.get_by_test_id("error-c2-days")).to_contain_text("less than or equal to 3650")
    expect(page.get_by_test_id("message")).to_contain_text("[conditions.2.days]")
    expect(page.get_by_test_id("c2-days")).to_have_value("99999")
    _screenshot(page, "segment-save-refused")
    page.locator("details[data-section=Campaigns] > summary").click()
    page.get_by_role("link", name="Segments").first.click()
    expect(page.get_by_test_id("segments")).to_contain_text("Lyon, email OK")
    expect(page.get_by_test_id("segments")).to_contain_text("2 (all)")

    # a condition the form cannot show exactly is kept as JSON and saved back untouched
    odd = {"kind": "trait", "field": "locale", "op": "eq", "value": 3}
    with open_session(live_server.database_url) as db:
        segment = create_segment(
            db, name="Odd", description="", definition={"conditions": [odd]}, created_by="api"
        )
        stored, segment_id = dict(segment.definition), segment.id
    page.goto(f"{live_server.base_url}/admin/segments/{segment_id}")
    expect(page.get_by_test_id("c0-json")).to_have_value(json.dumps(odd))
    page.get_by_test_id("save-segment").click()
    expect(page.get_by_test_id("message")).to_contain_text("Saved")
    with open_session(live_server.database_url) as db:
        assert get_segment(db, segment_id=segment_id).definition == stored


def test_a_number_out_of_bounds_is_said_under_its_input_at_once(
    page: Any, live_server: Any
) -> None:
    # given a segment of customers who bought wine lately, with its live count standing
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        make_customer(db, first_name="Léa", last_name="Martin", home_city="Lyon")
        segment = create_segment(
            db,
            name="Wine",
            definition={
                "conditions": [{"kind": "bought_category", "category": "Wine", "days": 30}]
            },
        )
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    page.goto(f"{live_server.base_url}/admin/segments/{segment.id}")
    expect(page.get_by_test_id("live-count")).to_contain_text("match now")
    # when 0 is typed into "In the last N days" (below the input's minimum)
    page.get_by_test_id("c0-days").fill("0")
    # then the error shows under that input at once and no count stands as if still true
    expect(page.get_by_test_id("error-c0-days")).not_to_be_empty()
    expect(page.get_by_test_id("live-count")).to_have_count(0)
    expect(page.get_by_test_id("preview-error")).to_contain_text("conditions.0.days")
