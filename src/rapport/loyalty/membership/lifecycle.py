"""A member's paid membership from joining to lapse: joining, renewal, cancellation and lapse,
which membership and plan give benefits now, and the fees paid.

A membership is ``active`` from the moment the member joins (benefits at once) and renews
itself at the end of each period; the renewal job records each period's fee once (a unique
index on membership and period start makes a second run a no-op). A cancelled membership
keeps its benefits until the paid period ends, then the job marks it ``lapsed``; until then
the member may resume it (renewal on again, no new fee). Fees are
revenue (:class:`MembershipPayment` rows), never points.

Commands own their transaction and commit, like the ledger's verbs; ``before_commit`` lets
the idempotency layer store its answer in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import append_event
from rapport.loyalty.events import (
    MembershipCancelled,
    MembershipJoined,
    MembershipLapsed,
    MembershipRenewed,
    MembershipResumed,
)
from rapport.loyalty.membership.plans import period_end
from rapport.loyalty.models import (
    Membership,
    MembershipPayment,
    MembershipPlan,
)
from rapport.platform import clock, formatting
from rapport.platform.errors import Conflict, InvalidInput, NotFound

# Catch-up limit for one membership in one job run (a worker that was down for years should
# not loop forever); the next run carries on.
MAX_RENEWALS_PER_RUN = 24


MembershipHook = Callable[[Session, Membership], None]


def get_membership(db: Session, *, customer_id: str) -> Membership | None:
    """The customer's membership that is not lapsed, else their most recent one."""
    return db.scalar(
        select(Membership)
        .where(Membership.customer_id == customer_id)
        .order_by((Membership.status == "lapsed").asc(), Membership.id.desc())
        .limit(1)
    )


def _unlapsed(db: Session, customer_id: str, *, lock: bool = False) -> Membership | None:
    """The customer's membership that has not lapsed (a customer has one at most), locked
    for a change with ``lock``."""
    query = select(Membership).where(
        Membership.customer_id == customer_id, Membership.status != "lapsed"
    )
    return db.scalar(query.with_for_update() if lock else query)


def _is_current(membership: Membership, at: datetime) -> bool:
    if clock.as_utc(membership.started_at) > at:
        return False
    end = clock.as_utc(membership.current_period_end)
    if membership.status == "active":
        # An auto-renewing membership past its period end keeps its benefits until the
        # renewal job has charged the next period (which it dates from the old end).
        return membership.auto_renew or at < end
    return membership.status == "cancelled" and at < end


def current_membership(
    db: Session, *, customer_id: str, at: datetime | None = None
) -> Membership | None:
    """The membership giving the customer benefits at ``at`` (default now), if any."""
    moment = at or clock.now()
    membership = _unlapsed(db, customer_id)
    if membership is None or not _is_current(membership, moment):
        return None
    return membership


def current_plan(
    db: Session, *, customer_id: str, at: datetime | None = None
) -> MembershipPlan | None:
    """The paid plan whose benefits the customer has at ``at`` (default now): an active
    membership, or a cancelled one still inside the period already paid for."""
    membership = current_membership(db, customer_id=customer_id, at=at)
    return db.get(MembershipPlan, membership.plan_id) if membership is not None else None


def _record_payment(
    db: Session, membership: Membership, plan: MembershipPlan, start: datetime, end: datetime
) -> MembershipPayment:
    payment = MembershipPayment(
        membership_id=membership.id,
        customer_id=membership.customer_id,
        plan_id=plan.plan_id,
        amount_minor=plan.fee_minor,
        currency=plan.currency,
        period_start=start,
        period_end=end,
        paid_at=clock.now(),
    )
    db.add(payment)
    return payment


def _committed(
    db: Session, membership: Membership, before_commit: MembershipHook | None
) -> Membership:
    """Finish a command: the idempotency layer's answer stored, then one commit."""
    if before_commit is not None:
        db.flush()
        before_commit(db, membership)
    db.commit()
    return membership


def _an(word: str) -> str:
    """The word with its article: "an active", "a cancelled"."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _already_a_member(existing: Membership) -> str:
    """Why a customer cannot join: the membership they have, and for a cancelled one when it
    lapses and how to take the cancellation back."""
    detail = (
        f"Customer {existing.customer_id!r} already has {_an(existing.status)} membership "
        f"of plan {existing.plan_id!r}"
    )
    if existing.status != "cancelled":
        return detail
    lapses = clock.as_utc(existing.current_period_end)
    return (
        f"{detail}, which lapses on {formatting.day(lapses)} ({lapses.isoformat()}). "
        f"To keep it, resume it with POST /v1/loyalty/members/{existing.customer_id}"
        "/membership/resume (no new fee); to change plan, join again once it has lapsed"
    )


def join(
    db: Session,
    *,
    customer_id: str,
    plan_id: str,
    auto_renew: bool = True,
    channel: str = "web",
    before_commit: MembershipHook | None = None,
) -> Membership:
    """Start a paid membership now: benefits from this moment, the first period's fee
    recorded as revenue. A customer has at most one membership that is not lapsed."""
    customer = customers.get_customer(db, customer_id=customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id!r}", field="customer_id")
    if customer.status != "active":
        raise InvalidInput(f"Customer {customer_id!r} was erased", field="customer_id")
    customer_id = customer.customer_id  # a merged profile joins as the survivor
    plan = db.get(MembershipPlan, plan_id)
    if plan is None:
        raise NotFound(f"No plan {plan_id!r}", field="plan_id")
    if not plan.active:
        raise InvalidInput(f"Plan {plan_id!r} takes no new members", field="plan_id")
    existing = _unlapsed(db, customer_id)
    if existing is not None:
        raise Conflict(_already_a_member(existing), field="customer_id")
    now = clock.now()
    end = period_end(now, plan.period)
    membership = Membership(
        customer_id=customer_id,
        plan_id=plan.plan_id,
        status="active",
        started_at=now,
        current_period_start=now,
        current_period_end=end,
        auto_renew=auto_renew,
    )
    try:
        db.add(membership)
        db.flush()
    except IntegrityError:
        db.rollback()  # the partial unique index: a concurrent join won
        raise Conflict(
            f"Customer {customer_id!r} already has a membership", field="customer_id"
        ) from None
    _record_payment(db, membership, plan, now, end)
    append_event(
        db,
        MembershipJoined(
            plan_id=plan.plan_id,
            fee_minor=plan.fee_minor,
            currency=plan.currency,
            period_end=end.isoformat(),
        ),
        channel=channel,
        customer_id=customer_id,
    )
    return _committed(db, membership, before_commit)


def cancel(
    db: Session,
    *,
    customer_id: str,
    channel: str = "web",
    before_commit: MembershipHook | None = None,
) -> Membership:
    """Stop renewal. Benefits stay until the paid period ends; the renewal job then marks
    the membership lapsed. Cancelling a cancelled membership changes nothing."""
    membership = _unlapsed(db, customer_id, lock=True)
    if membership is None:
        db.rollback()
        raise NotFound(f"Customer {customer_id!r} has no membership to cancel", field="customer_id")
    if membership.status == "active":
        now = clock.now()
        membership.status = "cancelled"
        membership.auto_renew = False
        membership.cancelled_at = now
        append_event(
            db,
            MembershipCancelled(
                plan_id=membership.plan_id,
                benefits_until=clock.as_utc(membership.current_period_end).isoformat(),
            ),
            channel=channel,
            customer_id=membership.customer_id,
        )
    return _committed(db, membership, before_commit)


def resume(
    db: Session,
    *,
    customer_id: str,
    channel: str = "web",
    before_commit: MembershipHook | None = None,
) -> Membership:
    """Take a cancellation back before the paid period ends: renewal is on again and the
    period already paid runs on, so no fee is recorded now (the next is at its end). Resuming
    an active membership changes nothing; one whose period has ended lapsed, whether or not
    the renewal job has marked it yet (409 saying when and why: join again), and one on a
    retired plan cannot renew (409 saying the plan is retired and when its benefits end)."""
    membership = _unlapsed(db, customer_id, lock=True)
    if membership is None:
        lapsed = get_membership(db, customer_id=customer_id)
        detail = _lapsed_detail(db, customer_id, lapsed) if lapsed is not None else None
        db.rollback()
        if detail is None:
            raise NotFound(
                f"Customer {customer_id!r} has no membership to resume", field="customer_id"
            )
        raise Conflict(detail, field="customer_id")
    if membership.status == "cancelled":
        end = clock.as_utc(membership.current_period_end)
        if clock.now() >= end:
            detail = _lapsed_detail(db, customer_id, membership)
            db.rollback()
            raise Conflict(detail, field="customer_id")
        plan = db.get(MembershipPlan, membership.plan_id)
        if plan is None or not plan.active:
            detail = (
                f"Customer {customer_id!r}'s membership of plan {membership.plan_id!r} cannot "
                f"be resumed: the plan is retired, so it renews nobody. Its benefits end on "
                f"{formatting.day(end)} ({end.isoformat()}); join another plan to stay a member"
            )
            db.rollback()
            raise Conflict(detail, field="customer_id")
        membership.status = "active"
        membership.auto_renew = True
        membership.cancelled_at = None
        append_event(
            db,
            MembershipResumed(plan_id=membership.plan_id, renews_at=end.isoformat()),
            channel=channel,
            customer_id=membership.customer_id,
        )
    return _committed(db, membership, before_commit)


def _lapsed_detail(db: Session, customer_id: str, membership: Membership) -> str:
    """Why a membership whose period has ended cannot be resumed: when it lapsed, why (the
    renewal job's reasons, read from the membership), and to join again."""
    end = clock.as_utc(membership.current_period_end)
    ended = clock.as_utc(membership.ended_at) if membership.ended_at is not None else end
    plan = db.get(MembershipPlan, membership.plan_id)
    retired = plan is None or not plan.active
    if membership.cancelled_at is not None:
        why = "it was cancelled"
    elif ended < end:
        why = "it was ended before its paid period's end"
    elif retired:
        why = "the plan was retired"
    else:
        why = "it was not set to renew"
    join = "join another plan" if retired else "join again"
    return (
        f"Customer {customer_id!r}'s membership of plan {membership.plan_id!r} lapsed on "
        f"{formatting.day(ended)} ({ended.isoformat()}) because {why}: {join} to become a member"
    )


def _lapse(db: Session, membership: Membership, *, at: datetime, reason: str) -> None:
    membership.status = "lapsed"
    membership.auto_renew = False
    membership.ended_at = at
    append_event(
        db,
        MembershipLapsed(plan_id=membership.plan_id, reason=reason),
        channel="web",
        customer_id=membership.customer_id,
    )


def lapse(db: Session, *, customer_id: str, reason: str = "ended by staff") -> Membership:
    """End the customer's membership now (benefits stop at once), e.g. a refused payment."""
    membership = _unlapsed(db, customer_id, lock=True)
    if membership is None:
        db.rollback()
        raise NotFound(f"Customer {customer_id!r} has no membership", field="customer_id")
    _lapse(db, membership, at=clock.now(), reason=reason)
    db.commit()
    return membership


@dataclass(frozen=True, slots=True)
class RenewalRun:
    renewed_periods: int = 0
    lapsed: int = 0


def renew_due(db: Session, *, now: datetime | None = None, batch: int = 200) -> RenewalRun:
    """Renew every auto-renewing membership whose period has ended (one payment per period,
    dated from the old period's end, catching up missed periods) and lapse the cancelled
    and non-renewing ones. Committed a batch at a time; safe to run twice or in two workers
    at once: each period's payment is unique, and a period moves on only from the end it
    was read at."""
    moment = now or clock.now()
    renewed = lapsed = 0
    after = 0
    while True:
        due = list(
            db.scalars(
                select(Membership)
                .where(
                    Membership.status != "lapsed",
                    Membership.current_period_end <= moment,
                    Membership.id > after,
                )
                .order_by(Membership.id)
                .limit(batch)
            )
        )
        if not due:
            db.commit()
            return RenewalRun(renewed_periods=renewed, lapsed=lapsed)
        active = _active_among(db, {membership.customer_id for membership in due})
        for membership in due:
            plan = db.get(MembershipPlan, membership.plan_id)
            gone = (
                None
                if membership.customer_id in active
                else _customer_gone(db, membership.customer_id)
            )
            if gone is not None:
                # never a fee on a merged-away or erased profile (a merge moves the
                # membership to the survivor; one left behind ends unrenewed)
                lapsed += _lapse_at_period_end(db, membership, reason=gone)
            elif membership.status != "active" or not membership.auto_renew or plan is None:
                reason = "cancelled" if membership.status == "cancelled" else "not renewed"
                lapsed += _lapse_at_period_end(db, membership, reason=reason)
            elif not plan.active:
                lapsed += _lapse_at_period_end(db, membership, reason="plan retired")
            else:
                renewed += _renew(db, membership, plan, moment)
        db.commit()
        after = due[-1].id


def _active_among(db: Session, customer_ids: set[str]) -> set[str]:
    """Those of ``customer_ids`` still in use (one query a batch; the rest are looked up
    one by one for why)."""
    query = customers.active_audience()
    column = query.selected_columns[0]
    return set(db.scalars(query.where(column.in_(sorted(customer_ids)))))


def _customer_gone(db: Session, customer_id: str) -> str | None:
    """Why the customer can no longer be charged (merged away, erased), else None."""
    customer = customers.get_customer(db, customer_id=customer_id)  # follows a merge
    if customer is None:
        return None
    if customer.customer_id != customer_id:
        return f"customer merged into {customer.customer_id}"
    return None if customer.status == "active" else f"customer {customer.status}"


def _lapse_at_period_end(db: Session, membership: Membership, *, reason: str) -> int:
    end = clock.as_utc(membership.current_period_end)
    claimed = db.execute(
        update(Membership)
        .where(
            Membership.id == membership.id,
            Membership.status != "lapsed",
            Membership.current_period_end == membership.current_period_end,
        )
        .values(status="lapsed", auto_renew=False, ended_at=end)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return 0  # another worker got there first
    db.refresh(membership)
    append_event(
        db,
        MembershipLapsed(plan_id=membership.plan_id, reason=reason),
        channel="web",
        customer_id=membership.customer_id,
        occurred_at=end,
    )
    return 1


def _renew(db: Session, membership: Membership, plan: MembershipPlan, moment: datetime) -> int:
    periods = 0
    while periods < MAX_RENEWALS_PER_RUN:
        start = clock.as_utc(membership.current_period_end)
        if start > moment:
            break
        end = period_end(start, plan.period)
        moved = db.execute(
            update(Membership)
            .where(
                Membership.id == membership.id,
                Membership.status == "active",
                Membership.current_period_end == membership.current_period_end,
            )
            .values(current_period_start=start, current_period_end=end)
            .execution_options(synchronize_session=False)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            break  # cancelled meanwhile, or another worker renewed it
        try:
            with db.begin_nested():
                _record_payment(db, membership, plan, start, end)
        except IntegrityError:
            pass  # this period was already paid: the unique index keeps one payment
        db.refresh(membership)
        append_event(
            db,
            MembershipRenewed(
                plan_id=plan.plan_id,
                fee_minor=plan.fee_minor,
                currency=plan.currency,
                period_start=start.isoformat(),
                period_end=end.isoformat(),
            ),
            channel="web",
            customer_id=membership.customer_id,
        )
        periods += 1
    return periods


def payments(db: Session, *, customer_id: str) -> list[MembershipPayment]:
    return list(
        db.scalars(
            select(MembershipPayment)
            .where(MembershipPayment.customer_id == customer_id)
            .order_by(MembershipPayment.period_start, MembershipPayment.id)
        )
    )


def paying_members(db: Session, *, at: datetime | None = None) -> set[str]:
    """Customers with a paid plan's benefits at ``at``."""
    moment = at or clock.now()
    return {
        membership.customer_id
        for membership in db.scalars(select(Membership).where(Membership.status != "lapsed"))
        if _is_current(membership, moment)
    }


def move_merged_membership(
    db: Session, *, source_id: str, target_id: str, at: datetime | None = None
) -> dict[str, int]:
    """Two profiles became one: the merged-away member's memberships and the fees they paid
    become the survivor's. When both hold a membership that has not lapsed, the one paid
    further ahead (the later ``current_period_end``; the survivor's on a tie) is kept and the
    other ends now (no refund: the product has none). Answers, for the merge record's
    ``moved``, ``loyalty_membership`` (1 when the survivor now holds the merged-away member's
    membership) and ``loyalty_membership_ended`` (1 when one of the two was ended).

    Part of ``move_merged_member`` (the merge's step, and the ``customers_merged`` handler),
    in the caller's transaction (never commits)."""
    moment = at or clock.now()
    moved = {"loyalty_membership": 0, "loyalty_membership_ended": 0}
    theirs = _unlapsed(db, source_id, lock=True)
    if theirs is not None:
        ours = _unlapsed(db, target_id, lock=True)
        kept = theirs
        if ours is not None:
            ahead = clock.as_utc(theirs.current_period_end) > clock.as_utc(ours.current_period_end)
            kept, ended = (theirs, ours) if ahead else (ours, theirs)
            ended.customer_id = target_id
            _lapse(
                db,
                ended,
                at=moment,
                reason=f"merged: {source_id} into {target_id}, the membership paid further "
                "ahead kept",
            )
            moved["loyalty_membership_ended"] = 1
        moved["loyalty_membership"] = int(kept is theirs)
        db.flush()
    for table in (Membership, MembershipPayment):
        db.execute(
            update(table)
            .where(table.customer_id == source_id)
            .values(customer_id=target_id)
            .execution_options(synchronize_session="fetch")
        )
    return moved
