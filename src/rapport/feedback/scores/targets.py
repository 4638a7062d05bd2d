"""Score targets for the business, a store or a channel, their status over their windows,
and the alerts raised (once a day per target) when a score is below its target."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.events.service import log_event
from rapport.feedback.events import ScoreBelowTarget
from rapport.feedback.models import ScoreAlert, ScoreTarget
from rapport.feedback.schemas import Channel, TargetIn
from rapport.feedback.scores.arithmetic import Score, score, score_range
from rapport.feedback.scores.reports import responses_of_kind
from rapport.platform import clock
from rapport.platform.errors import InvalidInput


def set_target(db: Session, *, target: TargetIn) -> ScoreTarget:
    """Create or change the target of a kind of score for the business, a store or a channel."""
    if target.scope == "all" and target.scope_value:
        raise InvalidInput("A business-wide target names no store or channel", field="scope_value")
    if target.scope != "all" and not target.scope_value:
        raise InvalidInput(f"Name the {target.scope}", field="scope_value")
    low, high = score_range(target.kind)
    if not low <= target.target <= high:
        raise InvalidInput(
            f"A {target.kind.upper()} target is {low:g} to {high:g}, as the score can be",
            field="target",
        )
    if target.scope == "store" and catalog.get_store(db, store_id=target.scope_value) is None:
        raise InvalidInput(f"No store {target.scope_value!r} in the catalogue", field="scope_value")
    channels = get_args(Channel)
    if target.scope == "channel" and target.scope_value not in channels:
        raise InvalidInput(
            f"No channel {target.scope_value!r}: use one of {', '.join(channels)}",
            field="scope_value",
        )
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
    def state(self) -> Literal["too_few", "below", "on_target"]:
        """The one judgement every page shows: too few answers to judge (none included),
        else below target or on target."""
        if self.score.value is None or self.score.n < self.target.min_responses:
            return "too_few"
        return "below" if self.score.value < self.target.target else "on_target"

    @property
    def below(self) -> bool:
        return self.state == "below"


def target_status(db: Session, *, now: datetime | None = None) -> list[TargetStatus]:
    """Every target with the score over its window ending now."""
    at = now or clock.now()
    found = []
    for target in db.scalars(select(ScoreTarget).order_by(ScoreTarget.id)):
        values = [
            r.score
            for r in responses_of_kind(
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
            ScoreBelowTarget(
                kind=status.target.kind,
                scope=status.target.scope,
                scope_value=status.target.scope_value,
                target=status.target.target,
                score=alert.score,
                responses=alert.responses,
            ),
            channel="web",
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
