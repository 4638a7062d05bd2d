"""Survey answers: to an invitation (once, before its link expires) or without one (kiosk,
app, till tablet). A detractor's answer opens a complaint ticket in the same transaction."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import log_event
from rapport.feedback.events import SurveyAnswered
from rapport.feedback.models import Invitation, Survey, SurveyResponse
from rapport.feedback.named_orders import require_customers_order
from rapport.feedback.schemas import ResponseIn, TicketIn
from rapport.feedback.scores.arithmetic import check_score, unhappy
from rapport.feedback.surveys.definitions import require_survey
from rapport.feedback.surveys.invitations import order_signals
from rapport.feedback.tickets import open_ticket
from rapport.loyalty import service as loyalty
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound, Problem
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.ids import new_id


class AlreadyAnswered(Conflict):
    slug, title = "already-answered", "Already answered"


class LinkExpired(Problem):
    status, slug, title = 410, "link-expired", "Survey link expired"


class InvitationWithdrawn(Problem):
    """The invitation was withdrawn before it reached the customer (its order cancelled, its
    consent withdrawn, its email given up): it takes no answer, as an expired link does."""

    status, slug, title = 410, "invitation-withdrawn", "Survey withdrawn"


def _check(kind: str, value: int) -> None:
    if not check_score(kind, value):
        low, high = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}[kind]
        raise InvalidInput(f"A {kind.upper()} score is {low} to {high}", field="score")


def answer_invitation(
    db: Session,
    *,
    invitation_id: str,
    score_value: int,
    comment: str | None = None,
    answers: dict[str, str] | None = None,
    before_commit: BeforeCommit | None = None,
) -> SurveyResponse:
    """Record the answer to an invitation, once: a second answer is :class:`AlreadyAnswered`
    an answer after the link's expiry :class:`LinkExpired` and one to an invitation withdrawn
    before it reached the customer :class:`InvitationWithdrawn` (nothing is recorded). A
    detractor's answer opens a complaint ticket in the same transaction."""
    invitation = db.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound("No such survey invitation", field="invitation_id")
    survey = require_survey(db, invitation.survey_id)
    _check(survey.kind, score_value)
    now = clock.now()
    if invitation.answered_at is not None:
        raise AlreadyAnswered("This survey has already been answered; thank you")
    if now >= clock.as_utc(invitation.expires_at):
        raise LinkExpired("This survey link has expired")
    if invitation.withdrawn_at is not None:
        raise InvitationWithdrawn(
            "This survey invitation was withdrawn; it takes no answer", field="invitation_id"
        )
    # Claim the invitation before recording: of two answers at once, the second waits for the
    # first's commit and then finds it answered (409, not the unique index's error).
    claimed = db.execute(
        update(Invitation)
        .where(Invitation.invitation_id == invitation_id, Invitation.answered_at.is_(None))
        .values(answered_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        raise AlreadyAnswered("This survey has already been answered; thank you")
    invitation.answered_at = now
    response = SurveyResponse(
        response_id=new_id("rsp"),
        invitation_id=invitation.invitation_id,
        survey_id=survey.survey_id,
        kind=survey.kind,
        customer_id=invitation.customer_id,
        score=score_value,
        comment=(comment or "").strip() or None,
        answers=_known_answers(survey, answers or {}),
        locale=invitation.locale,
        channel=invitation.channel,
        store_id=invitation.store_id,
        order_id=invitation.order_id,
        stage=invitation.stage,
        tier=invitation.tier,
        signals=dict(invitation.signals),
        answered_at=now,
    )
    return _record(db, survey, response, before_commit)


def _known_answers(survey: Survey, answers: dict[str, str]) -> dict[str, str]:
    known = {q["id"] for q in survey.questions}
    return {key: value.strip()[:2000] for key, value in answers.items() if key in known}


def record_response(
    db: Session, *, response: ResponseIn, before_commit: BeforeCommit | None = None
) -> SurveyResponse:
    """An answer given without an invitation (a kiosk, the app, a till tablet). An
    ``order_id`` is one of the customer's orders (a guest order for an answer without a
    customer), else ``422`` naming it and nothing is recorded: a detractor's ticket keeps it."""
    survey = require_survey(db, response.survey_id)
    _check(survey.kind, response.score)
    tier = None
    if response.customer_id is not None:
        customers.require_customer(db, response.customer_id)
        tier = loyalty.member_benefits(db, customer_id=response.customer_id).tier_id
    if response.order_id is not None:
        require_customers_order(db, order_id=response.order_id, customer_id=response.customer_id)
    signals = order_signals(db, order_id=response.order_id) if response.order_id else {}
    row = SurveyResponse(
        response_id=new_id("rsp"),
        survey_id=survey.survey_id,
        kind=survey.kind,
        customer_id=response.customer_id,
        score=response.score,
        comment=(response.comment or "").strip() or None,
        answers=_known_answers(survey, response.answers),
        locale=response.locale,
        channel=response.channel,
        store_id=response.store_id,
        order_id=response.order_id,
        stage=survey.trigger,
        tier=tier,
        signals=signals,
        answered_at=response.answered_at or clock.now(),
    )
    return _record(db, survey, row, before_commit)


def _record(
    db: Session,
    survey: Survey,
    response: SurveyResponse,
    before_commit: BeforeCommit | None = None,
) -> SurveyResponse:
    db.add(response)
    db.flush()
    log_event(
        db,
        SurveyAnswered(
            response_id=response.response_id,
            survey_id=survey.survey_id,
            kind=survey.kind,
            score=response.score,
        ),
        channel=response.channel or "web",
        customer_id=response.customer_id,
        occurred_at=response.answered_at,
    )
    if unhappy(survey.kind, response.score):
        label = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}[survey.kind]
        ticket = open_ticket(
            db,
            ticket=TicketIn(
                customer_id=response.customer_id,
                order_id=response.order_id,
                kind="complaint",
                channel="survey",
                subject=f"{label} {response.score} from {survey.name}"[:200],
                body=response.comment or "",
            ),
            response_id=response.response_id,
            commit=False,
        )
        response.ticket_id = ticket.ticket_id
    if before_commit is not None:
        before_commit(db, response)
    db.commit()
    return response
