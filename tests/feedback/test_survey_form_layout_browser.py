"""The survey form's "More questions" at 1280 px with six languages: every box (the id and
one per language) keeps a usable width, where a table of seven columns squeezed them to a few
characters."""

from __future__ import annotations

from typing import Any

import pytest

from rapport.feedback import service
from rapport.feedback.schemas import SurveyIn
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import LiveServer, sign_in_as

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
LOCALES = ("en", "fr", "de", "pt", "es", "it")


def test_extra_question_boxes_keep_their_width_with_six_languages(
    page: Any, live_server: LiveServer
) -> None:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="cx@example.com", password=PASSWORD)
        service.save_survey(
            db,
            survey=SurveyIn.model_validate(
                {
                    "survey_id": "nps-six",
                    "name": "Six languages",
                    "kind": "nps",
                    "trigger": "manual",
                    "labels": {locale: {"question": f"Q {locale}?"} for locale in LOCALES},
                    "questions": [
                        {"id": "speed", "labels": {locale: f"Fast {locale}?" for locale in LOCALES}}
                    ],
                }
            ),
        )
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in_as(page, live_server.base_url, "cx@example.com", PASSWORD)
    page.goto(f"{live_server.base_url}/admin/feedback/surveys/nps-six")
    boxes = page.get_by_test_id("extra-questions").locator("input")
    # each question slot (the one stored and blank ones) has an id and six languages
    slots = page.get_by_test_id("extra-questions").locator("fieldset").count()
    assert slots >= 2
    assert boxes.count() == slots * (1 + len(LOCALES))
    widths = [boxes.nth(i).bounding_box()["width"] for i in range(boxes.count())]
    assert min(widths) >= 180, widths
    assert page.get_by_label("Question 1 in es").input_value() == "Fast es?"
    # nothing runs past the form's column
    form = page.get_by_test_id("survey-form").bounding_box()
    for i in range(boxes.count()):
        box = boxes.nth(i).bounding_box()
        assert box["x"] + box["width"] <= form["x"] + form["width"] + 1
