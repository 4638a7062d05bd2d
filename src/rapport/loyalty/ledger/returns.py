"""A return takes back the points its order earned: what the order earned and has had taken
back (``order_points``), and the reversal itself (``reverse_for_return``), which records debt
for points already spent (or writes them off). It also gives back the points the member paid
the order with, for the part returned (``refund_points_paid``). A cancellation takes back, as
well, the bonus a rule gave for the order as a whole (``reverse_bonus``: the first-purchase
bonus of an order that was never a purchase), the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty.events import PointsRefunded, PointsReversed
from rapport.loyalty.ledger.accounts import lock_account
from rapport.loyalty.ledger.journal import (
    BeforeCommit,
    Posted,
    check_points,
    finish,
    record_transaction,
)
from rapport.loyalty.ledger.lots import consume_lots
from rapport.loyalty.ledger.movements import credit
from rapport.loyalty.ledger.settings import get_program
from rapport.loyalty.ledger.tables import ACCOUNTS, DEBTS, LOTS, TRANSACTIONS
from rapport.loyalty.models import ISSUED, MEMBER_DEBT, REDEEMED, Award
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound


@dataclass(frozen=True, slots=True)
class OrderPoints:
    """What an order has earned and what returns have already taken back."""

    earned: int = 0
    reversed: int = 0

    @property
    def reversible(self) -> int:
        return self.earned - self.reversed


def _known_as(db: Session, customer_id: str) -> list[str]:
    """The member and the profiles merged into them: a merge moves an order and the points
    left on its lots to the survivor, while the order's journal stays under the id it was
    booked to."""
    return [customer_id, *customers.merged_ids(db, customer_id=customer_id)]


def order_points(db: Session, *, customer_id: str, order_id: str) -> OrderPoints:
    """Points the order issued to the member that a return can take back, and how many
    returns took back (including any written off because the program allows no debt). A
    bonus a rule gave for the order as a whole (a first purchase, a referred friend's first
    order) is not among them: it stays after a return, as the earning processor's returns
    leave it (they take back only what the returned lines earned)."""
    known_as = _known_as(db, customer_id)
    whole_order_bonuses = {
        transaction_id
        for transaction_id, line_points in db.execute(
            select(Award.transaction_id, Award.line_points).where(
                Award.customer_id.in_(known_as),
                Award.order_id == order_id,
                Award.transaction_id.is_not(None),
            )
        )
        if not line_points
    }
    earned = reversed_ = 0
    for transaction_id, kind, points, debt_change, details, rule_id in db.execute(
        select(
            TRANSACTIONS.c.id,
            TRANSACTIONS.c.kind,
            TRANSACTIONS.c.points,
            TRANSACTIONS.c.debt_change,
            TRANSACTIONS.c.details,
            TRANSACTIONS.c.rule_id,
        ).where(
            TRANSACTIONS.c.customer_id.in_(known_as),
            TRANSACTIONS.c.order_id == order_id,
            TRANSACTIONS.c.kind.in_(("earn", "reverse")),
        )
    ):
        if kind == "earn":
            if transaction_id not in whole_order_bonuses:
                earned += points - debt_change  # issued: credited plus the debt it paid
        elif rule_id is None:  # a bonus's own reversal (``reverse_bonus``) names its rule
            reversed_ += -points + debt_change + int((details or {}).get("written_off", 0))
    return OrderPoints(earned=earned, reversed=reversed_)


def reverse_for_return(
    db: Session,
    *,
    customer_id: str,
    order_id: str,
    points: int | None = None,
    share: Fraction | None = None,
    reason: str = "Order returned",
    before_commit: BeforeCommit | None = None,
    commit: bool = True,
) -> Posted:
    """Take back the points an order earned, for the part returned: ``points`` outright or
    ``share`` (returned value / order value) of what the order earned, rounded down in the
    member's favour, never more than the order still has to reverse. Points still open on
    the order's own lots go first, then the member's other lots oldest first; what the
    member already spent becomes debt (or, when the program allows no debt, is written
    off). The balance never goes negative."""
    if (points is None) == (share is None):
        raise InvalidInput("Give either points or share", field="points")
    if share is not None and not 0 < share <= 1:
        raise InvalidInput("share must be more than 0 and at most 1", field="share")
    if points is not None:
        check_points(points)
    now = clock.now()
    locked = lock_account(db, customer_id)
    if locked is None:
        db.rollback()
        raise NotFound(f"Customer {customer_id!r} has no points yet", field="customer_id")
    balance, debt = locked
    so_far = order_points(db, customer_id=customer_id, order_id=order_id)
    if so_far.earned == 0:
        db.rollback()
        raise InvalidInput(f"Order {order_id!r} earned no points for this member", field="order_id")
    if points is not None:
        wanted = points
    else:
        assert share is not None
        wanted = int(so_far.earned * share)  # rounded down, in the member's favour
    to_reverse = min(wanted, so_far.reversible)
    if to_reverse <= 0:
        db.rollback()
        raise Conflict(f"The points of order {order_id!r} were already reversed", field="order_id")
    posted, fact = _take_back(
        db,
        customer_id=customer_id,
        order_id=order_id,
        points=to_reverse,
        wanted=wanted,
        reason=reason,
        rule_id=None,
        balance=balance,
        debt=debt,
        now=now,
    )
    return finish(db, posted, fact, channel="web", before_commit=before_commit, commit=commit)


def reverse_bonus(
    db: Session,
    *,
    customer_id: str,
    order_id: str,
    rule_id: str,
    points: int,
    reason: str,
    commit: bool = True,
) -> Posted:
    """Take back ``points`` a rule (``rule_id``) gave for ``order_id`` as a whole, such as the
    first-purchase bonus of an order cancelled before it was handed over: one ``reverse``
    transaction naming the rule, taken as a return's reversal is (the order's own lots
    first, then the member's others oldest first; points already spent become debt, or are
    written off where the program allows no debt). It is not counted among the order's
    reversals of what its lines earned (``order_points``). The caller makes sure it runs
    once per bonus."""
    check_points(points)
    locked = lock_account(db, customer_id)
    if locked is None:
        db.rollback()
        raise NotFound(f"Customer {customer_id!r} has no points yet", field="customer_id")
    balance, debt = locked
    posted, fact = _take_back(
        db,
        customer_id=customer_id,
        order_id=order_id,
        points=points,
        wanted=points,
        reason=reason,
        rule_id=rule_id,
        balance=balance,
        debt=debt,
        now=clock.now(),
    )
    return finish(db, posted, fact, channel="web", before_commit=None, commit=commit)


def _take_back(
    db: Session,
    *,
    customer_id: str,
    order_id: str,
    points: int,
    wanted: int,
    reason: str,
    rule_id: str | None,
    balance: int,
    debt: int,
    now: datetime,
) -> tuple[Posted, PointsReversed]:
    """Post the reversal of ``points`` of ``order_id`` on the locked member (``balance``,
    ``debt``): the order's open lots first, then the others; the shortfall is debt or
    written off."""
    to_reverse = points
    order_lots = db.execute(
        select(LOTS.c.id, LOTS.c.remaining)
        .where(
            LOTS.c.customer_id == customer_id,
            LOTS.c.order_id == order_id,
            LOTS.c.remaining > 0,
        )
        .order_by(LOTS.c.earned_at, LOTS.c.id)
    ).all()
    other_lots = db.execute(
        select(LOTS.c.id, LOTS.c.remaining)
        .where(
            LOTS.c.customer_id == customer_id,
            (LOTS.c.order_id != order_id) | LOTS.c.order_id.is_(None),
            LOTS.c.remaining > 0,
        )
        .order_by(LOTS.c.earned_at, LOTS.c.id)
    ).all()
    from_balance = min(to_reverse, balance)
    shortfall = to_reverse - from_balance
    program = get_program(db)
    new_debt = shortfall if program.allow_debt else 0
    written_off = shortfall - new_debt
    transaction_id = record_transaction(
        db,
        customer_id=customer_id,
        kind="reverse",
        points=-from_balance,
        reason=reason,
        legs=[
            (customer_id, -from_balance),
            (MEMBER_DEBT, -new_debt),
            (ISSUED, from_balance + new_debt),
        ],
        order_id=order_id,
        rule_id=rule_id,
        debt_change=new_debt,
        details={"requested": wanted, "written_off": written_off} if written_off else {},
        now=now,
    )
    taken = consume_lots(
        db,
        customer_id=customer_id,
        points=from_balance,
        transaction_id=transaction_id,
        lots=[*order_lots, *other_lots],
    )
    assert taken == from_balance, "lots hold less than the balance"
    balance, debt = balance - from_balance, debt + new_debt
    db.execute(
        update(ACCOUNTS)
        .where(ACCOUNTS.c.account_id == customer_id)
        .values(balance=balance, debt=debt, updated_at=now)
    )
    if new_debt:
        db.execute(
            insert(DEBTS),
            {
                "customer_id": customer_id,
                "transaction_id": transaction_id,
                "order_id": order_id,
                "amount": new_debt,
                "remaining": new_debt,
                "created_at": now,
            },
        )
    posted = Posted(
        transaction_id=transaction_id,
        customer_id=customer_id,
        kind="reverse",
        points=-from_balance,
        balance=balance,
        debt=debt,
        debt_change=new_debt,
        written_off=written_off,
    )
    fact = PointsReversed(
        transaction_id=posted.transaction_id,
        points=posted.points,
        balance=posted.balance,
        order_id=order_id,
        debt_change=new_debt,
        written_off=written_off,
    )
    return posted, fact


def points_paid(db: Session, *, customer_id: str, order_id: str) -> tuple[int, int]:
    """Points the member paid ``order_id`` with, and how many returns gave back so far."""
    paid = refunded = 0
    for kind, points, debt_change in db.execute(
        select(TRANSACTIONS.c.kind, TRANSACTIONS.c.points, TRANSACTIONS.c.debt_change).where(
            TRANSACTIONS.c.customer_id.in_(_known_as(db, customer_id)),
            TRANSACTIONS.c.order_id == order_id,
            TRANSACTIONS.c.kind.in_(("redeem", "refund")),
        )
    ):
        if kind == "redeem":
            paid += -points
        else:
            refunded += points - debt_change  # credited, plus the debt it paid
    return paid, refunded


def refund_points_paid(
    db: Session,
    *,
    customer_id: str,
    order_id: str,
    share_to_date: Fraction,
    reason: str,
    commit: bool = True,
) -> Posted | None:
    """Give back the points the member paid ``order_id`` with, for the part returned:
    ``share_to_date`` is the share of the order's points payment that all its returns so far
    refund (this one included), so the points given back over several returns add up to
    exactly those paid once everything came back (each return rounds down, the last one
    gives the rest). The points come back as a new lot with the program's expiry; debt
    from earlier returns is paid first. ``None`` when nothing is left to give back."""
    if not 0 <= share_to_date <= 1:
        raise InvalidInput("share_to_date must be between 0 and 1", field="share_to_date")
    paid, refunded = points_paid(db, customer_id=customer_id, order_id=order_id)
    to_refund = int(paid * share_to_date) - refunded  # rounded down until the last return
    if to_refund <= 0:
        return None
    posted = credit(
        db,
        customer_id=customer_id,
        points=to_refund,
        kind="refund",
        source_account=REDEEMED,
        reason=reason,
        order_id=order_id,
        rule_id=None,
        expires_at=None,
        earned_at=None,
        pays_debt=True,
    )
    fact = PointsRefunded(
        transaction_id=posted.transaction_id,
        points=posted.points,
        balance=posted.balance,
        order_id=order_id,
        debt_change=posted.debt_change,
    )
    return finish(db, posted, fact, channel="web", before_commit=None, commit=commit)
