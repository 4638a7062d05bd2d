"""Survey definitions: create or replace a survey, and read them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.feedback.models import Invitation, Survey, SurveyResponse
from rapport.feedback.schemas import SurveyIn
from rapport.feedback.surveys.wording import DEFAULT_LABELS
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from rapport.platform.idempotency import BeforeCommit


def save_survey(
    db: Session, *, survey: SurveyIn, before_commit: BeforeCommit | None = None
) -> Survey:
    """Create or replace a survey definition. ``before_commit`` runs last in the transaction,
    with the survey."""
    if survey.channel is not None and survey.trigger != "after_purchase":
        raise InvalidInput("Only after_purchase surveys are limited to a channel", field="channel")
    now = clock.now()
    row = db.get(Survey, survey.survey_id)
    if row is not None and row.kind != survey.kind:
        _refuse_kind_change(db, row, now)
    if row is None:
        row = Survey(survey_id=survey.survey_id, created_at=now)
        db.add(row)
    row.name = survey.name
    row.kind = survey.kind
    row.trigger = survey.trigger
    row.channel = survey.channel
    row.sampling_rate = survey.sampling_rate
    row.fatigue_days = survey.fatigue_days
    row.consent_purpose = survey.consent_purpose
    row.link_days = survey.link_days
    row.labels = (
        {locale: labels.model_dump() for locale, labels in survey.labels.items()}
        if survey.labels
        else DEFAULT_LABELS[survey.kind]
    )
    row.questions = [question.model_dump() for question in survey.questions]
    row.active = survey.active
    row.updated_at = now
    if before_commit is not None:
        db.flush()
        before_commit(db, row)
    db.commit()
    return row


def _refuse_kind_change(db: Session, row: Survey, now: datetime) -> None:
    """A survey's kind is its answers' scale: it cannot change while an invitation may still
    be answered on the old one, nor once answers on it exist (their scores would mix)."""
    open_invitations = db.scalar(
        select(func.count())
        .select_from(Invitation)
        .where(
            Invitation.survey_id == row.survey_id,
            Invitation.answered_at.is_(None),
            Invitation.expires_at > now,
        )
    )
    answers = db.scalar(
        select(func.count())
        .select_from(SurveyResponse)
        .where(SurveyResponse.survey_id == row.survey_id)
    )
    held = [
        f"{count} {name}{'' if count == 1 else 's'}"
        for count, name in ((open_invitations, "open invitation"), (answers, "answer"))
        if count
    ]
    if held:
        raise Conflict(
            f"Survey {row.survey_id!r} is {row.kind.upper()} and has {' and '.join(held)} on "
            "that scale, so its kind cannot change: create a new survey for another kind",
            field="kind",
        )


def get_survey(db: Session, *, survey_id: str) -> Survey | None:
    return db.get(Survey, survey_id)


def list_surveys(db: Session) -> list[Survey]:
    return list(db.scalars(select(Survey).order_by(Survey.survey_id)))


def require_survey(db: Session, survey_id: str) -> Survey:
    """The survey, or :class:`NotFound` naming ``survey_id``."""
    survey = db.get(Survey, survey_id)
    if survey is None:
        raise NotFound(f"No survey {survey_id!r}", field="survey_id")
    return survey
