"""The earning processor: points from the event log, each exactly once.

It reads the log in order (``events.processors``) and, in the processor's own transaction, gives
points for ``order_placed`` (spend, first purchase), takes back what returned lines earned on
``order_returned``, apologises for ``delivery_late`` and ``delivery_failed``, rewards
``preference_shared`` and ``review_verified``, and keeps tiers current. Every award is a row
unique per member, rule and key (an order, a field, a review, a year) written with its ledger
movement, so a replayed batch gives nothing twice. The birthday bonus comes from a daily job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.customers.models import Customer
from rapport.events.models import Event
from rapport.loyalty import referrals
from rapport.loyalty import service as ledger
from rapport.loyalty.models import Award, QualifyingActivity, TierStanding
from rapport.loyalty.program.rules import (
    Decision,
    Fact,
    FactKind,
    Member,
    OrderLine,
    RuleSet,
    evaluate,
    period_start,
)
from rapport.loyalty.program.versions import pinned, rule_set, tier_policy
from rapport.loyalty.tiers.reviews import review_tier
from rapport.platform import clock

log = logging.getLogger(__name__)

# Core inserts on the tables (``insert(Award)`` would take the ORM's slower bulk path).
_AWARDS = cast(Table, Award.__table__)
_QUALIFYING = cast(Table, QualifyingActivity.__table__)


def process_loyalty_events(db: Session, events: list[Event]) -> None:
    """The processor's handler: one batch of the log, in order, in one transaction. Events of
    erased people are passed over: their account is closed and earns nothing (an order
    placed before the erasure may reach the log, or this processor, after it)."""
    erased = _erased(db, {e.customer_id for e in events if e.customer_id and e.type in _HANDLERS})
    with pinned(db):
        for event in events:
            handler = _HANDLERS.get(event.type)
            customer_id = event.customer_id
            if handler is not None and customer_id is not None and customer_id not in erased:
                handler(db, event)


def _erased(db: Session, customer_ids: set[str]) -> set[str]:
    """Those of ``customer_ids`` whose profile, or the profile it was merged into, is erased
    (one query, two when some were merged)."""
    if not customer_ids:
        return set()
    rows = db.execute(
        select(Customer.customer_id, Customer.status, Customer.merged_into).where(
            Customer.customer_id.in_(sorted(customer_ids))
        )
    ).all()
    erased = {row.customer_id for row in rows if row.status == "erased"}
    merged = {row.customer_id: row.merged_into for row in rows if row.merged_into}
    if merged:
        gone = set(
            db.scalars(
                select(Customer.customer_id).where(
                    Customer.customer_id.in_(sorted(set(merged.values()))),
                    Customer.status == "erased",
                )
            )
        )
        erased |= {cid for cid, target in merged.items() if target in gone}
    return erased


# --- facts from events ----------------------------------------------------------------------


def order_lines(db: Session, raw_lines: list[dict[str, Any]]) -> list[OrderLine]:
    """An order event's lines with the catalogue's brand (rules may multiply by brand)."""
    skus = [str(line["sku"]) for line in raw_lines]
    products = catalog.get_products(db, skus=skus)
    lines = []
    for index, line in enumerate(raw_lines, start=1):
        product = products.get(str(line["sku"]))
        lines.append(
            OrderLine(
                line_no=int(line.get("line_no") or index),
                sku=str(line["sku"]),
                quantity=int(line["quantity"]),
                unit_price_minor=int(line["unit_price_minor"]),
                category=line.get("category") or (product.category_path if product else None),
                brand=product.brand if product else None,
            )
        )
    return lines


def order_fact(db: Session, event: Event) -> Fact:
    props = event.properties
    lines = order_lines(db, list(props.get("lines") or []))
    return Fact(
        kind="order_placed",
        customer_id=str(event.customer_id),
        occurred_at=event.occurred_at,
        channel=event.channel,
        order_id=str(props["order_id"]),
        lines=lines,
        # Points earn on money paid: the order's and lines' discounts and any part paid with
        # points are not spend.
        discount_minor=int(props.get("discount_minor") or 0)
        + sum(int(line.get("discount_minor") or 0) for line in props.get("lines") or [])
        + int(props.get("points_payment_minor") or 0),
        total_minor=int(props.get("total_minor") or 0),
    )


# --- the member as evaluation sees them ------------------------------------------------------


def member_context(db: Session, rules: RuleSet, fact: Fact) -> Member:
    customer_id = fact.customer_id
    policy = tier_policy(db, at=fact.occurred_at)
    standing = db.get(TierStanding, customer_id)
    tier = policy.tier(standing.tier_id if standing else None)
    this_order = f"order:{fact.order_id}" if fact.order_id else None
    earlier = db.scalar(
        select(func.count())
        .select_from(QualifyingActivity)
        .where(
            QualifyingActivity.customer_id == customer_id,
            QualifyingActivity.source_key.like("order:%"),
            QualifyingActivity.source_key != (this_order or ""),
        )
    )
    cap_used: dict[str, int] = {}
    for rule in rules.rules:
        if rule.cap is not None:
            since = period_start(fact.occurred_at, rule.cap.period)
            cap_used[rule.id] = int(
                db.scalar(
                    select(func.coalesce(func.sum(Award.points), 0)).where(
                        Award.customer_id == customer_id,
                        Award.rule_id == rule.id,
                        Award.awarded_at >= since,
                    )
                )
                or 0
            )
    keys = {
        key
        for key in (
            this_order,
            "first-order",
            f"field:{fact.preference_field}" if fact.preference_field else None,
            f"review:{fact.review_id}" if fact.review_id else None,
            f"birthday:{fact.occurred_at.year}",
        )
        if key is not None
    }
    awarded = frozenset(
        (rule_id, once_key)
        for rule_id, once_key in db.execute(
            select(Award.rule_id, Award.once_key).where(
                Award.customer_id == customer_id, Award.once_key.in_(keys)
            )
        )
    )
    return Member(
        tier=tier.id,
        tier_multiplier=Decimal(str(tier.benefits.points_multiplier)),
        earlier_orders=int(earlier or 0),
        cap_used=cap_used,
        awarded=awarded,
    )


# --- awarding --------------------------------------------------------------------------------


def award(
    db: Session,
    decision: Decision,
    fact: Fact,
    *,
    config_id: int | None,
    event_position: int | None,
    checked: bool = False,
) -> int:
    """Post one fired decision to the ledger with its award row, in the caller's transaction.
    Returns the points given (0 when this award was already made). ``checked``: the caller
    has already looked for an earlier award (evaluation does, through ``Member.awarded``)."""
    assert decision.once_key is not None
    if not checked and db.scalar(
        select(Award.id).where(
            Award.customer_id == fact.customer_id,
            Award.rule_id == decision.rule_id,
            Award.once_key == decision.once_key,
        )
    ):
        return 0
    points = min(decision.points, ledger.MAX_POINTS_PER_COMMAND)
    reason = f"{decision.rule_name}: {decision.why}"[:500]
    posted = ledger.earn(
        db,
        customer_id=fact.customer_id,
        points=points,
        reason=reason,
        order_id=fact.order_id,
        rule_id=decision.rule_id,
        earned_at=fact.occurred_at,
        channel=fact.channel if fact.channel in {"web", "app", "store", "call_center"} else "web",
        commit=False,
    )
    lines = {line.line_no: line.quantity for line in fact.lines}
    db.execute(
        insert(_AWARDS).values(
            customer_id=fact.customer_id,
            rule_id=decision.rule_id,
            once_key=decision.once_key,
            points=points,
            transaction_id=posted.transaction_id,
            order_id=fact.order_id,
            line_points={
                str(line_no): [line_points, lines.get(line_no, 1)]
                for line_no, line_points in decision.line_points.items()
            },
            reason=reason,
            config_id=config_id,
            event_position=event_position,
            awarded_at=fact.occurred_at,
        )
    )
    return points


def _earn_on(db: Session, fact: Fact, event: Event | None) -> list[Decision]:
    config_id, rules = rule_set(db, at=event.received_at if event else fact.occurred_at)
    member = member_context(db, rules, fact)
    decisions = evaluate(rules, fact, member)
    for decision in decisions:
        if decision.fired:
            award(
                db,
                decision,
                fact,
                config_id=config_id,
                event_position=event.position if event else None,
                checked=True,
            )
    return decisions


def _on_order_placed(db: Session, event: Event) -> None:
    fact = order_fact(db, event)
    source_key = f"order:{fact.order_id}"
    if db.scalar(select(QualifyingActivity.id).where(QualifyingActivity.source_key == source_key)):
        return  # already counted: a replay
    decisions = _earn_on(db, fact, event)
    spend = max(sum(line.total_minor for line in fact.lines) - fact.discount_minor, 0)
    spend_points = sum(d.points for d in decisions if d.fired and d.kind == "spend")
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
    transaction). Not linked to the order: a return does not take it back."""
    assert fact.order_id is not None
    payable = referrals.referral_awards(db, friend_id=fact.customer_id, order_id=fact.order_id)
    if not payable or not referrals.mark_completed(
        db, friend_id=fact.customer_id, order_id=fact.order_id, at=fact.occurred_at
    ):
        return
    # A referrer erased since has a closed account: their side is not paid.
    closed = _erased(db, {customer_id for customer_id, _, _ in payable})
    for customer_id, points, reason in payable:
        if customer_id in closed:
            continue
        decision = Decision(
            rule_id=referrals.REFERRAL_RULE_ID,
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


def _on_order_returned(db: Session, event: Event) -> None:
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
    owed = Fraction(0)
    for line_points in db.scalars(
        select(Award.line_points).where(
            Award.customer_id == customer_id, Award.order_id == order_id
        )
    ):
        for line_no, quantity in returned.items():
            points, bought = (line_points or {}).get(str(line_no), (0, 1))
            owed += Fraction(int(points) * min(quantity, int(bought)), max(int(bought), 1))
    reversible = ledger.order_points(db, customer_id=customer_id, order_id=order_id).reversible
    to_reverse = min(int(owed), reversible)  # rounded down, in the member's favour
    if to_reverse > 0:
        ledger.reverse_for_return(
            db,
            customer_id=customer_id,
            order_id=order_id,
            points=to_reverse,
            reason=f"Return of order {order_id}",
            commit=False,
        )
    db.add(
        QualifyingActivity(
            customer_id=customer_id,
            source_key=source_key,
            spend_minor=-int(props.get("refund_minor") or 0),
            points=-to_reverse,
            occurred_at=event.occurred_at,
        )
    )
    db.flush()


def _simple_fact(kind: FactKind) -> Callable[[Session, Event], None]:
    def handle(db: Session, event: Event) -> None:
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
        _earn_on(db, fact, event)

    return handle


def _on_customers_merged(db: Session, event: Event) -> None:
    """Two profiles became one: the merged-away member's open points move to the survivor,
    each lot keeping its expiry date, as two journal transactions (out of one account, into
    the other); their qualifying activity and awards follow, and the survivor's tier is
    reviewed. Debt stays with the old account (it is paid from later earning there)."""
    source, target = str(event.properties["merged_customer_id"]), str(event.customer_id)
    member = ledger.get_member(db, customer_id=source)
    if member is not None and member.balance > 0:
        ledger.adjust(
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
            ledger.adjust(
                db,
                customer_id=target,
                points=points,
                reason=f"Merged from {source}",
                expires_at=expires_at,
                commit=False,
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
    db.execute(delete(TierStanding).where(TierStanding.customer_id == source))
    db.flush()
    review_tier(db, customer_id=target, at=event.occurred_at)


_HANDLERS: dict[str, Callable[[Session, Event], None]] = {
    "customers_merged": _on_customers_merged,
    "order_placed": _on_order_placed,
    "order_returned": _on_order_returned,
    "delivery_late": _simple_fact("delivery_late"),
    "delivery_failed": _simple_fact("order_unfulfilled"),
    "preference_shared": _simple_fact("preference_shared"),
    "review_verified": _simple_fact("review_verified"),
}


# --- birthdays -------------------------------------------------------------------------------


def give_birthday_points(db: Session, *, today: datetime | None = None) -> int:
    """The daily birthday bonus for customers whose shared birthday is today; once a year."""
    at = today or clock.now()
    given = 0
    born_today = customers.birthdays_on(db, month=at.month, day=at.day)
    # A personal use of what they told us: only live profiles the gate allows.
    allowed = customers.contactable(db, customer_ids=born_today, purpose=customers.SERVICE)
    for customer_id in sorted(set(allowed.values())):
        fact = Fact(kind="birthday", customer_id=customer_id, occurred_at=at)
        given += sum(d.points for d in _earn_on(db, fact, None) if d.fired)
    db.commit()
    return given
