"""Score reports over the stored answers: the score overall, per channel, store, stage, tier
or survey, per period, the moments of truth and the comment themes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.feedback.models import SurveyResponse
from rapport.feedback.scores.arithmetic import Score, score, score_range, unhappy, value_of
from rapport.feedback.scores.moments import Moment, Observation, moments_of_truth
from rapport.feedback.scores.themes import Comment, Theme, extract_themes
from rapport.platform import clock
from rapport.platform.errors import InvalidInput

BREAKDOWNS = ("channel", "store", "stage", "tier", "survey")


@dataclass(frozen=True, slots=True)
class Keyed:
    key: str
    score: Score


def responses_of_kind(
    db: Session, *, kind: str, since: datetime | None, until: datetime | None
) -> list[SurveyResponse]:
    """The ``kind`` answers given in ``[since, until)``, oldest first."""
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
    return score(
        kind, [r.score for r in responses_of_kind(db, kind=kind, since=since, until=until)]
    )


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
    for response in responses_of_kind(db, kind=kind, since=since, until=until):
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
    for response in responses_of_kind(db, kind=kind, since=since, until=until):
        groups[period_of(response.answered_at, period)].append(response.score)
    return [Keyed(key, score(kind, groups[key])) for key in sorted(groups)]


def moments(
    db: Session, *, kind: str, since: datetime | None = None, until: datetime | None = None
) -> list[Moment]:
    """How much each experience signal moves the ``kind`` score (see :mod:`moments`)."""
    observations = [
        Observation(value_of(kind, r.score), r.signals or {})
        for r in responses_of_kind(db, kind=kind, since=since, until=until)
    ]
    return moments_of_truth(observations, value_range=score_range(kind))


def comment_themes(
    db: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    period: str = "month",
    per_period: int = 6,
    kind: str | None = None,
) -> list[Theme]:
    """Themes of the survey comments per period and language (of one ``kind`` of survey, or
    all), each with the share of unhappy answers and, when one kind, their mean value."""
    comments: list[Comment] = []
    for one in (kind,) if kind else ("nps", "csat", "ces"):
        for r in responses_of_kind(db, kind=one, since=since, until=until):
            if r.comment:
                label = period_of(r.answered_at, period)
                comments.append(
                    Comment(
                        label,
                        r.locale,
                        r.comment,
                        value_of(one, r.score),
                        kind=one,
                        unhappy=unhappy(one, r.score),
                    )
                )
    return extract_themes(comments, per_period=per_period)
