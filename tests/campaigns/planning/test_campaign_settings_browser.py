"""The campaign settings form in headless Chromium saves what it shows: values the API stored
that a coarser step or minimum would refuse (a 12.55 % control group, a 12.345 km or 0.05 km
radius) are kept by an unchanged save instead of blocking it; Cancel asks first."""

from __future__ import annotations

from rapport.campaigns.planning import editing
from rapport.campaigns.planning.editing import CampaignSettings
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.campaigns.planning.factories import make_segment
from tests.conftest import sign_in_as
from tests.orders.factories import seed_catalog

PASSWORD = "correct horse battery"
SETTINGS = ("kind", "segment_id", "store_id", "radius_km", "categories", "control_percent")


def _stored(database_url: str, campaign_id: int) -> dict[str, object]:
    with open_session(database_url) as db:
        campaign = editing.get_campaign(db, campaign_id=campaign_id)
        return {
            **{name: getattr(campaign, name) for name in SETTINGS},
            "name": campaign.name,
            "conversion_days": campaign.conversion_days,
            "trigger": dict(campaign.trigger),
        }


def test_an_unchanged_save_keeps_every_value_the_api_stored(page, live_server) -> None:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        seed_catalog(db)
        triggered = editing.create_campaign(
            db,
            settings=CampaignSettings(
                name="Match day",
                kind="triggered",
                segment_id=make_segment(db),
                control_percent=12.55,
                trigger={"event_type": "venue_event", "radius_km": 0.05, "within_minutes": 90},
            ),
        ).id
        local = editing.create_campaign(
            db,
            settings=CampaignSettings(
                name="Workshop",
                store_id="st-par-01",
                radius_km=12.345,
                categories=["Kitchen/Tools"],
                control_percent=7.25,
            ),
        ).id
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    for campaign_id in (triggered, local):
        before = _stored(live_server.database_url, campaign_id)
        page.goto(f"{live_server.base_url}/admin/campaigns/{campaign_id}")
        form = page.get_by_test_id("settings-form")
        form.get_by_label("Name", exact=True).fill(f"{before['name']} 2")
        page.get_by_test_id("save-settings").click()
        assert page.get_by_test_id("message").inner_text() == "Campaign saved"
        assert _stored(live_server.database_url, campaign_id) == {
            **before,
            "name": f"{before['name']} 2",
        }


def test_cancel_asks_first_without_javascript(browser, live_server) -> None:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        campaign_id = editing.create_campaign(db, settings=CampaignSettings(name="Spring")).id
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
        page.goto(f"{live_server.base_url}/admin/campaigns/{campaign_id}")
        page.get_by_test_id("cancel").click()
        assert "final" in page.get_by_test_id("after").inner_text()
        page.get_by_test_id("keep").click()
        assert page.get_by_test_id("campaign-status").inner_text() == "draft"
        page.get_by_test_id("cancel").click()
        page.get_by_test_id("confirm-cancel").click()
        assert page.get_by_test_id("message").inner_text() == "Campaign cancelled"
        assert page.get_by_test_id("campaign-status").inner_text() == "cancelled"
    finally:
        context.close()


def test_a_draft_campaigns_editor_fits_a_phone(browser, live_server) -> None:
    # given a draft one-off campaign, the schedule form beside Launch now
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        draft = editing.create_campaign(
            db, settings=CampaignSettings(name="Spring promo", segment_id=make_segment(db))
        ).id
    # when it is opened on a 390 px wide phone
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    page.goto(f"{live_server.base_url}/admin/campaigns/{draft}")
    # then nothing runs off the side: the page does not scroll sideways, and the schedule
    # button is whole on screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.get_by_role("button", name="Schedule (UTC)").bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= 390
    context.close()
