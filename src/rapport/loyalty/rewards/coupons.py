"""Coupons: the single-use coupons rewards issue (redeeming a reward from the catalogue) and
campaign coupons (no customer) too. Checkout validates coupons and, when the order is placed,
consumes them inside the order's transaction.

A reward is redeemed through the ledger's ``redeem`` verb: the coupon row is written by its
``before_commit`` hook, so the points and the coupon commit together or not at all.
Consumption is one guarded ``UPDATE … WHERE used_at IS NULL`` per code: of two orders racing
for one coupon, the second finds no row to update (PostgreSQL re-checks the condition after
the first commits; SQLite has one writer) and is refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal, cast

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.accounts import hold_member
from rapport.loyalty.ledger.journal import Posted
from rapport.loyalty.ledger.movements import redeem
from rapport.loyalty.models import Coupon, Reward
from rapport.loyalty.rewards import checkout
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound

# No 0/O, 1/I/L, 5/S or 8/B: a code read aloud or typed from a receipt survives. 26 symbols,
# 10 of them: about 47 bits, far beyond guessing through a rate-limited API.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY234679"
CODE_LENGTH = 10
COUPON_KINDS = ("percent", "amount")
MAX_VALID_DAYS = 3650

CouponHook = Callable[[Session, Coupon], None]

_coupons = cast(Table, Coupon.__table__)


class CouponUnavailable(Conflict):
    """A coupon an order tried to use is already used, expired or unknown."""

    slug, title = "coupon-unavailable", "Coupon cannot be used"


def new_code(length: int = CODE_LENGTH) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def normalise_code(code: str) -> str:
    """Codes are case-insensitive and may be typed with spaces or dashes."""
    return code.strip().upper().replace(" ", "").replace("-", "")


def check_coupon_terms(
    *, kind: str, value: int, min_subtotal_minor: int, categories: Sequence[str]
) -> None:
    if kind not in COUPON_KINDS:
        raise InvalidInput("coupon_kind must be 'percent' or 'amount'", field="coupon_kind")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("coupon_value must be a whole number", field="coupon_value")
    if kind == "percent" and not 1 <= value <= 100:
        raise InvalidInput("A percent coupon_value must be 1-100", field="coupon_value")
    if kind == "amount" and not 1 <= value <= 100_000_000:
        raise InvalidInput(
            "An amount coupon_value must be 1-100000000 minor units", field="coupon_value"
        )
    if not 0 <= min_subtotal_minor <= 100_000_000:
        raise InvalidInput(
            "min_subtotal_minor must be between 0 and 100000000", field="min_subtotal_minor"
        )
    if len(categories) > 50 or any(not c or len(c) > 100 for c in categories):
        raise InvalidInput("categories: at most 50 names of 1-100 characters", field="categories")


# ------------------------------------------------------------------------------ issuing


def _insert_coupon(db: Session, values: dict[str, object], *, code: str | None) -> Coupon:
    """Insert a coupon under ``code``, or under a fresh random code (drawn again on the
    astronomically rare clash)."""
    for _ in range(5):
        candidate = code or new_code()
        coupon = Coupon(code=candidate, **values)
        try:
            with db.begin_nested():
                db.add(coupon)
                db.flush()
        except IntegrityError:
            if code is not None:
                raise Conflict(f"Coupon code {code!r} already exists", field="code") from None
            continue
        return coupon
    raise RuntimeError("could not draw a free coupon code")


def _coupon_holder(db: Session, customer_id: str) -> str:
    """The live customer a coupon is issued to (a merged profile's survivor), held against a
    merge until the coupon is committed (``ledger.accounts.hold_member``: a coupon, and the
    points paid for it, land wholly before a merge, which moves them, or after it, on the
    survivor); an unknown customer is 404, and an erased one 404 "was erased" as every
    endpoint answers for them (``customers.was_erased``), both naming ``customer_id``:
    nothing more is recorded for an erased person."""
    return hold_member(db, customer_id)


def redeem_reward(
    db: Session,
    *,
    customer_id: str,
    reward_id: str,
    channel: str = "web",
    issued_by: str | None = None,
    before_commit: CouponHook | None = None,
) -> Coupon:
    """Spend the reward's points and issue its single-use coupon, valid ``valid_days`` from
    now, in one transaction; ``issued_by`` is who asked (an admin user's login,
    ``api:<key name>``). Not enough points is the ledger's
    :class:`~rapport.loyalty.service.InsufficientPoints`, and no coupon is issued. An erased
    customer is refused (404 "was erased", naming ``customer_id``)."""
    customer_id = _coupon_holder(db, customer_id)
    reward = db.get(Reward, reward_id)
    if reward is None:
        raise NotFound(f"No reward {reward_id!r}", field="reward_id")
    if not reward.active:
        raise InvalidInput(f"Reward {reward_id!r} is no longer offered", field="reward_id")
    issued: list[Coupon] = []
    terms = {
        "rule": f"reward:{reward.reward_id}",
        "kind": reward.coupon_kind,
        "value": reward.coupon_value,
        "min_subtotal_minor": reward.min_subtotal_minor,
        "categories": list(reward.categories),
        "stackable": reward.stackable,
        "valid_days": reward.valid_days,
    }

    def issue_coupon(session: Session, posted: Posted) -> None:
        now = clock.now()
        coupon = _insert_coupon(
            session,
            {
                "customer_id": posted.customer_id,
                "rule": terms["rule"],
                "kind": terms["kind"],
                "value": terms["value"],
                "min_subtotal_minor": terms["min_subtotal_minor"],
                "categories": terms["categories"],
                "stackable": terms["stackable"],
                "issued_at": now,
                "expires_at": now + timedelta(days=cast(int, terms["valid_days"])),
                "transaction_id": posted.transaction_id,
                "issued_by": issued_by,
            },
            code=None,
        )
        issued.append(coupon)
        if before_commit is not None:
            before_commit(session, coupon)

    redeem(
        db,
        customer_id=customer_id,
        points=reward.points_cost,
        reason=f"Reward: {reward.name}",
        channel=channel,
        before_commit=issue_coupon,
    )
    return issued[0]


def create_campaign_coupon(
    db: Session,
    *,
    rule: str,
    kind: str,
    value: int,
    expires_at: datetime,
    code: str | None = None,
    customer_id: str | None = None,
    min_subtotal_minor: int = 0,
    categories: Sequence[str] = (),
    stackable: bool = True,
    issued_by: str | None = None,
) -> Coupon:
    """A coupon from a campaign, usable once by anyone (``customer_id`` None) or by one
    customer, who must not have been erased (404 "was erased", naming ``customer_id``).
    ``code`` may be chosen (e.g. printed on a flyer) or drawn at random. ``issued_by``: who
    issued it (an admin user's login, ``api:<key name>``)."""
    return issue_campaign_coupons(
        db,
        count=1,
        rule=rule,
        kind=kind,
        value=value,
        expires_at=expires_at,
        code=code,
        customer_id=customer_id,
        min_subtotal_minor=min_subtotal_minor,
        categories=categories,
        stackable=stackable,
        issued_by=issued_by,
    )[0]


def issue_campaign_coupons(
    db: Session,
    *,
    count: int,
    rule: str,
    kind: str,
    value: int,
    expires_at: datetime,
    code: str | None = None,
    customer_id: str | None = None,
    min_subtotal_minor: int = 0,
    categories: Sequence[str] = (),
    stackable: bool = True,
    issued_by: str | None = None,
    before_commit: Callable[[Session, list[Coupon]], None] | None = None,
) -> list[Coupon]:
    """A set of ``count`` campaign coupons on the same terms (as
    :func:`create_campaign_coupon`; a chosen ``code`` makes a set of one), all or none: they
    are written in one transaction, which ``before_commit`` (given the coupons) ends, so a
    failure at any of them (a code taken, the database gone) rolls back the whole set."""
    if customer_id is not None:
        customer_id = _coupon_holder(db, customer_id)
    check_coupon_terms(
        kind=kind, value=value, min_subtotal_minor=min_subtotal_minor, categories=categories
    )
    if not rule or len(rule) > 100:
        raise InvalidInput("rule must be 1-100 characters", field="rule")
    chosen = normalise_code(code) if code is not None else None
    if chosen is not None and not (4 <= len(chosen) <= 40 and chosen.isalnum()):
        raise InvalidInput("code must be 4-40 letters or digits", field="code")
    if count < 1 or (chosen is not None and count != 1):
        raise InvalidInput("count: at least 1, and 1 under a chosen code", field="count")
    now = clock.now()
    if expires_at <= now:
        raise InvalidInput("expires_at must be in the future", field="expires_at")
    values: dict[str, object] = {
        "customer_id": customer_id,
        "rule": rule,
        "kind": kind,
        "value": value,
        "min_subtotal_minor": min_subtotal_minor,
        "categories": list(categories),
        "stackable": stackable,
        "issued_at": now,
        "expires_at": expires_at,
        "issued_by": issued_by,
    }
    try:
        issued = [_insert_coupon(db, values, code=chosen) for _ in range(count)]
        if before_commit is not None:
            before_commit(db, issued)
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return issued


def customer_coupons(
    db: Session,
    *,
    customer_id: str,
    include_used: bool = False,
    include_expired: bool = False,
    limit: int | None = None,
    after: str | None = None,
    at: datetime | None = None,
) -> list[Coupon]:
    """The customer's open coupons (not used, not expired at ``at``, default now), with the
    used ones too if ``include_used`` and the expired unused ones if ``include_expired``,
    soonest to expire first (ties by code): ``limit`` of them, starting just past the coupon
    coded ``after`` (a page's cursor). An ``after`` that is not one of their coupons is 422
    naming ``cursor``."""
    moment = at or clock.now()
    query = select(Coupon).where(Coupon.customer_id == customer_id)
    unused = Coupon.used_at.is_(None)
    kept = [and_(unused, Coupon.expires_at > moment)]
    if include_used:
        kept.append(~unused)
    if include_expired:
        kept.append(and_(unused, Coupon.expires_at <= moment))
    query = query.where(or_(*kept))
    if after is not None:
        last = db.get(Coupon, after)
        if last is None or last.customer_id != customer_id:
            raise InvalidInput(
                "Not a cursor of this customer's coupons: pass next_cursor as it came",
                field="cursor",
            )
        query = query.where(
            or_(
                Coupon.expires_at > last.expires_at,
                and_(Coupon.expires_at == last.expires_at, Coupon.code > last.code),
            )
        )
    query = query.order_by(Coupon.expires_at, Coupon.code)
    if limit is not None:
        query = query.limit(limit)
    return list(db.scalars(query))


def release_coupons(db: Session, *, order_id: str, at: datetime) -> list[str]:
    """Give back the coupons ``order_id`` used, in the caller's transaction (no commit): the
    order was cancelled before it was handed over, so each is usable again until it expires.
    One expired at ``at`` (the cancellation) stays used by the order. Only coupons the order
    still holds are touched, so a second call, or one after a coupon went to another order,
    changes nothing. Returns the codes released. The points a reward's coupon cost stay
    spent: the coupon they bought is back."""
    released = db.execute(
        update(_coupons)
        .where(_coupons.c.used_order_id == order_id, _coupons.c.expires_at > at)
        .values(used_at=None, used_order_id=None)
        .returning(_coupons.c.code)
    )
    return sorted(released.scalars())


# ------------------------------------------------------------------------------ checkout


def as_checkout_coupon(coupon: Coupon) -> checkout.Coupon:
    return checkout.Coupon(
        code=coupon.code,
        rule=coupon.rule,
        kind=cast(Literal["percent", "amount"], coupon.kind),
        value=coupon.value,
        min_subtotal_minor=coupon.min_subtotal_minor,
        categories=tuple(coupon.categories),
        stackable=coupon.stackable,
    )


def unavailable_detail(code: str, reason: str) -> str:
    """What a refused coupon's problem says: why, and what to do (the order or checkout again
    without it)."""
    return (
        f"Coupon {code} cannot be used: {reason}. Run POST /v1/loyalty/checkout again without"
        " it and send the order with the amounts it gives"
    )


def _refusal(coupon: Coupon | None, *, customer_id: str | None, at: datetime) -> str | None:
    """Why ``customer_id`` (None: a guest) may not use ``coupon`` at ``at``, or None. Another
    customer's coupon is 'unknown', as a code never issued is, and its state (used, expired)
    is not told: an answer must not tell a code that exists from one that does not, or codes
    could be probed."""
    if coupon is None or coupon.customer_id not in (None, customer_id):
        return "unknown"
    if coupon.used_at is not None:
        return "used"
    if clock.as_utc(coupon.expires_at) <= at:
        return "expired"
    return None


def validate_coupons(
    db: Session, *, customer_id: str | None, codes: Iterable[str], at: datetime | None = None
) -> tuple[list[checkout.Coupon], dict[str, str]]:
    """The coupons among ``codes`` that ``customer_id`` may use at ``at`` (default now), in
    the order given, and each refused code with why: 'unknown' (never issued, or another
    customer's: the two answer alike), 'expired' or 'used'. A code given more than once,
    however typed, counts once (a coupon is used once): it is either valid or refused, never
    both. Reads only."""
    moment = at or clock.now()
    wanted = list(dict.fromkeys(normalise_code(code) for code in codes))
    found = {
        coupon.code: coupon for coupon in db.scalars(select(Coupon).where(Coupon.code.in_(wanted)))
    }
    valid: list[checkout.Coupon] = []
    refused: dict[str, str] = {}
    for code in wanted:
        reason = _refusal(found.get(code), customer_id=customer_id, at=moment)
        if reason is None:
            valid.append(as_checkout_coupon(found[code]))
        else:
            refused[code] = reason
    return valid, refused


def consume_coupons(
    db: Session,
    *,
    codes: Iterable[str],
    order_id: str,
    at: datetime | None = None,
    customer_id: str | None = None,
) -> None:
    """Mark each coupon used by ``order_id``, inside the caller's transaction (no commit).
    A coupon already used by another order, expired, unknown, or (when ``customer_id`` is
    given) another customer's raises :class:`CouponUnavailable` naming the code; the caller
    rolls back. Another customer's coupon is refused as 'unknown', whatever its state. Using a
    coupon again for the same order is a no-op, so a replayed order is safe."""
    moment = at or clock.now()
    # Key order, so that two orders sharing coupons lock them in the same order.
    for code in sorted({normalise_code(code) for code in codes}):
        guard = [
            _coupons.c.code == code,
            _coupons.c.used_at.is_(None),
            _coupons.c.expires_at > moment,
        ]
        if customer_id is not None:
            guard.append(_coupons.c.customer_id.is_(None) | (_coupons.c.customer_id == customer_id))
        taken = db.execute(
            update(_coupons).where(*guard).values(used_at=moment, used_order_id=order_id)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            continue
        current = db.execute(
            select(_coupons.c.used_order_id, _coupons.c.used_at).where(_coupons.c.code == code)
        ).first()
        if current is not None and current.used_order_id == order_id:
            continue
        coupon = db.get(Coupon, code)
        if coupon is not None:
            db.refresh(coupon)
        # Without a customer to check against, the coupon's own holder may use it.
        holder = customer_id if customer_id is not None or coupon is None else coupon.customer_id
        reason = _refusal(coupon, customer_id=holder, at=moment) or "used"
        raise CouponUnavailable(
            unavailable_detail(code, reason), field="coupons", code=code, reason=reason
        )
