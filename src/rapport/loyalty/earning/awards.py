"""Awards: from a fact (an order placed, a preference shared, a birthday …) to points, through
the earning rules in force when it happened.

A fact is evaluated against what the program knows of the member (tier, earlier orders, caps
used this period, awards already made); every fired decision is posted to the ledger with an
:class:`Award` row unique per member, rule and key, in the caller's transaction, so nothing
is given twice. The earning processor, the birthday job, the checkout (points to be earned)
and the simulator all go through here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, insert, literal, select
from sqlalchemy.orm import Session, aliased

from rapport.catalog import service as catalog
from rapport.events.service import LoggedEvent
from rapport.loyalty.benefits import multiplier_and_source
from rapport.loyalty.ledger.journal import MAX_POINTS_PER_COMMAND
from rapport.loyalty.ledger.movements import earn
from rapport.loyalty.ledger.settings import get_program
from rapport.loyalty.models import Award, QualifyingActivity, TierStanding
from rapport.loyalty.program.rules import (
    FIRST_ORDER,
    Decision,
    Fact,
    Member,
    OrderLine,
    RuleSet,
    evaluate,
    period_start,
)
from rapport.loyalty.program.versions import rule_set, tier_policy

# Core inserts on the tables (``insert(Award)`` would take the ORM's slower bulk path).
_AWARDS = cast(Table, Award.__table__)


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


def order_fact(db: Session, event: LoggedEvent) -> Fact:
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
        currency=props.get("currency"),
        program_currency=get_program(db).currency,
    )


# An order in another currency than the program's earns nothing (nothing converts), so it is
# no earlier order for a first-purchase bonus: its qualifying row is kept under this prefix,
# not ``order:``, which only orders that can earn carry.
FOREIGN_ORDER_PREFIX = "order-in-other-currency:"


def qualifying_key(fact: Fact) -> str:
    """The key of an order's qualifying row: ``order:<id>`` for an order that can earn (one in
    the program's currency), the foreign prefix for one that cannot."""
    return f"{FOREIGN_ORDER_PREFIX if fact.unconverted else 'order:'}{fact.order_id}"


def standing_orders(customer_id: str) -> list[ColumnElement[bool]]:
    """The conditions on ``QualifyingActivity`` that keep the customer's orders still
    standing that could earn: an order cancelled since was never a purchase (its ``cancel:``
    row is the earning processor's record of the cancellation), and one in another currency
    than the program's earned nothing (its row is under ``FOREIGN_ORDER_PREFIX``)."""
    cancellation = aliased(QualifyingActivity)
    return [
        QualifyingActivity.customer_id == customer_id,
        QualifyingActivity.source_key.like("order:%"),
        ~select(cancellation.id)
        .where(
            cancellation.source_key
            == literal("cancel:") + func.substr(QualifyingActivity.source_key, 7)
        )
        .exists(),
    ]


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
            *standing_orders(customer_id),
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
            FIRST_ORDER,
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
    multiplier, plan_name = multiplier_and_source(
        db,
        customer_id=customer_id,
        tier_multiplier=tier.benefits.points_multiplier,
        at=fact.occurred_at,
    )
    return Member(
        tier=tier.id,
        tier_multiplier=Decimal(str(multiplier)),
        multiplier_plan=plan_name,
        earlier_orders=int(earlier or 0),
        cap_used=cap_used,
        awarded=awarded,
    )


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
    points = min(decision.points, MAX_POINTS_PER_COMMAND)
    reason = f"{decision.rule_name}: {decision.why}"[:500]
    posted = earn(
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


def award_first_purchase(db: Session, fact: Fact, *, at: datetime, why: str) -> int:
    """Give ``fact``'s order the first-purchase bonus as the customer's first order, judged by
    the rules in force when it was placed (``fact.occurred_at``), posted ``at`` with ``why``:
    the caller found it to be the customer's earliest order still standing, the one before it
    having been cancelled. Only first-purchase rules are judged again (what the order's lines
    earned was settled when it was placed); a bonus given already is not given twice.
    Returns the points given."""
    config_id, rules = rule_set(db, at=fact.occurred_at)
    member = replace(member_context(db, rules, fact), earlier_orders=0)
    given = 0
    for decision in evaluate(rules, fact, member):
        if decision.fired and decision.kind == "first_purchase":
            given += award(
                db,
                replace(decision, why=why),
                replace(fact, occurred_at=at),
                config_id=config_id,
                event_position=None,
                checked=True,
            )
    return given


def earn_on(db: Session, fact: Fact, event: LoggedEvent | None) -> list[Decision]:
    config_id, rules = rule_set(db, at=event.received_at if event else fact.occurred_at)
    member = member_context(db, rules, fact)
    decisions = evaluate(rules, fact, member)
    for decision in decisions:
        if not decision.fired and decision.kind == "spend" and fact.unconverted:
            _record_unearned(db, decision, fact, config_id=config_id, event=event)
        elif decision.fired:
            award(
                db,
                decision,
                fact,
                config_id=config_id,
                event_position=event.position if event else None,
                checked=True,
            )
    return decisions


def _record_unearned(
    db: Session, decision: Decision, fact: Fact, *, config_id: int | None, event: LoggedEvent | None
) -> None:
    """An award of no points, with its reason ("1 point per euro: order in KRW, program in
    EUR: no points"), for an order whose amounts the spend rule could not read: no ledger
    movement, but the earn log says why the order earned nothing, once."""
    if decision.once_key is None or event is None:
        return
    if db.scalar(
        select(Award.id).where(
            Award.customer_id == fact.customer_id,
            Award.rule_id == decision.rule_id,
            Award.once_key == decision.once_key,
        )
    ):
        return
    db.execute(
        insert(_AWARDS).values(
            customer_id=fact.customer_id,
            rule_id=decision.rule_id,
            once_key=decision.once_key,
            points=0,
            transaction_id=None,
            order_id=fact.order_id,
            line_points={},
            reason=f"{decision.rule_name}: {decision.why}"[:500],
            config_id=config_id,
            event_position=event.position,
            awarded_at=fact.occurred_at,
        )
    )
