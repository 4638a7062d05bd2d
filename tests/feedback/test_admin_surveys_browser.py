"""A CX manager creates a survey through the form: a wrong setting is refused on the form
itself, the preview shows the draft as the customer would see it without saving it, and the
save stores every setting."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from rapport.feedback import service
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import LiveServer, sign_in_as

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def _sign_in(page: Any, server: LiveServer) -> None:
    with open_session(server.database_url) as db:
        platform.create_admin_user(db, email="cx@example.com", password=PASSWORD)
    sign_in_as(page, server.base_url, "cx@example.com", PASSWORD)


def test_cx_manager_creates_previews_and_saves_a_survey(page: Any, live_server: LiveServer) -> None:
    _sign_in(page, live_server)
    page.goto(f"{live_server.base_url}/admin/feedback/surveys")
    page.get_by_role("button", name="New survey").click()
    # (beside the form, the page a customer sees with the default wording)
    expect(page.frame_locator("iframe[name=survey-preview]").locator("h1")).to_have_text(
        "How likely are you to recommend us to a friend or colleague?"
    )
    # when the manager fills the form with a wrong survey id and question id
    page.get_by_label("Survey id").fill("CSAT Store!")
    page.get_by_label("Name", exact=True).fill("Store visit satisfaction")
    page.locator("select[name=kind]").select_option("csat")
    page.locator("select[name=trigger]").select_option("after_store_visit")
    page.get_by_label("Customers asked (%)").fill("25")
    page.get_by_label("Not asked again within (days)").fill("60")
    page.locator("#f-en_question").fill("How was your visit to our shop today?")
    page.locator("#f-en_low").fill("Awful")
    page.locator("#f-en_high").fill("Wonderful")
    page.get_by_label("Question 1 id").fill("Staff member")
    page.get_by_label("Question 1 in English").fill("Who helped you?")
    # then a preview draws the draft, on the customer's page, without saving it
    page.get_by_role("button", name="Preview").click()
    frame = page.frame_locator("iframe[name=survey-preview]")
    expect(frame.locator("h1")).to_have_text("How was your visit to our shop today?")
    assert frame.locator(".scale label").all_inner_texts() == ["1", "2", "3", "4", "5"]
    assert frame.get_by_text("Awful").is_visible()
    assert frame.get_by_label("Who helped you?").is_visible()
    with open_session(live_server.database_url) as db:
        assert service.list_surveys(db) == []
    # when it is saved, each wrong field says why, and what was typed is kept
    page.get_by_role("button", name="Save survey").click()
    assert "Lower-case letters" in page.locator("[data-field-error=survey_id]").inner_text()
    assert "Lower-case letters" in page.locator("[data-field-error=q0_id]").inner_text()
    assert page.get_by_label("Name", exact=True).input_value() == "Store visit satisfaction"
    assert page.get_by_label("Question 1 in English").input_value() == "Who helped you?"
    # when the manager corrects them and saves
    page.get_by_label("Survey id").fill("csat-store")
    page.get_by_label("Question 1 id").fill("staff")
    page.get_by_role("button", name="Save survey").click()
    # then the survey is stored with every setting of the form
    assert page.get_by_role("status").inner_text() == "Survey Store visit satisfaction saved"
    with open_session(live_server.database_url) as db:
        survey = service.get_survey(db, survey_id="csat-store")
        assert survey is not None
        assert (survey.kind, survey.trigger, survey.sampling_rate, survey.fatigue_days) == (
            "csat",
            "after_store_visit",
            0.25,
            60,
        )
        assert survey.labels["en"]["question"] == "How was your visit to our shop today?"
        assert survey.labels["en"]["low"] == "Awful"
        assert survey.questions == [{"id": "staff", "labels": {"en": "Who helped you?"}}]
        # (the languages left at the NPS default wording took CSAT's)
        assert survey.labels["fr"] == service.DEFAULT_LABELS["csat"]["fr"]
        assert survey.active
    # and it is listed; its form opens with the stored settings
    page.goto(f"{live_server.base_url}/admin/feedback/surveys")
    page.get_by_role("link", name="Store visit satisfaction").click()
    assert page.get_by_label("Customers asked (%)").input_value() == "25"
    assert page.get_by_label("Question 1 id").input_value() == "staff"
