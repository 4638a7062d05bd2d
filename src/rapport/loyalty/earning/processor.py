"""The earning processor: points from the event log, each exactly once.

It reads the log in order (a processor registered through ``events.service``, see
``loyalty.tasks``) and, in the processor's own transaction, gives points for ``order_placed``
(spend, first purchase), takes back what returned lines earned on ``order_returned`` and
gives back the points the order was paid with for the part returned, does both for the
whole order on ``order_cancelled``, where it also takes back its first-purchase bonus and
releases the coupons it used,
apologises for ``delivery_late`` and ``delivery_failed``, rewards ``preference_shared`` and
``review_verified``, moves a merged-away member's points to the survivor on
``customers_merged``, and keeps tiers current. Every award is a row unique per member, rule
and key (an order, a field, a review, a year) written with its ledger movement
(:mod:`~rapport.loyalty.earning.awards`), so a replayed batch gives nothing twice. The
birthday bonus comes from a daily job (:mod:`~rapport.loyalty.earning.birthdays`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from fractions import Fraction
from typing import cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session, aliased

from rapport.customers import service as customers
from rapport.events.service import LoggedEvent
from rapport.loyalty.earning.awards import (
    FOREIGN_ORDER_PREFIX,
    award,
    award_first_purchase,
    earn_on,
    order_fact,
    qualifying_key,
    standing_orders,
)
from rapport.loyalty.ledger.accounts import lock_account, move_debt
from rapport.loyalty.ledger.balances import get_member
from rapport.loyalty.ledger.movements import adjust
from rapport.loyalty.ledger.returns import (
    order_points,
    refund_points_paid,
    reverse_bonus,
    reverse_for_return,
)
from rapport.loyalty.ledger.settings import get_program
from rapport.loyalty.membership.lifecycle import move_merged_membership
from rapport.loyalty.models import Award, Coupon, QualifyingActivity, Referral, TierStanding
from rapport.loyalty.program.rules import (
    FIRST_ORDER,
    Decision,
    Fact,
    FactKind,
)
from rapport.loyalty.program.versions import pinned
from rapport.loyalty.referrals import completion as referral_completion
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.loyalty.tiers.reviews import review_after_cancellation, review_tier
from rapport.orders import service as orders
from rapport.platform import clock

log = logging.getLogger(__name__)

_QUALIFYING = cast(Table, QualifyingActivity.__table__)


def process_loyalty_events(db: Session, events: list[LoggedEvent]) -> None:
    """The processor's handler: one batch of the log, in order, in one transaction. Events of
    erased people are passed over: their account is closed and earns nothing (an order
    placed before the erasure may reach the log, or this processor, after it)."""
    erased = customers.erased_among(
        db, {e.customer_id for e in events if e.customer_id and e.type in _HANDLERS}
    )
    with pinned(db):
        for event in events:
            handler = _HANDLERS.get(event.type)
            customer_id = event.customer_id
            if handler is not None and customer_id is not None and customer_id not in erased:
                handler(db, event)
            elif event.type == "order_cancelled" and customer_id is None:
                # A guest's order earned nothing, but may have used a campaign coupon.
                order_id = str(event.properties["order_id"])
                reward_coupons.release_coupons(db, order_id=order_id, at=event.occurred_at)


def _on_order_placed(db: Session, event: LoggedEvent) -> None:
    fact = order_fact(db, event)
    source_key = qualifying_key(fact)
    # Under either key: the program's currency may have changed since it was counted.
    either = [f"order:{fact.order_id}", f"{FOREIGN_ORDER_PREFIX}{fact.order_id}"]
    if db.scalar(select(QualifyingActivity.id).where(QualifyingActivity.source_key.in_(either))):
        return  # already counted: a replay
    decisions = earn_on(db, fact, event)
    # An order in another currency than the program's is no spend in it (nothing converts).
    paid = max(sum(line.total_minor for line in fact.lines) - fact.discount_minor, 0)
    spend = 0 if fact.unconverted else paid
    # Toward a points-based tier count the spend rules' base points: a tier's or a paid plan's
    # multiplier speeds earning, not progress (docs/loyalty-program.md, Tiers).
    spend_points = sum(d.qualifying_points for d in decisions if d.fired and d.kind == "spend")
    db.execute(
        insert(_QUALIFYING).values(
            customer_id=fact.customer_id,
            source_key=source_key,
            spend_minor=spend,
            points=spend_points,
            occurred_at=fact.occurred_at,
        )
    )
    _complete_referral(db, fact)
    review_tier(db, customer_id=fact.customer_id, at=fact.occurred_at)


def _complete_referral(db: Session, fact: Fact) -> None:
    """A referred friend's first purchase pays both sides, once (the referral closes in this
    transaction). Not linked to the order: a return does not take it back; a cancellation
    does (``_take_back_referral``). Only an order that can earn completes it, as only one
    earns the first-purchase bonus (``Fact.unconverted``: one in another currency than the
    program's earns nothing, so it leaves the referral open for the next)."""
    assert fact.order_id is not None
    if fact.unconverted:
        return
    payable = referral_completion.referral_awards(
        db, friend_id=fact.customer_id, order_id=fact.order_id
    )
    if not payable or not referral_completion.mark_completed(
        db, friend_id=fact.customer_id, order_id=fact.order_id, at=fact.occurred_at
    ):
        return
    # A referrer erased since has a closed account: their side is not paid.
    closed = customers.erased_among(db, {customer_id for customer_id, _, _ in payable})
    for customer_id, points, reason in payable:
        if customer_id in closed:
            continue
        decision = Decision(
            rule_id=referral_completion.REFERRAL_RULE_ID,
            rule_name="Referral",
            kind="referral",
            fired=True,
            points=points,
            why=reason,
            once_key=f"referral:{fact.customer_id}",
        )
        paid = Fact(
            kind="order_placed",
            customer_id=customer_id,
            occurred_at=fact.occurred_at,
            channel=fact.channel,
        )
        award(db, decision, paid, config_id=None, event_position=None)


def _on_order_returned(db: Session, event: LoggedEvent) -> None:
    """What the returned lines earned is taken back cumulatively: the points all the order's
    returns so far (this one included) would take back, rounded down as the earn was, less
    what was already reversed; so a whole order returned in several parts gives back exactly
    what it earned, and a part never more than 1 point off its proportional share."""
    props = event.properties
    customer_id = str(event.customer_id)
    order_id = str(props["order_id"])
    source_key = f"return:{props.get('return_id') or order_id}:{event.position}"
    if db.scalar(select(QualifyingActivity.id).where(QualifyingActivity.source_key == source_key)):
        return
    returned = {
        int(line["line_no"]): int(line["quantity"])
        for line in props.get("lines") or []
        if line.get("line_no") is not None
    }
    # The member's account row first: returns of one order are counted one after another.
    lock_account(db, customer_id)
    owed_to_date = _returned_to_date(db, customer_id=customer_id, order_id=order_id, now=returned)
    so_far = order_points(db, customer_id=customer_id, order_id=order_id)
    # rounded down as the earn was, less what earlier returns (or anyone) already reversed
    to_reverse = max(min(int(owed_to_date) - so_far.reversed, so_far.reversible), 0)
    if to_reverse > 0:
        reverse_for_return(
            db,
            customer_id=customer_id,
            order_id=order_id,
            points=to_reverse,
            reason=f"Return of order {order_id}",
            commit=False,
        )
    points_paid_minor = int(props.get("points_paid_minor") or 0)
    if points_paid_minor > 0:
        refund_points_paid(
            db,
            customer_id=customer_id,
            order_id=order_id,
            share_to_date=Fraction(
                int(props.get("points_refunded_to_date_minor") or 0), points_paid_minor
            ),
            reason=f"Points paid for order {order_id}, given back on its return",
            commit=False,
        )
    db.add(
        QualifyingActivity(
            customer_id=customer_id,
            source_key=source_key,
            spend_minor=-_refund_spend(
                db, order_id=order_id, refund_minor=props.get("refund_minor")
            ),
            points=-_qualifying_share(db, order_id=order_id, points=to_reverse, of=so_far.earned),
            occurred_at=event.occurred_at,
        )
    )
    db.flush()


def _qualifying_share(db: Session, *, order_id: str, points: int, of: int) -> int:
    """The qualifying points that ``points`` taken back of the ``of`` an order earned stand
    for: the same share of what the order counted toward a points-based tier (its base
    points, without the member's multiplier), rounded down."""
    counted = db.scalar(
        select(QualifyingActivity.points).where(
            QualifyingActivity.source_key == f"order:{order_id}"
        )
    )
    if not counted or of <= 0:
        return 0
    return min(points, of) * int(counted) // of


def _refund_spend(db: Session, *, order_id: str, refund_minor: object) -> int:
    """The spend a return takes off the member's qualifying activity: its refund, unless the
    order was in another currency than the program's (it counted as no spend)."""
    order = orders.get_order(db, order_id=order_id)
    if order is not None and order.currency != get_program(db).currency:
        return 0
    return int(str(refund_minor or 0))


def _returned_to_date(
    db: Session, *, customer_id: str, order_id: str, now: dict[int, int]
) -> Fraction:
    """The points the order's returns so far take back, exactly: each award's points per line
    times the share of the line's units returned, ``now`` (line number: units) added to the
    units earlier returns brought back. Each award keeps the units returned per line as the
    third item of its ``line_points`` (``[points, bought, returned]``), updated here."""
    owed = Fraction(0)
    for found in db.scalars(
        select(Award)
        .where(Award.customer_id == customer_id, Award.order_id == order_id)
        .order_by(Award.id)
    ):
        kept: dict[str, list[int]] = {}
        for line_no, held in (found.line_points or {}).items():
            points, bought = int(held[0]), max(int(held[1]), 1)
            back = min(int(held[2]) if len(held) > 2 else 0, bought)
            back = min(back + now.get(int(line_no), 0), bought)
            owed += Fraction(points * back, bought)
            kept[line_no] = [points, bought, back]
        if kept and kept != found.line_points:
            found.line_points = kept
    db.flush()
    return owed


def _on_order_cancelled(db: Session, event: LoggedEvent) -> None:
    """An order called off before it was handed over was never a purchase: the points its
    lines earned are taken back (as a whole return takes them back, with
    ``reverse_for_return``), so is its first-purchase bonus (``_take_back_first_purchase``),
    the points it was paid with all come back (``refund_points_paid``) and the coupons it
    used are usable again unless expired (``release_coupons``); its spend leaves the
    member's qualifying activity, and it no longer counts as an earlier order, so the bonus
    goes to the member's first order still standing (``_first_purchase_moves_on``) or else
    to their next; a tier it lifted the member to is taken back at once
    (``review_after_cancellation``). A referral it completed is taken back from both sides
    and reopened (``_take_back_referral``), for that same order to complete."""
    props = event.properties
    customer_id = str(event.customer_id)
    order_id = str(props["order_id"])
    source_key = f"cancel:{order_id}"
    if db.scalar(select(QualifyingActivity.id).where(QualifyingActivity.source_key == source_key)):
        return  # already handled: a replay
    so_far = order_points(db, customer_id=customer_id, order_id=order_id)
    to_reverse = so_far.reversible
    if to_reverse > 0:
        reverse_for_return(
            db,
            customer_id=customer_id,
            order_id=order_id,
            points=to_reverse,
            reason=f"Order {order_id} cancelled",
            commit=False,
        )
    bonus_taken_back = _take_back_first_purchase(db, customer_id=customer_id, order_id=order_id)
    referral_reopened = _take_back_referral(db, customer_id=customer_id, order_id=order_id)
    reward_coupons.release_coupons(db, order_id=order_id, at=event.occurred_at)
    if int(props.get("points_paid_minor") or 0) > 0:
        refund_points_paid(
            db,
            customer_id=customer_id,
            order_id=order_id,
            share_to_date=Fraction(1),
            reason=f"Points paid for order {order_id}, given back on its cancellation",
            commit=False,
        )
    counted = db.execute(
        select(QualifyingActivity.spend_minor, QualifyingActivity.occurred_at).where(
            QualifyingActivity.source_key == f"order:{order_id}"
        )
    ).first()
    db.add(
        QualifyingActivity(
            customer_id=customer_id,
            source_key=source_key,
            spend_minor=-int(counted.spend_minor or 0) if counted else 0,
            points=-_qualifying_share(db, order_id=order_id, points=to_reverse, of=so_far.earned),
            occurred_at=event.occurred_at,
        )
    )
    db.flush()
    if bonus_taken_back or referral_reopened:
        _first_purchase_moves_on(
            db,
            customer_id=customer_id,
            cancelled=order_id,
            at=event.occurred_at,
            bonus=bonus_taken_back,
            referral=referral_reopened,
        )
    # A tier the order lifted the member to is taken back at once (it was never a purchase).
    review_after_cancellation(
        db,
        customer_id=customer_id,
        placed_at=counted.occurred_at if counted else event.occurred_at,
        at=event.occurred_at,
    )


def _take_back_first_purchase(db: Session, *, customer_id: str, order_id: str) -> bool:
    """Reverse the first-purchase bonus ``order_id`` earned, if it earned one (whether it
    did), and keep its award under another key (``first-order cancelled <order>``): the bonus
    is then neither taken back twice nor in the way of the member's first purchase now."""
    bonus = db.scalar(
        select(Award).where(
            Award.customer_id.in_(
                [customer_id, *customers.merged_ids(db, customer_id=customer_id)]
            ),
            Award.order_id == order_id,
            Award.once_key == FIRST_ORDER,
        )
    )
    if bonus is None:
        return False
    reverse_bonus(
        db,
        customer_id=customer_id,
        order_id=order_id,
        rule_id=bonus.rule_id,
        points=bonus.points,
        reason=f"First purchase bonus: order {order_id} cancelled",
        commit=False,
    )
    bonus.once_key = f"{FIRST_ORDER} cancelled {order_id}"[:120]
    db.flush()
    return True


def _take_back_referral(db: Session, *, customer_id: str, order_id: str) -> bool:
    """A referral ``order_id`` completed (the referred friend's first purchase): both sides'
    bonuses are reversed through the ledger (a side erased since had its points closed and is
    left alone), their awards kept under another key (``referral:<friend> cancelled
    <order>``), and the referral opened again, so the friend's real first purchase completes
    it. Whether there was one."""
    known_as = [customer_id, *customers.merged_ids(db, customer_id=customer_id)]
    referral = db.scalar(
        select(Referral).where(
            Referral.friend_id.in_(known_as),
            Referral.order_id == order_id,
            Referral.completed_at.is_not(None),
        )
    )
    if referral is None:
        return False
    once_key = f"referral:{referral.friend_id}"
    bonuses = db.scalars(
        select(Award)
        .where(Award.rule_id == referral_completion.REFERRAL_RULE_ID, Award.once_key == once_key)
        .order_by(Award.id)
    ).all()
    closed = customers.erased_among(db, {bonus.customer_id for bonus in bonuses})
    for bonus in bonuses:
        if bonus.customer_id not in closed:
            reverse_bonus(
                db,
                customer_id=bonus.customer_id,
                order_id=order_id,
                rule_id=bonus.rule_id,
                points=bonus.points,
                reason=f"Referral bonus: order {order_id} cancelled",
                commit=False,
            )
        bonus.once_key = f"{once_key} cancelled {order_id}"[:120]
    referral.completed_at = None
    referral.order_id = None
    db.flush()
    return True


def _first_purchase_moves_on(
    db: Session,
    *,
    customer_id: str,
    cancelled: str,
    at: datetime,
    bonus: bool,
    referral: bool,
) -> None:
    """What the cancelled order's first purchase earned goes to the customer's earliest order
    still standing, placed after it and before its cancellation (it was not their first order
    when it was placed, and is now): the first-purchase bonus (``bonus``), if the rules in
    force then give it one, and the completion of their referral (``referral``), both dated
    ``at``; with none standing, their next order earns them when placed."""
    first = db.scalar(
        select(QualifyingActivity.source_key)
        .where(*standing_orders(customer_id))
        .order_by(QualifyingActivity.occurred_at, QualifyingActivity.id)
        .limit(1)
    )
    order = orders.get_order(db, order_id=first.removeprefix("order:")) if first else None
    if order is None or order.status == "cancelled":
        return
    fact = Fact(
        kind="order_placed",
        customer_id=customer_id,
        occurred_at=clock.as_utc(order.placed_at),
        channel=order.channel,
        order_id=order.order_id,
        total_minor=order.total_minor,
        currency=order.currency,
        program_currency=get_program(db).currency,
    )
    if bonus:
        award_first_purchase(db, fact, at=at, why=f"first order ({cancelled} was cancelled)")
    if referral:
        _complete_referral(db, replace(fact, occurred_at=at))


def _simple_fact(kind: FactKind) -> Callable[[Session, LoggedEvent], None]:
    def handle(db: Session, event: LoggedEvent) -> None:
        props = event.properties
        fact = Fact(
            kind=kind,
            customer_id=str(event.customer_id),
            occurred_at=event.occurred_at,
            channel=event.channel,
            order_id=props.get("order_id"),
            preference_field=props.get("field"),
            review_id=props.get("review_id"),
        )
        earn_on(db, fact, event)

    return handle


def _on_delivery_late(db: Session, event: LoggedEvent) -> None:
    """A broken promise: late, or, when the delivery failed (``failed``), an unfulfilled order,
    as ``delivery_failed`` is: an apology rule on late deliveries only gives nothing for it."""
    kind: FactKind = "order_unfulfilled" if event.properties.get("failed") else "delivery_late"
    _simple_fact(kind)(db, event)


def move_merged_member(
    db: Session, *, source_id: str, target_id: str, at: datetime | None = None
) -> dict[str, int]:
    """Two profiles became one: the merged-away member's open points move to the survivor,
    each lot keeping its expiry date, as two journal transactions (out of one account, into
    the other); their debt follows (the survivor's later earning pays it, as their own);
    their qualifying activity, awards, coupons and paid membership follow
    (:func:`~rapport.loyalty.membership.lifecycle.move_merged_membership`), and the
    survivor's tier is reviewed.
    Answers what moved (the merge record's ``moved``).

    The merge's step (``loyalty.tasks``), in the merge's transaction, with both profiles
    locked: a money command on the old id ran wholly before (its points are moved here) or
    runs after, on the survivor. The ``customers_merged`` handler runs it again for what
    reached the old account since (an award the processor gave it first), and for merges
    committed before the step existed."""
    source, target = source_id, target_id
    lock_account(db, source)
    member = get_member(db, customer_id=source)
    moved = {"loyalty_points": 0, "loyalty_debt": 0}
    if member is not None and member.balance > 0:
        moved["loyalty_points"] = member.balance
        adjust(
            db,
            customer_id=source,
            points=-member.balance,
            reason=f"Merged into {target}",
            commit=False,
        )
        by_expiry: dict[datetime, int] = {}
        for lot in member.lots:
            by_expiry[lot.expires_at] = by_expiry.get(lot.expires_at, 0) + lot.remaining
        for expires_at, points in sorted(by_expiry.items()):
            adjust(
                db,
                customer_id=target,
                points=points,
                reason=f"Merged from {source}",
                expires_at=expires_at,
                commit=False,
            )
    if member is not None and member.debt > 0:
        moved["loyalty_debt"] = move_debt(
            db, source_id=source, target_id=target, now=at or clock.now()
        )
    db.execute(
        update(QualifyingActivity)
        .where(QualifyingActivity.customer_id == source)
        .values(customer_id=target)
        .execution_options(synchronize_session=False)
    )
    survivors = aliased(Award)  # the target's own awards, which the moved ones must not repeat
    repeated = (
        select(survivors.id)
        .where(
            survivors.customer_id == target,
            survivors.rule_id == Award.rule_id,
            survivors.once_key == Award.once_key,
        )
        .exists()
    )
    db.execute(
        update(Award)
        .where(Award.customer_id == source, ~repeated)
        .values(customer_id=target)
        .execution_options(synchronize_session=False)
    )
    # their coupons too (a reward bought before the merge is the survivor's to use)
    db.execute(
        update(Coupon)
        .where(Coupon.customer_id == source)
        .values(customer_id=target)
        .execution_options(synchronize_session=False)
    )
    # and their paid membership (the one paid further ahead, when both have one)
    moved.update(move_merged_membership(db, source_id=source, target_id=target, at=at))
    db.execute(delete(TierStanding).where(TierStanding.customer_id == source))
    db.flush()
    review_tier(db, customer_id=target, at=at or clock.now())
    return moved


def _on_customers_merged(db: Session, event: LoggedEvent) -> None:
    """A merge's event: :func:`move_merged_member` again, for what reached the old account
    after the merge's own step (or all of it, for a merge from before the step)."""
    move_merged_member(
        db,
        source_id=str(event.properties["merged_customer_id"]),
        target_id=str(event.customer_id),
        at=event.occurred_at,
    )


_HANDLERS: dict[str, Callable[[Session, LoggedEvent], None]] = {
    "customers_merged": _on_customers_merged,
    "order_placed": _on_order_placed,
    "order_returned": _on_order_returned,
    "order_cancelled": _on_order_cancelled,
    "delivery_late": _on_delivery_late,
    "delivery_failed": _simple_fact("order_unfulfilled"),
    "preference_shared": _simple_fact("preference_shared"),
    "review_verified": _simple_fact("review_verified"),
}
