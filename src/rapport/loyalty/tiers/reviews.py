"""Tier reviews: a member's qualifying value over the policy's window, re-placing one member
on the ladder (upgrades as orders come in), taking back an upgrade a cancelled order earned
(``review_after_cancellation``), and the daily review of members whose review date has come
(renewals and downgrades), and every member's review when the ladder's basis changes
(``recompute_tiers``). A move to another tier appends ``tier_changed`` in the same
transaction as its tier history row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rapport.events.service import log_event
from rapport.loyalty.events import TierChanged
from rapport.loyalty.models import QualifyingActivity, TierChangeRecord, TierStanding
from rapport.loyalty.program.versions import tier_policy
from rapport.loyalty.tiers.policy import TierPolicy, review, window_start
from rapport.loyalty.tiers.policy import TierStanding as Standing
from rapport.platform import clock, jobs
from rapport.platform.models import Job


def qualifying_value(db: Session, *, customer_id: str, policy: TierPolicy, at: datetime) -> int:
    column = (
        QualifyingActivity.spend_minor if policy.basis == "spend" else QualifyingActivity.points
    )
    total = db.scalar(
        select(func.coalesce(func.sum(column), 0)).where(
            QualifyingActivity.customer_id == customer_id,
            QualifyingActivity.occurred_at > window_start(at, policy),
            QualifyingActivity.occurred_at <= at,
        )
    )
    return max(int(total or 0), 0)


# Why a tier was taken back (the history row's and tier_changed's ``reason``).
ORDER_CANCELLED = "order cancelled"


def review_tier(
    db: Session,
    *,
    customer_id: str,
    at: datetime,
    start: Standing | None = None,
    reason: str | None = None,
) -> str | None:
    """Re-place the member on the ladder at ``at``; records and returns any change. With
    ``start``, the review starts from that standing instead of the one held (a cancelled
    order's upgrade taken back): a move from the tier held is then an upgrade or a downgrade
    by the ladder's order, whatever the review says of ``start``. ``reason`` says why in the
    history row and the event (none for a plain review)."""
    policy = tier_policy(db, at=at)
    standing = db.get(TierStanding, customer_id)
    current = (
        None if standing is None else Standing(standing.tier_id, standing.since, standing.review_at)
    )
    value = qualifying_value(db, customer_id=customer_id, policy=policy, at=at)
    result = review(policy, start if start is not None else current, value, at)
    if start is not None and current is not None:
        was, placed = policy.rank(current.tier_id), policy.rank(result.standing.tier_id)
        moved: Literal["upgrade", "downgrade"] | None = (
            "upgrade" if placed > was else "downgrade" if placed < was else None
        )
        result = replace(result, change=moved)
    now = clock.now()
    if standing is None:
        standing = TierStanding(customer_id=customer_id)
        db.add(standing)
    standing.tier_id = result.standing.tier_id
    standing.since = result.standing.since
    standing.review_at = result.standing.review_at
    standing.qualifying_value = value
    standing.updated_at = now
    if result.change is not None:
        db.add(
            TierChangeRecord(
                customer_id=customer_id,
                from_tier=current.tier_id if current else None,
                to_tier=result.standing.tier_id,
                change=result.change,
                qualifying_value=value,
                changed_at=at,
                reason=reason,
            )
        )
        # Customers without a standing are in the base tier: placing one there is no move.
        held = policy.tier(current.tier_id if current else None).id
        if result.change in ("upgrade", "downgrade") and held != result.standing.tier_id:
            log_event(
                db,
                TierChanged(
                    from_tier=held,
                    to_tier=result.standing.tier_id,
                    change=result.change,
                    qualifying_value=value,
                    review_at=clock.as_utc(result.standing.review_at).isoformat(),
                    reason=reason,
                ),
                channel="web",
                customer_id=customer_id,
                occurred_at=at,
            )
    db.flush()
    return result.change


def review_after_cancellation(
    db: Session, *, customer_id: str, placed_at: datetime, at: datetime
) -> str | None:
    """Re-place the member on the ladder at ``at`` after an order placed at ``placed_at`` was
    cancelled (its spend already left their qualifying activity). A cancelled order was never
    a purchase, so a tier reached since it was placed that the remaining value no longer earns
    is taken back at once: the member is reviewed from the standing they held before the
    order (its tier and review date; none: the base tier), as if it had never counted. A tier
    reached before the order, or still earned, stays as any review leaves it. A tier taken
    back is recorded as a ``downgrade`` with reason ``order cancelled``."""
    policy = tier_policy(db, at=at)
    standing = db.get(TierStanding, customer_id)
    if standing is None or clock.as_utc(standing.since) < clock.as_utc(placed_at):
        return review_tier(db, customer_id=customer_id, at=at)
    value = qualifying_value(db, customer_id=customer_id, policy=policy, at=at)
    if policy.tier(standing.tier_id).threshold <= value:
        return review_tier(db, customer_id=customer_id, at=at)
    before = standing_at(db, customer_id=customer_id, at=placed_at)
    base = policy.tiers[0].id
    start = before or Standing(base, clock.as_utc(placed_at), clock.as_utc(placed_at))
    return review_tier(db, customer_id=customer_id, at=at, start=start, reason=ORDER_CANCELLED)


def standing_at(db: Session, *, customer_id: str, at: datetime) -> Standing | None:
    """The standing the member held just before ``at``, from their tier history: the tier of
    the last change before it, since the move into that tier (renewals keep it), reviewed one
    window (of the ladder then in force) after that last change; ``None`` without history."""
    changes = db.scalars(
        select(TierChangeRecord)
        .where(
            TierChangeRecord.customer_id == customer_id,
            TierChangeRecord.changed_at < at,
        )
        .order_by(TierChangeRecord.changed_at.desc(), TierChangeRecord.id.desc())
    )
    last: TierChangeRecord | None = None
    since: datetime | None = None
    for change in changes:
        if last is None:
            last = change
        elif change.to_tier != last.to_tier:
            break
        since = clock.as_utc(change.changed_at)
        if change.change != "renewed":
            break
    if last is None or since is None:
        return None
    reviewed = clock.as_utc(last.changed_at)
    window = tier_policy(db, at=reviewed).window_months
    return Standing(last.to_tier, since, reviewed + timedelta(days=round(window * 30.44)))


def review_due_tiers(db: Session, *, now: datetime | None = None, page: int = 500) -> int:
    """Review every member whose review date has come: renewals and downgrades (after the
    grace period) happen here; upgrades already happened as orders came in. Commits a page
    at a time; returns how many members changed tier."""
    at = now or clock.now()
    changed = 0
    after: tuple[datetime, str] | None = None
    while True:
        query = select(TierStanding.review_at, TierStanding.customer_id).where(
            TierStanding.review_at <= at
        )
        if after is not None:
            query = query.where(
                (TierStanding.review_at > after[0])
                | ((TierStanding.review_at == after[0]) & (TierStanding.customer_id > after[1]))
            )
        due = db.execute(
            query.order_by(TierStanding.review_at, TierStanding.customer_id).limit(page)
        ).all()
        for _, customer_id in due:
            if review_tier(db, customer_id=customer_id, at=at) is not None:
                changed += 1
        db.commit()
        if len(due) < page:
            return changed
        after = (due[-1][0], due[-1][1])


# A new ladder that counts another basis (spend or points) makes every standing's qualifying
# value stale: every member is reviewed again, in the saving transaction when there are few
# (members see the right tier at once), else by this job, a page at a time.
RECOMPUTE_JOB = "loyalty.recompute_tiers"
RECOMPUTE_AT_ONCE = 2000


def recompute_tiers(
    db: Session,
    *,
    at: datetime,
    page: int = 500,
    commit: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Review every member with a tier standing at ``at`` (their qualifying value on the
    basis then in force; an upgrade it earns applies at once, a lower tier at their review
    date, as for any review). With ``commit``, commits a page at a time. ``progress`` hears
    (members reviewed, members to review) before each page commits, in its transaction, as
    the catalog import reports its rows. Answers (members reviewed, members who changed
    tier)."""
    total = db.scalar(select(func.count()).select_from(TierStanding)) or 0
    reviewed = changed = 0
    after = ""
    if progress:
        progress(0, total)
    while True:
        members = list(
            db.scalars(
                select(TierStanding.customer_id)
                .where(TierStanding.customer_id > after)
                .order_by(TierStanding.customer_id)
                .limit(page)
            )
        )
        for customer_id in members:
            if review_tier(db, customer_id=customer_id, at=at) is not None:
                changed += 1
        reviewed += len(members)
        if progress:
            # members a basis change saw arrive meanwhile count in the total as reviewed
            progress(reviewed, max(total, reviewed))
        if commit:
            db.commit()
        if len(members) < page:
            return reviewed, changed
        after = members[-1]


def recompute_after_basis_change(
    db: Session, *, before: TierPolicy, after: TierPolicy, starts: datetime
) -> None:
    """In the transaction that saves a tier ladder taking effect at ``starts``: when it counts
    another basis than the ladder before it, review every member again, at once when few and
    the ladder is in force now, else by :data:`RECOMPUTE_JOB` at ``starts`` (the program's
    tiers page says it is running)."""
    if before.basis == after.basis:
        return
    members = db.scalar(select(func.count()).select_from(TierStanding)) or 0
    if starts <= clock.now() and members <= RECOMPUTE_AT_ONCE:
        recompute_tiers(db, at=starts, commit=False)
        return
    jobs.enqueue(db, kind=RECOMPUTE_JOB, payload={"at": starts.isoformat()}, run_at=starts)


@dataclass(frozen=True)
class Recomputation:
    """A recomputation of every member's tier, queued or running: ``done`` of ``total``
    members reviewed so far (``total`` counted when it started; while queued, the members
    now)."""

    running: bool
    done: int
    total: int


def recomputing(db: Session) -> Recomputation | None:
    """The recomputation of every member's tier queued or running, with its progress."""
    job = jobs.pending(db, kind=RECOMPUTE_JOB)
    if job is None:
        return None
    payload = job.payload or {}
    if job.status == "running" and "total" in payload:
        return Recomputation(True, int(payload.get("done", 0)), int(payload["total"]))
    members = db.scalar(select(func.count()).select_from(TierStanding)) or 0
    return Recomputation(job.status == "running", 0, members)


def record_recompute_progress(db: Session, done: int, total: int) -> None:
    """The running recomputation's progress, kept in its job's payload (in the transaction
    of the page just reviewed, so it counts only members whose review committed)."""
    job = db.scalar(select(Job).where(Job.kind == RECOMPUTE_JOB, Job.status == "running").limit(1))
    if job is not None:
        db.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(payload={**(job.payload or {}), "done": done, "total": total})
        )
