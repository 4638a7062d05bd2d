"""Goodwill points an agent gives a customer by hand (the customer page's goodwill form, a
ticket's apology points when it is resolved): each
grant is capped (``MANUAL_POINTS_MAX``), and so is what one customer is given over a rolling
window, the program's ``goodwill_window_points`` in any ``goodwill_window_days`` days (20,000 in
30 until an operator changes them), so the per-grant cap cannot be given again and again.

A grant is a staff adjustment marked ``rule_id = 'goodwill'``; the window counts those. The
check and the credit run under the member account's row lock (the one every ledger command
takes), so two grants at once cannot both pass the cap: the second waits for the first's commit
and then counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.accounts import hold_member, open_account
from rapport.loyalty.ledger.journal import MANUAL_POINTS_MAX, BeforeCommit, Posted
from rapport.loyalty.ledger.movements import adjust
from rapport.loyalty.ledger.settings import get_program
from rapport.loyalty.ledger.tables import TRANSACTIONS
from rapport.platform import clock, formatting
from rapport.platform.errors import Conflict, InvalidInput

GOODWILL_RULE = "goodwill"


@dataclass(frozen=True, slots=True)
class GoodwillRoom:
    """What the window leaves for one customer at ``at``."""

    window_points: int
    window_days: int
    given: int  # goodwill given in the window
    left: int  # what may still be given now
    grants: tuple[tuple[datetime, int], ...]  # (when, points) in the window, oldest first
    at: datetime

    def free_from(self, points: int) -> datetime | None:
        """When ``points`` more may be given (now if they fit; None if the window never
        holds so many)."""
        if points > self.window_points:
            return None
        if points <= self.left:
            return self.at
        need, freed = points - self.left, 0
        for when, given in self.grants:
            freed += given
            if freed >= need:
                return when + timedelta(days=self.window_days)
        return None  # unreachable: every grant in the window leaves it in time


def goodwill_room(db: Session, *, customer_id: str, at: datetime | None = None) -> GoodwillRoom:
    """The goodwill the customer was given in the program's window up to ``at`` (default now),
    and what is left."""
    moment = at or clock.now()
    program = get_program(db)
    since = moment - timedelta(days=program.goodwill_window_days)
    grants = tuple(
        (clock.as_utc(when), int(points))
        for when, points in db.execute(
            select(TRANSACTIONS.c.created_at, TRANSACTIONS.c.points)
            .where(
                TRANSACTIONS.c.customer_id == customer_id,
                TRANSACTIONS.c.kind == "adjust",
                TRANSACTIONS.c.rule_id == GOODWILL_RULE,
                TRANSACTIONS.c.created_at > since,
            )
            .order_by(TRANSACTIONS.c.created_at, TRANSACTIONS.c.id)
        )
    )
    given = sum(points for _, points in grants)
    return GoodwillRoom(
        window_points=program.goodwill_window_points,
        window_days=program.goodwill_window_days,
        given=given,
        left=max(program.goodwill_window_points - given, 0),
        grants=grants,
        at=moment,
    )


def _over_the_window(customer_id: str, room: GoodwillRoom, points: int, *, field: str) -> Conflict:
    free_from = room.free_from(points)
    when = (
        f"the {points:,} asked can be given from {formatting.moment(free_from)}"
        if free_from is not None
        else f"the window never holds {points:,}"
    )
    return Conflict(
        f"Goodwill for {customer_id} is capped at {room.window_points:,} points in any "
        f"{room.window_days} days: {room.given:,} given in the last {room.window_days} days, so "
        f"{room.left:,} more can be given now; {when}",
        field=field,
        goodwill_left=room.left,
        goodwill_free_from=free_from.isoformat() if free_from is not None else None,
    )


def give_goodwill(
    db: Session,
    *,
    customer_id: str,
    points: int,
    reason: str,
    actor: str,
    before_commit: BeforeCommit | None = None,
    commit: bool = True,
    field: str = "points",
) -> Posted:
    """Give goodwill points (an adjustment marked ``goodwill``, recording ``actor``): 1 to
    ``MANUAL_POINTS_MAX``, and no more than the program's window leaves the customer (409
    naming ``field``, saying what is left and from when the points asked can be given).

    ``commit=False`` leaves the commit to a caller that writes more in the same transaction
    (a ticket's resolution); a refusal rolls the whole transaction back all the same, the
    caller's writes with it, so nothing is half done."""
    if not 1 <= points <= MANUAL_POINTS_MAX:
        raise InvalidInput(f"Points: a whole number from 1 to {MANUAL_POINTS_MAX:,}", field=field)
    # The member's profile held against a merge (a merged-away id's grant lands on the
    # survivor, never on the old account after its points moved), then their account's row
    # lock (opening it on their first points): a grant at the same moment waits here, then
    # sees this one in the window.
    customer_id = hold_member(db, customer_id)
    customer_id, _ = open_account(db, customer_id, clock.now())
    room = goodwill_room(db, customer_id=customer_id)
    if points > room.left:
        db.rollback()
        raise _over_the_window(customer_id, room, points, field=field)
    return adjust(
        db,
        customer_id=customer_id,
        points=points,
        reason=reason,
        actor=actor,
        rule_id=GOODWILL_RULE,
        before_commit=before_commit,
        commit=commit,
    )
