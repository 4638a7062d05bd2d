"""The survey form carries every setting of a survey: a stored survey shown on the form and
saved unchanged is the same survey (its languages, including one beyond the four defaults,
and its extra questions kept)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from rapport.feedback import service
from rapport.feedback.schemas import SurveyIn
from rapport.feedback.surveys.admin import survey_from_form, values_of


def test_a_survey_survives_its_form_unchanged(db: Session) -> None:
    # given a survey with every setting away from its default
    stored = service.save_survey(
        db,
        survey=SurveyIn.model_validate(
            {
                "survey_id": "csat-web",
                "name": "Web purchase satisfaction",
                "kind": "csat",
                "trigger": "after_purchase",
                "channel": "web",
                "sampling_rate": 0.35,
                "fatigue_days": 45,
                "consent_purpose": "marketing_email",
                "link_days": 7,
                "labels": {
                    "en": {"question": "Happy?", "comment": "Why?", "low": "No", "high": "Yes"},
                    "es": {"question": "¿Contento?", "comment": "¿Por qué?", "low": "", "high": ""},
                },
                "questions": [{"id": "speed", "labels": {"en": "Fast enough?", "es": "¿Rápido?"}}],
                "active": False,
            }
        ),
    )
    # when its form is submitted as shown
    draft, errors = survey_from_form(values_of(stored))
    # then nothing is refused and the draft is the stored survey
    assert errors == {}
    assert draft is not None
    assert draft.model_dump(exclude={"labels", "questions"}) == {
        "survey_id": "csat-web",
        "name": "Web purchase satisfaction",
        "kind": "csat",
        "trigger": "after_purchase",
        "channel": "web",
        "sampling_rate": 0.35,
        "fatigue_days": 45,
        "consent_purpose": "marketing_email",
        "link_days": 7,
        "active": False,
    }
    assert {k: v.model_dump() for k, v in (draft.labels or {}).items()} == stored.labels
    assert [q.model_dump() for q in draft.questions] == stored.questions


def test_a_channel_on_a_survey_not_after_a_purchase_is_refused_at_its_field() -> None:
    values = values_of(None) | {"survey_id": "nps-x", "name": "X", "channel": "web"}
    draft, errors = survey_from_form(values)
    assert draft is None
    assert errors == {"channel": "Only surveys after a purchase are limited to a channel"}
