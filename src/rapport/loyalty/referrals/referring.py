"""Referring a friend: a member's referral code (created on first ask) and a friend recorded
against it.

Refused: referring oneself, a loop (the friend is the referrer's own referrer, or further up
the chain), a friend already referred (the friend is the table's primary key, so two
concurrent claims cannot both win), and a friend who has already bought. Recording a referral
takes one lock for the whole programme before it reads the chain (:func:`_one_at_a_time`), so
two members referring each other at once (or the last links of a longer loop) cannot both be
stored. Paying both sides
is :mod:`rapport.loyalty.referrals.completion`.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import append_event
from rapport.loyalty.events import ReferralRecorded
from rapport.loyalty.models import Referral, ReferralCode
from rapport.loyalty.rewards.coupons import new_code, normalise_code
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound

REFERRAL_CODE_LENGTH = 8
# How far up the chain of referrers a loop is looked for.
MAX_CHAIN = 100
# The PostgreSQL advisory lock that records referrals one at a time ("Referal" in ASCII).
_REFERRALS_LOCK = 0x5265_6665_7261_6C00


def _one_at_a_time(db: Session) -> None:
    """Hold, until the transaction ends, the lock under which referrals are recorded: a loop
    can close through any link of the chain, so locking the two members named is not
    enough (A referring B and C referring D race into a loop when B->C and D->A exist).
    Referrals are rare, so one lock costs nothing; SQLite's transactions already take the
    database's one writer turn (``BEGIN IMMEDIATE``) before they read."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REFERRALS_LOCK})


def _active_customer(db: Session, customer_id: str, *, field: str) -> str:
    customer = customers.get_customer(db, customer_id=customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id!r}", field=field)
    if customer.status != "active":
        raise InvalidInput(f"Customer {customer_id!r} was erased", field=field)
    return customer.customer_id


def referral_code(db: Session, *, customer_id: str, create: bool = True) -> ReferralCode | None:
    """The member's referral code, created on first ask (and kept for good); with
    ``create=False`` (a ``HEAD``, which hands nothing out) ``None`` until one was made."""
    existing = db.get(ReferralCode, customer_id)
    if existing is not None or not create:
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
    _one_at_a_time(db)
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
        ReferralRecorded(friend_id=friend_id, code=owner.code),
        channel=channel,
        customer_id=referrer_id,
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
