"""Referrals: a member's code, a friend recorded against it, and points for both when the
friend completes a first purchase.

Refused: referring oneself, a loop (the friend is the referrer's own referrer, or further up
the chain), a friend already referred (the friend is the table's primary key, so two
concurrent claims cannot both win), and a friend who has already bought.

Completion is once per friend. The ledger's verbs commit, so there are two ways to pay:

* inside a caller's transaction (the earning processor): :func:`referral_awards` says who
  earns what, the caller posts the points its own way, and :func:`mark_completed` (no
  commit) closes the referral with a guarded ``UPDATE … WHERE completed_at IS NULL``;
* on its own: :func:`complete_referral` posts each award through ``ledger.earn``, and each
  earn's ``before_commit`` records an :class:`Award` (unique per member, rule and key), so
  a retry or a concurrent call never pays twice.
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
from rapport.loyalty import service as ledger
from rapport.loyalty.models import Award, Referral, ReferralCode
from rapport.loyalty.rewards.coupons import new_code, normalise_code
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound

REFERRER_POINTS = 500
FRIEND_POINTS = 500
REFERRAL_RULE_ID = "referral"
REFERRAL_CODE_LENGTH = 8
# How far up the chain of referrers a loop is looked for.
MAX_CHAIN = 100


@dataclass(frozen=True, slots=True)
class ReferralTerms:
    """Points each side earns when the friend completes a first purchase."""

    referrer_points: int = REFERRER_POINTS
    friend_points: int = FRIEND_POINTS


def _active_customer(db: Session, customer_id: str, *, field: str) -> str:
    customer = customers.get_customer(db, customer_id=customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id!r}", field=field)
    if customer.status != "active":
        raise InvalidInput(f"Customer {customer_id!r} was erased", field=field)
    return customer.customer_id


def referral_code(db: Session, *, customer_id: str) -> ReferralCode:
    """The member's referral code, created on first ask (and kept for good)."""
    existing = db.get(ReferralCode, customer_id)
    if existing is not None:
        return existing
    customer_id = _active_customer(db, customer_id, field="customer_id")
    existing = db.get(ReferralCode, customer_id)
    if existing is not None:
        return existing
    for _ in range(5):
        record = ReferralCode(
            customer_id=customer_id,
            code=new_code(REFERRAL_CODE_LENGTH),
            created_at=clock.now(),
        )
        try:
            with db.begin_nested():
                db.add(record)
                db.flush()
        except IntegrityError:
            # Either the member's code was created meanwhile, or the random code clashed.
            existing = db.get(ReferralCode, customer_id)
            if existing is not None:
                db.commit()
                return existing
            continue
        db.commit()
        return record
    raise RuntimeError("could not draw a free referral code")


def _referrer_chain(db: Session, customer_id: str) -> list[str]:
    """Who referred ``customer_id``, who referred them, and so on."""
    chain: list[str] = []
    current = customer_id
    while len(chain) < MAX_CHAIN:
        upstream = db.scalar(select(Referral.referrer_id).where(Referral.friend_id == current))
        if upstream is None or upstream in chain:
            break
        chain.append(upstream)
        current = upstream
    return chain


def refer(
    db: Session,
    *,
    code: str,
    friend_id: str,
    channel: str = "web",
    before_commit: Callable[[Session, Referral], None] | None = None,
) -> Referral:
    """Record ``friend_id`` as referred by the owner of ``code``."""
    owner = db.scalar(select(ReferralCode).where(ReferralCode.code == normalise_code(code)))
    if owner is None:
        raise NotFound(f"No referral code {code!r}", field="code")
    friend_id = _active_customer(db, friend_id, field="friend_id")
    referrer_id = owner.customer_id
    if friend_id == referrer_id:
        raise InvalidInput("A member cannot refer themselves", field="friend_id")
    if friend_id in _referrer_chain(db, referrer_id):
        raise InvalidInput(
            f"Customer {friend_id!r} referred {referrer_id!r} (directly or through others); "
            "a referral cannot go back up the chain",
            field="friend_id",
        )
    earlier = db.get(Referral, friend_id)
    if earlier is not None:
        raise Conflict(f"Customer {friend_id!r} was already referred", field="friend_id")
    if orders.customer_orders(db, customer_id=friend_id, limit=1):
        raise Conflict(
            f"Customer {friend_id!r} has already bought; only new customers can be referred",
            field="friend_id",
        )
    referral = Referral(
        friend_id=friend_id, referrer_id=referrer_id, code=owner.code, referred_at=clock.now()
    )
    try:
        db.add(referral)
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict(f"Customer {friend_id!r} was already referred", field="friend_id") from None
    append_event(
        db,
        type="referral_recorded",
        channel=channel,
        customer_id=referrer_id,
        properties={"friend_id": friend_id, "code": owner.code},
    )
    if before_commit is not None:
        before_commit(db, referral)
    db.commit()
    return referral


def get_referral(db: Session, *, friend_id: str) -> Referral | None:
    return db.get(Referral, friend_id)


def referrals_by(db: Session, *, referrer_id: str) -> list[Referral]:
    return list(
        db.scalars(
            select(Referral)
            .where(Referral.referrer_id == referrer_id)
            .order_by(Referral.referred_at, Referral.friend_id)
        )
    )


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
) -> list[ledger.Posted]:
    """Pay both sides of the friend's referral through the ledger (each earn commits) and
    close it. Safe to call again or concurrently: each award is recorded once per member
    and friend, and a retry after a crash pays only what is missing."""
    awards = referral_awards(db, friend_id=friend_id, order_id=order_id, terms=terms)
    if not awards:
        return []
    posted: list[ledger.Posted] = []
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

        def record(session: Session, result: ledger.Posted, *, why: str = reason) -> None:
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
                ledger.earn(
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
