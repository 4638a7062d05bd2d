"""Completing a referral: when the referred friend completes a first purchase, both sides earn
once.

Completion is once per friend. The ledger's verbs commit, so there are two ways to pay:

* inside a caller's transaction (the earning processor): :func:`referral_awards` says who
  earns what, the caller posts the points its own way, and :func:`mark_completed` (no
  commit) closes the referral with a guarded ``UPDATE … WHERE completed_at IS NULL``;
* on its own: :func:`complete_referral` posts each award through the ledger's ``earn``, and
  each earn's ``before_commit`` records an :class:`Award` (unique per member, rule and key),
  so a retry or a concurrent call never pays twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.journal import Posted
from rapport.loyalty.ledger.movements import earn
from rapport.loyalty.models import Award, Referral
from rapport.platform import clock

REFERRER_POINTS = 500


FRIEND_POINTS = 500


REFERRAL_RULE_ID = "referral"


@dataclass(frozen=True, slots=True)
class ReferralTerms:
    """Points each side earns when the friend completes a first purchase."""

    referrer_points: int = REFERRER_POINTS
    friend_points: int = FRIEND_POINTS


def referral_awards(
    db: Session, *, friend_id: str, order_id: str, terms: ReferralTerms | None = None
) -> list[tuple[str, int, str]]:
    """Who earns what when ``friend_id`` completes a first purchase with ``order_id``:
    ``(customer_id, points, reason)`` for the friend and the referrer, or ``[]`` when the
    friend was not referred or the referral is already completed. Reads only."""
    terms = terms or ReferralTerms()
    referral = db.get(Referral, friend_id)
    if referral is None or referral.completed_at is not None:
        return []
    awards = [
        (
            friend_id,
            terms.friend_points,
            f"Referral welcome: first purchase {order_id}",
        ),
        (
            referral.referrer_id,
            terms.referrer_points,
            f"Referral: {friend_id} made a first purchase ({order_id})",
        ),
    ]
    return [award for award in awards if award[1] > 0]


def mark_completed(
    db: Session, *, friend_id: str, order_id: str, at: datetime | None = None
) -> bool:
    """Close the friend's referral with ``order_id``, inside the caller's transaction (no
    commit). True if this call closed it; False if it was closed already or never existed,
    in which case the caller must not pay."""
    closed = db.execute(
        update(Referral)
        .where(Referral.friend_id == friend_id, Referral.completed_at.is_(None))
        .values(completed_at=at or clock.now(), order_id=order_id)
        .execution_options(synchronize_session=False)
    )
    return bool(closed.rowcount)  # type: ignore[attr-defined]


def _once_key(friend_id: str) -> str:
    return f"referral:{friend_id}"


def complete_referral(
    db: Session,
    *,
    friend_id: str,
    order_id: str,
    at: datetime | None = None,
    terms: ReferralTerms | None = None,
) -> list[Posted]:
    """Pay both sides of the friend's referral through the ledger (each earn commits) and
    close it. Safe to call again or concurrently: each award is recorded once per member
    and friend, and a retry after a crash pays only what is missing."""
    awards = referral_awards(db, friend_id=friend_id, order_id=order_id, terms=terms)
    if not awards:
        return []
    posted: list[Posted] = []
    for customer_id, points, reason in awards:
        already = db.scalar(
            select(Award.id).where(
                Award.customer_id == customer_id,
                Award.rule_id == REFERRAL_RULE_ID,
                Award.once_key == _once_key(friend_id),
            )
        )
        if already is not None:
            continue  # paid by an earlier, interrupted call

        def record(session: Session, result: Posted, *, why: str = reason) -> None:
            session.add(
                Award(
                    customer_id=result.customer_id,
                    rule_id=REFERRAL_RULE_ID,
                    once_key=_once_key(friend_id),
                    points=result.points,
                    transaction_id=result.transaction_id,
                    # No order on the award or the points: a return of the friend's first
                    # order must not reverse a referral bonus as if the order had earned it.
                    reason=why,
                    awarded_at=clock.now(),
                )
            )
            session.flush()  # the unique index refuses a second award here

        try:
            posted.append(
                earn(
                    db,
                    customer_id=customer_id,
                    points=points,
                    reason=reason,
                    rule_id=REFERRAL_RULE_ID,
                    before_commit=record,
                )
            )
        except IntegrityError:
            db.rollback()  # a concurrent call paid this award first
    mark_completed(db, friend_id=friend_id, order_id=order_id, at=at)
    db.commit()
    return posted
