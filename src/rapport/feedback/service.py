"""Feedback verbs: the only functions other code calls for surveys, reviews and tickets.

Every write owns its transaction (``commit=False`` joins the caller's) and appends its event:
``survey_invited``, ``survey_answered``, ``review_submitted``, ``review_verified`` (which the
loyalty program rewards), ``ticket_opened``, ``ticket_resolved`` and ``score_below_target``.
Other domains are read only through their services: customers (locale, consent), orders
(delivery dates, what a customer received), loyalty (tier and support level, apology points).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import log_event
from rapport.feedback import screening
from rapport.feedback.models import (
    Invitation,
    Review,
    ScoreAlert,
    ScoreTarget,
    Survey,
    SurveyResponse,
    Ticket,
)
from rapport.feedback.moments import Moment, Observation, moments_of_truth
from rapport.feedback.schemas import ResponseIn, ReviewIn, SurveyIn, TargetIn, TicketIn
from rapport.feedback.scores import Score, check_score, score, value_of
from rapport.feedback.themes import Comment, Theme, extract_themes
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound, Problem
from rapport.platform.ids import new_id
from rapport.platform.privacy import PrivacySubject

__all__ = [
    "BREAKDOWNS",
    "DEFAULT_LABELS",
    "DUPLICATE_CANDIDATES",
    "DUPLICATE_LOOKBACK",
    "HIGH_VALUE_MINOR",
    "ISSUE_WEIGHT",
    "LEVEL_SLA_FACTOR",
    "LEVEL_WEIGHT",
    "PRIOR_WEIGHT",
    "PRIVACY_TABLES",
    "SLA_HOURS",
    "AlreadyAnswered",
    "BeforeCommit",
    "ImportedReview",
    "InviteDecision",
    "Keyed",
    "LinkExpired",
    "Occasion",
    "RatingSummary",
    "ResponseIn",
    "ReviewIn",
    "SlaLine",
    "SurveyIn",
    "TargetIn",
    "TargetStatus",
    "TicketIn",
    "address_digest",
    "answer_invitation",
    "check_targets",
    "comment_themes",
    "count_reviews",
    "customer_value",
    "erase_customer_data",
    "export_customer_data",
    "get_invitation",
    "get_review",
    "get_survey",
    "get_ticket",
    "import_reviews",
    "invite",
    "labels_for",
    "last_invited",
    "list_surveys",
    "moderate_review",
    "moderation_queue",
    "moments",
    "open_ticket",
    "order_signals",
    "overall_score",
    "period_of",
    "prioritise",
    "process_feedback_events",
    "product_reviews",
    "question_text",
    "rating_summaries",
    "rating_summary",
    "recent_alerts",
    "record_response",
    "resolve_ticket",
    "sampled",
    "save_survey",
    "scores_by",
    "set_target",
    "sla_due",
    "sla_report",
    "submit_review",
    "target_status",
    "ticket_counts",
    "ticket_queue",
    "trend",
]

# Called with the session and the verb's result just before it commits (idempotent answers).
BeforeCommit = Callable[[Session, Any], None]

# --------------------------------------------------------------------------- survey wording

DEFAULT_LABELS: dict[str, dict[str, dict[str, str]]] = {
    "nps": {
        "en": {
            "question": "How likely are you to recommend us to a friend or colleague?",
            "comment": "What is the main reason for your score?",
            "low": "Not at all likely",
            "high": "Extremely likely",
        },
        "fr": {
            "question": "Quelle est la probabilité que vous nous recommandiez à un proche ?",
            "comment": "Quelle est la raison principale de votre note ?",
            "low": "Pas du tout probable",
            "high": "Très probable",
        },
        "de": {
            "question": "Wie wahrscheinlich ist es, dass Sie uns weiterempfehlen?",
            "comment": "Was ist der wichtigste Grund für Ihre Bewertung?",
            "low": "Sehr unwahrscheinlich",
            "high": "Sehr wahrscheinlich",
        },
        "pt": {
            "question": "Qual a probabilidade de você nos recomendar a um amigo?",
            "comment": "Qual o principal motivo da sua nota?",
            "low": "Nada provável",
            "high": "Muito provável",
        },
    },
    "csat": {
        "en": {
            "question": "How satisfied were you with your experience?",
            "comment": "Anything you would like to tell us?",
            "low": "Very dissatisfied",
            "high": "Very satisfied",
        },
        "fr": {
            "question": "Êtes-vous satisfait de votre expérience ?",
            "comment": "Souhaitez-vous nous dire quelque chose ?",
            "low": "Très insatisfait",
            "high": "Très satisfait",
        },
        "de": {
            "question": "Wie zufrieden waren Sie mit Ihrem Erlebnis?",
            "comment": "Möchten Sie uns noch etwas sagen?",
            "low": "Sehr unzufrieden",
            "high": "Sehr zufrieden",
        },
        "pt": {
            "question": "Qual o seu nível de satisfação com a experiência?",
            "comment": "Quer nos contar algo mais?",
            "low": "Muito insatisfeito",
            "high": "Muito satisfeito",
        },
    },
    "ces": {
        "en": {
            "question": "How easy was it to get what you needed?",
            "comment": "What could we make easier?",
            "low": "Very difficult",
            "high": "Very easy",
        },
        "fr": {
            "question": "Était-il facile d'obtenir ce dont vous aviez besoin ?",
            "comment": "Que pourrions-nous simplifier ?",
            "low": "Très difficile",
            "high": "Très facile",
        },
        "de": {
            "question": "Wie einfach war es, das zu bekommen, was Sie brauchten?",
            "comment": "Was könnten wir einfacher machen?",
            "low": "Sehr schwierig",
            "high": "Sehr einfach",
        },
        "pt": {
            "question": "Foi fácil conseguir o que você precisava?",
            "comment": "O que poderíamos facilitar?",
            "low": "Muito difícil",
            "high": "Muito fácil",
        },
    },
}


def labels_for(survey: Survey, locale: str) -> dict[str, str]:
    """The survey's wording in ``locale`` (its language, else English, else any)."""
    labels = survey.labels or DEFAULT_LABELS[survey.kind]
    language = locale.split("-")[0]
    for key in (locale, language, "en"):
        if key in labels:
            return dict(labels[key])
    return dict(next(iter(labels.values())))


def question_text(question: dict[str, Any], locale: str) -> str:
    texts: dict[str, str] = question.get("labels", {})
    language = locale.split("-")[0]
    for key in (locale, language, "en"):
        if key in texts:
            return texts[key]
    return next(iter(texts.values()), str(question.get("id", "")))


# ------------------------------------------------------------------------------ surveys


def save_survey(db: Session, *, survey: SurveyIn) -> Survey:
    """Create or replace a survey definition."""
    if survey.channel is not None and survey.trigger != "after_purchase":
        raise InvalidInput("Only after_purchase surveys are limited to a channel", field="channel")
    now = clock.now()
    row = db.get(Survey, survey.survey_id)
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
    db.commit()
    return row


def get_survey(db: Session, *, survey_id: str) -> Survey | None:
    return db.get(Survey, survey_id)


def list_surveys(db: Session) -> list[Survey]:
    return list(db.scalars(select(Survey).order_by(Survey.survey_id)))


def _require_survey(db: Session, survey_id: str) -> Survey:
    survey = db.get(Survey, survey_id)
    if survey is None:
        raise NotFound(f"No survey {survey_id!r}", field="survey_id")
    return survey


# -------------------------------------------------------------------------- invitations


@dataclass(frozen=True, slots=True)
class Occasion:
    """What prompted a survey: the journey stage and its context."""

    source_key: str
    stage: str
    channel: str | None = None
    store_id: str | None = None
    order_id: str | None = None
    ticket_id: str | None = None
    signals: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class InviteDecision:
    invited: bool
    reason: str  # "invited", "no_consent", "fatigue", "not_sampled", "inactive", "already"
    invitation: Invitation | None = None


def sampled(survey_id: str, source_key: str, rate: float) -> bool:
    """Whether this moment falls in the survey's sample: a hash, so replays agree."""
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"{survey_id}:{source_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def last_invited(db: Session, *, customer_id: str) -> datetime | None:
    """When the customer was last asked any survey."""
    at = db.scalar(
        select(func.max(Invitation.created_at)).where(Invitation.customer_id == customer_id)
    )
    return clock.as_utc(at) if at is not None else None


def invite(
    db: Session,
    *,
    survey_id: str,
    customer_id: str,
    moment: Occasion,
    commit: bool = True,
) -> InviteDecision:
    """Ask ``customer_id`` the survey about ``moment``, unless the survey is inactive, the
    moment is outside the sample, the customer has not consented to be contacted for the
    survey's purpose, or was asked any survey within the survey's fatigue days."""
    survey = _require_survey(db, survey_id)
    decision = _invite(db, survey, customer_id, moment)
    if commit:
        db.commit()
    return decision


def _invite(db: Session, survey: Survey, customer_id: str, moment: Occasion) -> InviteDecision:
    if not survey.active:
        return InviteDecision(False, "inactive")
    existing = db.scalar(
        select(Invitation).where(
            Invitation.survey_id == survey.survey_id, Invitation.source_key == moment.source_key
        )
    )
    if existing is not None:
        return InviteDecision(False, "already", existing)
    if not sampled(survey.survey_id, moment.source_key, survey.sampling_rate):
        return InviteDecision(False, "not_sampled")
    customer = customers.get_customer(db, customer_id=customer_id)
    # The consent gate: the survey's purpose granted, the profile active, not on the blocklist.
    if customer is None or not customers.may_contact(
        db, customer_id=customer_id, purpose=survey.consent_purpose
    ):
        return InviteDecision(False, "no_consent")
    now = clock.now()
    last = last_invited(db, customer_id=customer_id)
    if last is not None and now - last < timedelta(days=survey.fatigue_days):
        return InviteDecision(False, "fatigue")
    tier = loyalty.member_benefits(db, customer_id=customer_id).tier_id
    invitation = Invitation(
        invitation_id=new_id("inv"),
        survey_id=survey.survey_id,
        source_key=moment.source_key,
        customer_id=customer_id,
        locale=customer.locale,
        channel=moment.channel,
        store_id=moment.store_id,
        order_id=moment.order_id,
        ticket_id=moment.ticket_id,
        stage=moment.stage,
        tier=tier,
        signals=dict(moment.signals or {}),
        created_at=now,
        expires_at=now + timedelta(days=survey.link_days),
    )
    db.add(invitation)
    db.flush()
    log_event(
        db,
        type="survey_invited",
        channel=moment.channel or "web",
        customer_id=customer_id,
        properties={
            "invitation_id": invitation.invitation_id,
            "survey_id": survey.survey_id,
            "stage": moment.stage,
            "order_id": moment.order_id,
        },
    )
    return InviteDecision(True, "invited", invitation)


def get_invitation(db: Session, *, invitation_id: str) -> Invitation | None:
    return db.get(Invitation, invitation_id)


def order_signals(db: Session, *, order_id: str) -> dict[str, Any]:
    """What the customer lived through with this order: days late against the promise
    (negative: early) and whether it was their first order."""
    order = orders.get_order(db, order_id=order_id)
    if order is None:
        return {}
    signals: dict[str, Any] = {}
    if order.promised_delivery is not None and order.delivered_at is not None:
        delivered = clock.as_utc(order.delivered_at).date()
        signals["days_late"] = (delivered - order.promised_delivery).days
    if order.customer_id is not None:
        placed = clock.as_utc(order.placed_at)
        earlier = [
            o
            for o in orders.customer_orders(db, customer_id=order.customer_id, limit=500)
            if clock.as_utc(o.placed_at) < placed
        ]
        signals["first_purchase"] = not earlier
    return signals


# ---------------------------------------------------------------------------- answering


class AlreadyAnswered(Conflict):
    slug, title = "already-answered", "Already answered"


class LinkExpired(Problem):
    status, slug, title = 410, "link-expired", "Survey link expired"


def _detractor(kind: str, value: int) -> bool:
    """Answers that open a ticket: NPS 0-6, CSAT 1-2, CES 1-2 (very hard)."""
    if kind == "nps":
        return value <= 6
    return value <= 2


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
    and an answer after the link's expiry :class:`LinkExpired`. A detractor's answer opens a
    complaint ticket in the same transaction."""
    invitation = db.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound("No such survey invitation", field="invitation_id")
    survey = _require_survey(db, invitation.survey_id)
    _check(survey.kind, score_value)
    now = clock.now()
    if invitation.answered_at is not None:
        raise AlreadyAnswered("This survey has already been answered; thank you")
    if now >= clock.as_utc(invitation.expires_at):
        raise LinkExpired("This survey link has expired")
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
    """An answer given without an invitation (a kiosk, the app, a till tablet)."""
    survey = _require_survey(db, response.survey_id)
    _check(survey.kind, response.score)
    tier = None
    if response.customer_id is not None:
        if customers.get_customer(db, customer_id=response.customer_id) is None:
            raise NotFound(f"No customer {response.customer_id!r}", field="customer_id")
        tier = loyalty.member_benefits(db, customer_id=response.customer_id).tier_id
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
        type="survey_answered",
        channel=response.channel or "web",
        customer_id=response.customer_id,
        occurred_at=response.answered_at,
        properties={
            "response_id": response.response_id,
            "survey_id": survey.survey_id,
            "kind": survey.kind,
            "score": response.score,
        },
    )
    if _detractor(survey.kind, response.score):
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


# ------------------------------------------------------------------------------- scores

BREAKDOWNS = ("channel", "store", "stage", "tier", "survey")


@dataclass(frozen=True, slots=True)
class Keyed:
    key: str
    score: Score


def _responses(
    db: Session, *, kind: str, since: datetime | None, until: datetime | None
) -> list[SurveyResponse]:
    query = select(SurveyResponse).where(SurveyResponse.kind == kind)
    if since is not None:
        query = query.where(SurveyResponse.answered_at >= since)
    if until is not None:
        query = query.where(SurveyResponse.answered_at < until)
    return list(db.scalars(query.order_by(SurveyResponse.answered_at)))


def _key(response: SurveyResponse, by: str) -> str:
    value = {
        "channel": response.channel,
        "store": response.store_id,
        "stage": response.stage,
        "tier": response.tier,
        "survey": response.survey_id,
    }[by]
    return value or "(none)"


def period_of(at: datetime, period: str) -> str:
    at = clock.as_utc(at)
    if period == "week":
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "day":
        return at.strftime("%Y-%m-%d")
    return at.strftime("%Y-%m")


def overall_score(
    db: Session, *, kind: str, since: datetime | None = None, until: datetime | None = None
) -> Score:
    return score(kind, [r.score for r in _responses(db, kind=kind, since=since, until=until)])


def scores_by(
    db: Session,
    *,
    kind: str,
    by: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Keyed]:
    """The score per channel, store, journey stage, tier or survey, largest groups first."""
    if by not in BREAKDOWNS:
        raise InvalidInput(f"Break down by one of {', '.join(BREAKDOWNS)}", field="by")
    groups: dict[str, list[int]] = defaultdict(list)
    for response in _responses(db, kind=kind, since=since, until=until):
        groups[_key(response, by)].append(response.score)
    keyed = [Keyed(key, score(kind, values)) for key, values in groups.items()]
    return sorted(keyed, key=lambda k: (-k.score.n, k.key))


def trend(
    db: Session,
    *,
    kind: str,
    period: str = "month",
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Keyed]:
    """The score per period (``month``, ``week`` or ``day``), oldest first."""
    if period not in ("month", "week", "day"):
        raise InvalidInput("The period is month, week or day", field="period")
    groups: dict[str, list[int]] = defaultdict(list)
    for response in _responses(db, kind=kind, since=since, until=until):
        groups[period_of(response.answered_at, period)].append(response.score)
    return [Keyed(key, score(kind, groups[key])) for key in sorted(groups)]


def moments(
    db: Session, *, kind: str, since: datetime | None = None, until: datetime | None = None
) -> list[Moment]:
    """How much each experience signal moves the ``kind`` score (see :mod:`moments`)."""
    observations = [
        Observation(value_of(kind, r.score), r.signals or {})
        for r in _responses(db, kind=kind, since=since, until=until)
    ]
    return moments_of_truth(observations)


def comment_themes(
    db: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    period: str = "month",
    per_period: int = 6,
) -> list[Theme]:
    """Themes of the survey comments per period and language, and of the published reviews
    (review stars count as values 20-100)."""
    comments: list[Comment] = []
    for kind in ("nps", "csat", "ces"):
        for r in _responses(db, kind=kind, since=since, until=until):
            if r.comment:
                label = period_of(r.answered_at, period)
                comments.append(Comment(label, r.locale, r.comment, value_of(kind, r.score)))
    return extract_themes(comments, per_period=per_period)


# ------------------------------------------------------------------- targets and alerts


def set_target(db: Session, *, target: TargetIn) -> ScoreTarget:
    """Create or change the target of a kind of score for the business, a store or a channel."""
    if target.scope == "all" and target.scope_value:
        raise InvalidInput("A business-wide target names no store or channel", field="scope_value")
    if target.scope != "all" and not target.scope_value:
        raise InvalidInput(f"Name the {target.scope}", field="scope_value")
    row = db.scalar(
        select(ScoreTarget).where(
            ScoreTarget.kind == target.kind,
            ScoreTarget.scope == target.scope,
            ScoreTarget.scope_value == target.scope_value,
        )
    )
    if row is None:
        row = ScoreTarget(
            kind=target.kind,
            scope=target.scope,
            scope_value=target.scope_value,
            created_at=clock.now(),
        )
        db.add(row)
    row.target = target.target
    row.window_days = target.window_days
    row.min_responses = target.min_responses
    db.commit()
    return row


@dataclass(frozen=True, slots=True)
class TargetStatus:
    target: ScoreTarget
    score: Score

    @property
    def below(self) -> bool:
        return (
            self.score.value is not None
            and self.score.n >= self.target.min_responses
            and self.score.value < self.target.target
        )


def target_status(db: Session, *, now: datetime | None = None) -> list[TargetStatus]:
    """Every target with the score over its window ending now."""
    at = now or clock.now()
    found = []
    for target in db.scalars(select(ScoreTarget).order_by(ScoreTarget.id)):
        values = [
            r.score
            for r in _responses(
                db,
                kind=target.kind,
                since=at - timedelta(days=target.window_days),
                until=at + timedelta(microseconds=1),
            )
            if target.scope == "all"
            or (target.scope == "store" and r.store_id == target.scope_value)
            or (target.scope == "channel" and r.channel == target.scope_value)
        ]
        found.append(TargetStatus(target, score(target.kind, values)))
    return found


def check_targets(db: Session, *, now: datetime | None = None) -> list[ScoreAlert]:
    """Raise an alert (once a day per target) for every score below its target."""
    at = now or clock.now()
    day = at.strftime("%Y-%m-%d")
    raised = []
    for status in target_status(db, now=at):
        if not status.below:
            continue
        exists = db.scalar(
            select(ScoreAlert.id).where(
                ScoreAlert.target_id == status.target.id, ScoreAlert.day == day
            )
        )
        if exists is not None:
            continue
        assert status.score.value is not None
        alert = ScoreAlert(
            target_id=status.target.id,
            day=day,
            score=round(status.score.value, 2),
            responses=status.score.n,
            raised_at=at,
        )
        db.add(alert)
        log_event(
            db,
            type="score_below_target",
            channel="web",
            properties={
                "kind": status.target.kind,
                "scope": status.target.scope,
                "scope_value": status.target.scope_value,
                "target": status.target.target,
                "score": alert.score,
                "responses": alert.responses,
            },
        )
        raised.append(alert)
    db.commit()
    return raised


def recent_alerts(db: Session, *, limit: int = 20) -> list[tuple[ScoreAlert, ScoreTarget]]:
    rows = db.execute(
        select(ScoreAlert, ScoreTarget)
        .join(ScoreTarget, ScoreTarget.id == ScoreAlert.target_id)
        .order_by(ScoreAlert.raised_at.desc(), ScoreAlert.id.desc())
        .limit(limit)
    ).all()
    return [(alert, target) for alert, target in rows]


# ------------------------------------------------------------------------------ reviews

DUPLICATE_LOOKBACK = timedelta(days=90)
DUPLICATE_CANDIDATES = 2000


def address_digest(address: str | None) -> str | None:
    if not address:
        return None
    return hashlib.sha256(f"address:{address.strip()}".encode()).hexdigest()


def _recent_count(db: Session, column: Any, value: str | None, since: datetime) -> int:
    if value is None:
        return 0
    return int(
        db.scalar(
            select(func.count())
            .select_from(Review)
            .where(column == value, Review.created_at >= since)
        )
        or 0
    )


def _candidates(db: Session, since: datetime) -> list[screening.Candidate]:
    rows = db.execute(
        select(Review.review_id, Review.customer_id, Review.sku, Review.title, Review.body)
        .where(Review.created_at >= since, Review.status != "rejected")
        .order_by(Review.created_at.desc())
        .limit(DUPLICATE_CANDIDATES)
    ).all()
    return [
        screening.Candidate(rid, cid, sku, f"{title} {body}".strip())
        for rid, cid, sku, title, body in rows
    ]


def submit_review(
    db: Session,
    *,
    review: ReviewIn,
    at: datetime | None = None,
    before_commit: BeforeCommit | None = None,
) -> Review:
    """Screen a review and publish it, or hold it for a moderator with the reasons. The
    verified badge needs the reviewer to have received the product; a published verified
    review logs ``review_verified``, which the loyalty program rewards.

    One review per reviewer, product and purchase: a buyer's review is of the first line
    delivered to them (in ``order_id``, when given) they have not reviewed yet; someone who
    did not receive the product may review it once. Another is ``409`` naming ``sku`` (or
    ``order_id``); two submissions at once are settled by the database's unique index."""
    now = at or clock.now()
    customer = (
        customers.get_customer(db, customer_id=review.customer_id) if review.customer_id else None
    )
    is_customer = customer is not None and customer.status == "active"
    purchase_key = _purchase_to_review(db, review, is_customer=is_customer)
    is_buyer = purchase_key != ""
    window = now - timedelta(hours=screening.BURST_WINDOW_HOURS)
    digest = address_digest(review.ip_address)
    text = f"{review.title} {review.text}".strip()
    facts = screening.Facts(
        rating=review.rating,
        text=text,
        sku=review.sku,
        customer_id=review.customer_id,
        is_customer=is_customer,
        is_buyer=is_buyer,
        device_reviews=_recent_count(db, Review.device_id, review.device_id, window),
        address_reviews=_recent_count(db, Review.address_digest, digest, window),
    )
    reasons = screening.screen(facts, _candidates(db, now - DUPLICATE_LOOKBACK))
    row = Review(
        review_id=new_id("rev"),
        customer_id=review.customer_id,
        sku=review.sku,
        order_id=purchase_key.split("#", 1)[0] if is_buyer else review.order_id,
        purchase_key=purchase_key,
        rating=review.rating,
        title=review.title,
        body=review.text,
        photos=[str(url) for url in review.photos],
        locale=review.locale,
        verified=is_buyer,
        status="flagged" if reasons else "published",
        reasons=[{"code": r.code, "detail": r.detail} for r in reasons],
        device_id=review.device_id,
        address_digest=digest,
        created_at=now,
    )
    db.add(row)
    try:
        db.flush()
    except IntegrityError:
        # Another submission of the same review won the race for the unique index.
        db.rollback()
        raise _already_reviewed(review) from None
    log_event(
        db,
        type="review_submitted",
        channel="web",
        customer_id=review.customer_id if is_customer else None,
        occurred_at=now,
        properties={
            "review_id": row.review_id,
            "sku": row.sku,
            "rating": row.rating,
            "status": row.status,
            "reasons": [r.code for r in reasons],
        },
    )
    _reward_if_due(db, row)
    if before_commit is not None:
        before_commit(db, row)
    db.commit()
    return row


def _already_reviewed(review: ReviewIn, existing: str | None = None) -> Conflict:
    field = "order_id" if review.order_id else "sku"
    what = f"{review.sku} from order {review.order_id}" if review.order_id else review.sku
    return Conflict(
        f"{review.customer_id} has already reviewed {what}"
        + (f" (review {existing})" if existing else "")
        + ": one review per product and purchase",
        field=field,
        review_id=existing,
    )


def _purchase_to_review(db: Session, review: ReviewIn, *, is_customer: bool) -> str:
    """The purchase key a new review takes: the reviewer's first delivered line of the product
    (in ``order_id`` when given) not yet reviewed, "" when they never received it; or the
    ``409`` when every one of them is reviewed already."""
    if review.customer_id is None:
        return ""  # anonymous: not a buyer, and nothing to hold a second review against
    taken = {
        str(key): str(review_id)
        for key, review_id in db.execute(
            select(Review.purchase_key, Review.review_id).where(
                Review.customer_id == review.customer_id, Review.sku == review.sku
            )
        )
    }
    lines = (
        orders.delivered_lines(
            db, customer_id=review.customer_id, sku=review.sku, order_id=review.order_id
        )
        if is_customer
        else []
    )
    for order_id, line_no in lines:
        key = f"{order_id}#{line_no}"
        if key not in taken:
            return key
    if lines:
        last_key = f"{lines[-1][0]}#{lines[-1][1]}"
        raise _already_reviewed(review, taken.get(last_key))
    if "" in taken:
        raise _already_reviewed(review, taken[""])
    return ""


@dataclass(frozen=True, slots=True)
class ImportedReview:
    """A review from history (the demo, another platform), already moderated there."""

    customer_id: str | None
    sku: str
    rating: int
    title: str
    text: str
    written_at: datetime
    order_id: str | None = None
    locale: str = "en"


def import_reviews(db: Session, *, reviews: Sequence[ImportedReview]) -> int:
    """Load published reviews moderated elsewhere: not screened again and not rewarded
    (their time has passed), but a badge only where the reviewer received the product. A
    reviewer's repeat of a product and purchase already reviewed is skipped (one review per
    reviewer, product and purchase). Returns how many were loaded."""
    loaded = 0
    seen: set[tuple[str, str, str]] = set()
    for imported in reviews:
        purchase_key = ""
        if imported.customer_id is not None:
            lines = orders.delivered_lines(
                db, customer_id=imported.customer_id, sku=imported.sku, order_id=imported.order_id
            )
            purchase_key = f"{lines[0][0]}#{lines[0][1]}" if lines else ""
            once = (imported.customer_id, imported.sku, purchase_key)
            if once in seen or db.scalar(
                select(Review.review_id).where(
                    Review.customer_id == imported.customer_id,
                    Review.sku == imported.sku,
                    Review.purchase_key == purchase_key,
                )
            ):
                continue
            seen.add(once)
        verified = purchase_key != ""
        loaded += 1
        db.add(
            Review(
                review_id=new_id("rev"),
                customer_id=imported.customer_id,
                sku=imported.sku,
                order_id=imported.order_id,
                purchase_key=purchase_key,
                rating=min(max(imported.rating, 1), 5),
                title=imported.title[:200],
                body=imported.text,
                photos=[],
                locale=imported.locale,
                verified=verified,
                status="published",
                reasons=[],
                created_at=imported.written_at,
                rewarded=True,
            )
        )
    db.commit()
    return loaded


def _reward_if_due(db: Session, review: Review) -> None:
    """Published and verified, and not yet announced: log ``review_verified`` (once). The
    flag is claimed with a guarded UPDATE, so two moderators publishing at once announce it
    once; the loyalty award is unique per review besides."""
    if review.status != "published" or not review.verified or review.rewarded:
        return
    claimed = db.execute(
        update(Review)
        .where(Review.review_id == review.review_id, Review.rewarded.is_(False))
        .values(rewarded=True)
        .execution_options(synchronize_session=False)
    )
    review.rewarded = True
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return
    log_event(
        db,
        type="review_verified",
        channel="web",
        customer_id=review.customer_id,
        occurred_at=review.created_at,
        properties={"review_id": review.review_id, "sku": review.sku, "rating": review.rating},
    )


def moderate_review(db: Session, *, review_id: str, decision: str, moderator: str) -> Review:
    """Publish or reject a review held by screening (or take a published one down)."""
    review = db.get(Review, review_id)
    if review is None:
        raise NotFound(f"No review {review_id!r}", field="review_id")
    if decision not in ("publish", "reject"):
        raise InvalidInput("Decide publish or reject", field="decision")
    review.status = "published" if decision == "publish" else "rejected"
    review.moderated_at = clock.now()
    review.moderated_by = moderator
    _reward_if_due(db, review)
    db.commit()
    return review


def get_review(db: Session, *, review_id: str) -> Review | None:
    return db.get(Review, review_id)


def moderation_queue(db: Session, *, limit: int = 100) -> list[Review]:
    """Reviews held by screening, oldest first."""
    return list(
        db.scalars(
            select(Review)
            .where(Review.status == "flagged")
            .order_by(Review.created_at, Review.review_id)
            .limit(limit)
        )
    )


def product_reviews(db: Session, *, sku: str, limit: int = 50) -> list[Review]:
    """Published reviews of a product, verified first, newest first."""
    return list(
        db.scalars(
            select(Review)
            .where(Review.sku == sku, Review.status == "published")
            .order_by(Review.verified.desc(), Review.created_at.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True, slots=True)
class RatingSummary:
    sku: str
    reviews: int
    verified: int
    average: float | None
    weighted: float | None  # pulled towards the shop-wide mean by PRIOR_WEIGHT reviews
    distribution: dict[str, int]


PRIOR_WEIGHT = 5


def rating_summaries(db: Session, *, skus: Iterable[str]) -> dict[str, RatingSummary]:
    """Published-review summaries for these products (social proof for the storefront and
    recommendations). The weighted average adds ``PRIOR_WEIGHT`` reviews at the shop's mean,
    so two five-star reviews do not outrank two hundred at 4.8."""
    wanted = sorted(set(skus))
    prior = db.scalar(select(func.avg(Review.rating)).where(Review.status == "published"))
    prior_mean = float(prior) if prior is not None else None
    counts: dict[str, dict[int, int]] = defaultdict(dict)
    verified: dict[str, int] = defaultdict(int)
    if wanted:
        for sku, rating, is_verified, count in db.execute(
            select(Review.sku, Review.rating, Review.verified, func.count())
            .where(Review.sku.in_(wanted), Review.status == "published")
            .group_by(Review.sku, Review.rating, Review.verified)
        ):
            counts[sku][rating] = counts[sku].get(rating, 0) + int(count)
            if is_verified:
                verified[sku] += int(count)
    summaries = {}
    for sku in wanted:
        by_rating = counts.get(sku, {})
        n = sum(by_rating.values())
        total = sum(r * c for r, c in by_rating.items())
        average = total / n if n else None
        weighted = (
            (total + PRIOR_WEIGHT * prior_mean) / (n + PRIOR_WEIGHT)
            if prior_mean is not None and n
            else None
        )
        summaries[sku] = RatingSummary(
            sku=sku,
            reviews=n,
            verified=verified.get(sku, 0),
            average=round(average, 2) if average is not None else None,
            weighted=round(weighted, 2) if weighted is not None else None,
            distribution={str(r): by_rating.get(r, 0) for r in range(1, 6)},
        )
    return summaries


def rating_summary(db: Session, *, sku: str) -> RatingSummary:
    return rating_summaries(db, skus=[sku])[sku]


def count_reviews(db: Session) -> dict[str, int]:
    rows = db.execute(select(Review.status, func.count()).group_by(Review.status)).all()
    return {str(status): int(count) for status, count in rows}


# ------------------------------------------------------------------------------ tickets

# Base priority by issue, and what the customer's support level and value add.
ISSUE_WEIGHT = {"complaint": 30, "delivery_problem": 30, "return_problem": 20, "question": 10}
LEVEL_WEIGHT = {"standard": 0, "priority": 20, "dedicated": 40}
# First response due within these hours, by issue; better support levels get a fraction.
SLA_HOURS = {"complaint": 24, "delivery_problem": 24, "return_problem": 48, "question": 72}
LEVEL_SLA_FACTOR = {"standard": 1.0, "priority": 0.5, "dedicated": 0.25}
HIGH_VALUE_MINOR = 50_000  # spend from which a customer's value adds to the priority


def prioritise(kind: str, support_level: str, value_minor: int) -> tuple[int, list[str]]:
    """The ticket's priority (higher first) and why."""
    reasons = [f"{kind.replace('_', ' ')} +{ISSUE_WEIGHT[kind]}"]
    priority = ISSUE_WEIGHT[kind]
    level = LEVEL_WEIGHT.get(support_level, 0)
    if level:
        priority += level
        reasons.append(f"{support_level} support +{level}")
    value_points = min(value_minor // HIGH_VALUE_MINOR, 4) * 5
    if value_points:
        priority += value_points
        reasons.append(f"customer value {value_minor / 100:,.0f} +{value_points}")
    return priority, reasons


def sla_due(kind: str, support_level: str, opened_at: datetime) -> datetime:
    """When the ticket is due: every ticket has a due time, better tiers sooner."""
    hours = SLA_HOURS[kind] * LEVEL_SLA_FACTOR.get(support_level, 1.0)
    return opened_at + timedelta(hours=hours)


def customer_value(db: Session, *, customer_id: str) -> int:
    """What the customer has spent (orders not cancelled, latest 500)."""
    return sum(
        o.total_minor
        for o in orders.customer_orders(db, customer_id=customer_id, limit=500)
        if o.status != "cancelled"
    )


def open_ticket(
    db: Session,
    *,
    ticket: TicketIn,
    response_id: str | None = None,
    opened_at: datetime | None = None,
    commit: bool = True,
    before_commit: BeforeCommit | None = None,
) -> Ticket:
    """Open a ticket: its priority comes from the issue, the customer's support level (their
    tier or paid plan) and their value; its SLA due time from the issue and support level."""
    now = opened_at or clock.now()
    tier, level, value = None, "standard", 0
    if ticket.customer_id is not None:
        if customers.get_customer(db, customer_id=ticket.customer_id) is None:
            raise NotFound(f"No customer {ticket.customer_id!r}", field="customer_id")
        benefits = loyalty.member_benefits(db, customer_id=ticket.customer_id)
        tier, level = benefits.tier_id, benefits.support_priority
        value = customer_value(db, customer_id=ticket.customer_id)
    priority, reasons = prioritise(ticket.kind, level, value)
    row = Ticket(
        ticket_id=new_id("tkt"),
        customer_id=ticket.customer_id,
        order_id=ticket.order_id,
        kind=ticket.kind,
        channel=ticket.channel,
        subject=ticket.subject,
        body=ticket.body,
        status="open",
        priority=priority,
        priority_reasons=reasons,
        tier=tier,
        support_level=level,
        customer_value_minor=min(value, 2**31 - 1),
        sla_due_at=sla_due(ticket.kind, level, now),
        opened_at=now,
        response_id=response_id,
    )
    db.add(row)
    db.flush()
    log_event(
        db,
        type="ticket_opened",
        channel=ticket.channel if ticket.channel != "survey" else "web",
        customer_id=ticket.customer_id,
        occurred_at=now,
        properties={
            "ticket_id": row.ticket_id,
            "kind": row.kind,
            "order_id": row.order_id,
            "priority": priority,
        },
    )
    if before_commit is not None:
        before_commit(db, row)
    if commit:
        db.commit()
    return row


def resolve_ticket(
    db: Session,
    *,
    ticket_id: str,
    resolution: str,
    resolved_by: str,
    apology_points: int = 0,
    before_commit: BeforeCommit | None = None,
) -> Ticket:
    """Close a ticket, granting apology points through the loyalty ledger if asked (the
    ledger transaction is recorded on the ticket, in the same database transaction)."""
    ticket = db.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"No ticket {ticket_id!r}", field="ticket_id")
    if ticket.status != "open":
        raise Conflict("The ticket is already resolved", field="ticket_id")
    if apology_points and ticket.customer_id is None:
        raise InvalidInput("Apology points need a customer on the ticket", field="apology_points")
    now = clock.now()
    if apology_points:
        posted = loyalty.earn(
            db,
            customer_id=ticket.customer_id or "",
            points=apology_points,
            reason=f"Apology for ticket {ticket.ticket_id}",
            order_id=ticket.order_id,
            rule_id="ticket-apology",
            channel="call_center",
            commit=False,
        )
        ticket.apology_points = apology_points
        ticket.apology_transaction_id = posted.transaction_id
    ticket.status = "resolved"
    ticket.resolution = resolution
    ticket.resolved_by = resolved_by
    ticket.resolved_at = now
    opened = clock.as_utc(ticket.opened_at)
    log_event(
        db,
        type="ticket_resolved",
        channel="call_center",
        customer_id=ticket.customer_id,
        occurred_at=now,
        properties={
            "ticket_id": ticket.ticket_id,
            "kind": ticket.kind,
            "order_id": ticket.order_id,
            "resolution_hours": round((now - opened).total_seconds() / 3600, 2),
            "within_sla": now <= clock.as_utc(ticket.sla_due_at),
            "apology_points": apology_points,
        },
    )
    if before_commit is not None:
        before_commit(db, ticket)
    db.commit()
    return ticket


def get_ticket(db: Session, *, ticket_id: str) -> Ticket | None:
    return db.get(Ticket, ticket_id)


def ticket_queue(db: Session, *, limit: int = 100) -> list[Ticket]:
    """Open tickets, most urgent first: priority, then the earliest SLA due time."""
    return list(
        db.scalars(
            select(Ticket)
            .where(Ticket.status == "open")
            .order_by(Ticket.priority.desc(), Ticket.sla_due_at, Ticket.ticket_id)
            .limit(limit)
        )
    )


@dataclass(frozen=True, slots=True)
class SlaLine:
    key: str
    tickets: int
    resolved: int
    resolved_in_time: int
    breached: int  # resolved late, or open past due
    open_overdue: int


def sla_report(
    db: Session, *, since: datetime | None = None, now: datetime | None = None
) -> list[SlaLine]:
    """SLA breaches per issue and support level, for tickets opened since ``since``."""
    at = now or clock.now()
    query = select(Ticket)
    if since is not None:
        query = query.where(Ticket.opened_at >= since)
    lines: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for ticket in db.scalars(query):
        due = clock.as_utc(ticket.sla_due_at)
        key = f"{ticket.kind} / {ticket.support_level}"
        line = lines[key]
        line[0] += 1
        if ticket.resolved_at is not None:
            line[1] += 1
            if clock.as_utc(ticket.resolved_at) <= due:
                line[2] += 1
            else:
                line[3] += 1
        elif at > due:
            line[3] += 1
            line[4] += 1
    return [SlaLine(key, *values) for key, values in sorted(lines.items())]


def ticket_counts(db: Session) -> dict[str, int]:
    rows = db.execute(select(Ticket.status, func.count()).group_by(Ticket.status)).all()
    return {str(status): int(count) for status, count in rows}


# --------------------------------------------------------------- triggers from the log

# Which event prompts which survey trigger.
_EVENT_TRIGGERS = {
    "order_delivered": "after_delivery",
    "order_collected": "after_delivery",
    "store_visited": "after_store_visit",
    "ticket_resolved": "after_ticket_closed",
    "order_placed": "after_purchase",
}


def _moment_of(db: Session, event: Any) -> Occasion | None:
    props: dict[str, Any] = event.properties or {}
    kind = event.type
    if kind in ("order_delivered", "order_collected", "order_placed"):
        order_id = props.get("order_id")
        if not order_id:
            return None
        signals = order_signals(db, order_id=str(order_id))
        if kind == "order_collected" and isinstance(props.get("wait_minutes"), int | float):
            signals["pickup_wait_minutes"] = float(props["wait_minutes"])
        if kind == "order_placed" and props.get("fulfilment") not in (None, "in_store"):
            signals.pop("days_late", None)
        stage = "after_purchase" if kind == "order_placed" else "after_delivery"
        return Occasion(
            source_key=f"order:{order_id}",
            stage=stage,
            channel=event.channel,
            store_id=props.get("store_id"),
            order_id=str(order_id),
            signals=signals,
        )
    if kind == "store_visited":
        store_id = props.get("store_id")
        signals = {}
        if isinstance(props.get("wait_minutes"), int | float):
            signals["pickup_wait_minutes"] = float(props["wait_minutes"])
        return Occasion(
            source_key=f"visit:{event.event_id}",
            stage="after_store_visit",
            channel="store",
            store_id=str(store_id) if store_id else None,
            signals=signals,
        )
    if kind == "ticket_resolved":
        return Occasion(
            source_key=f"ticket:{props.get('ticket_id')}",
            stage="after_ticket_closed",
            channel="call_center",
            order_id=props.get("order_id"),
            ticket_id=props.get("ticket_id"),
            signals={"resolution_hours": props.get("resolution_hours")},
        )
    return None


def process_feedback_events(db: Session, events: Sequence[Any]) -> None:
    """Invite customers to the surveys whose trigger an event stands for (the processor's
    handler; idempotent: one invitation per survey and moment)."""
    surveys: dict[str, list[Survey]] = defaultdict(list)
    for survey in db.scalars(select(Survey).where(Survey.active.is_(True))):
        surveys[survey.trigger].append(survey)
    if not surveys:
        return
    for event in events:
        trigger = _EVENT_TRIGGERS.get(event.type)
        if trigger is None or not surveys.get(trigger) or event.customer_id is None:
            continue
        moment = _moment_of(db, event)
        if moment is None:
            continue
        for survey in surveys[trigger]:
            if survey.channel is not None and survey.channel != event.channel:
                continue
            if clock.as_utc(event.occurred_at) < clock.now() - timedelta(days=survey.link_days):
                continue  # history replayed: too late to ask about it
            try:
                with db.begin_nested():
                    _invite(db, survey, str(event.customer_id), moment)
            except IntegrityError:
                continue  # invited concurrently


# ------------------------------------------------------------------------------ privacy
# The feedback domain's part of export and erasure (rapport.flows.privacy).

PRIVACY_TABLES = (
    "feedback_invitations",
    "feedback_responses",
    "feedback_reviews",
    "feedback_tickets",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """The person's survey invitations and answers (with comments), reviews and tickets."""
    ids = list(subject.customer_ids)
    return {
        "survey_invitations": [
            {
                "invitation_id": i.invitation_id,
                "survey_id": i.survey_id,
                "created_at": _iso(i.created_at),
                "expires_at": _iso(i.expires_at),
                "answered_at": _iso(i.answered_at),
            }
            for i in db.scalars(
                select(Invitation)
                .where(Invitation.customer_id.in_(ids))
                .order_by(Invitation.created_at)
            )
        ],
        "survey_responses": [
            {
                "survey_id": r.survey_id,
                "kind": r.kind,
                "score": r.score,
                "comment": r.comment,
                "answers": r.answers,
                "order_id": r.order_id,
                "answered_at": _iso(r.answered_at),
            }
            for r in db.scalars(
                select(SurveyResponse)
                .where(SurveyResponse.customer_id.in_(ids))
                .order_by(SurveyResponse.answered_at)
            )
        ],
        "reviews": [
            {
                "review_id": r.review_id,
                "sku": r.sku,
                "rating": r.rating,
                "title": r.title,
                "body": r.body,
                "photos": r.photos,
                "status": r.status,
                "created_at": _iso(r.created_at),
            }
            for r in db.scalars(
                select(Review).where(Review.customer_id.in_(ids)).order_by(Review.created_at)
            )
        ],
        "tickets": [
            {
                "ticket_id": t.ticket_id,
                "kind": t.kind,
                "channel": t.channel,
                "subject": t.subject,
                "body": t.body,
                "status": t.status,
                "opened_at": _iso(t.opened_at),
                "resolved_at": _iso(t.resolved_at),
                "resolution": t.resolution,
                "apology_points": t.apology_points,
            }
            for t in db.scalars(
                select(Ticket).where(Ticket.customer_id.in_(ids)).order_by(Ticket.opened_at)
            )
        ],
    }


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    """Scores, ratings and ticket times stay under the random customer id (NPS, rating
    summaries and SLA reports add up); what the person wrote goes: survey comments and
    free-text answers, review titles, texts and photos (and the device and network digests
    kept for screening), ticket subjects, messages and resolutions. Unanswered survey links
    expire now."""
    ids = list(subject.customer_ids)
    now = clock.now()
    db.execute(
        update(SurveyResponse)
        .where(SurveyResponse.customer_id.in_(ids))
        .values(comment=None, answers={})
    )
    db.execute(
        update(Invitation)
        .where(Invitation.customer_id.in_(ids), Invitation.answered_at.is_(None))
        .where(Invitation.expires_at > now)
        .values(expires_at=now)
    )
    db.execute(
        update(Review)
        .where(Review.customer_id.in_(ids))
        .values(title="", body="", photos=[], device_id=None, address_digest=None)
    )
    db.execute(
        update(Ticket)
        .where(Ticket.customer_id.in_(ids))
        .values(subject="(erased)", body="", resolution=None)
    )
