"""A member's checkout from stored data, and applying it to the order when it is placed.

``checkout`` reads the member (tier, paid plan, points), their coupons, the catalogue's prices
and member prices (the ``members`` channel price) and the earning rules, and answers the
effects of the calculation (``rewards.checkout``). ``apply`` makes those effects true inside
the order's own transaction: the points paid are redeemed, the coupons consumed, and the
effects recorded with what the member saved, all or nothing with the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.loyalty.earning import awards as earning_awards
from rapport.loyalty.ledger.accounts import hold_member
from rapport.loyalty.ledger.balances import balance
from rapport.loyalty.ledger.movements import redeem
from rapport.loyalty.ledger.settings import get_program
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.models import AppliedCheckout
from rapport.loyalty.program.rules import Fact, OrderLine, evaluate
from rapport.loyalty.program.versions import checkout_policy, rule_set
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.loyalty.rewards.checkout import (
    CartLine,
    Checkout,
    MemberTerms,
    calculate,
    foreign_currency,
)
from rapport.loyalty.tiers.standing import member_tier
from rapport.platform import clock
from rapport.platform.errors import InvalidInput

MEMBER_PRICE_CHANNEL = "members"


class SentLine(Protocol):
    """A line as a request carries it (a cart's or an order's)."""

    @property
    def sku(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit_price_minor(self) -> int | None: ...


@dataclass(frozen=True)
class CartItem:
    sku: str
    quantity: int
    unit_price_minor: int | None = None  # default: the price on this channel and store

    @classmethod
    def of(cls, lines: Sequence[SentLine]) -> list[CartItem]:
        return [cls(line.sku, line.quantity, line.unit_price_minor) for line in lines]


def member_terms(db: Session, *, customer_id: str | None, at: datetime) -> MemberTerms:
    if customer_id is None:
        return MemberTerms()
    tier = member_tier(db, customer_id=customer_id)
    plan = memberships.current_plan(db, customer_id=customer_id, at=at)
    return MemberTerms(
        paying=plan is not None,
        paying_plan=plan.plan_id if plan else None,
        plan_free_shipping=bool(plan and plan.free_shipping),
        plan_member_prices=bool(plan and plan.member_prices),
        tier=tier.tier_id,
        tier_name=tier.tier_name,
        tier_discount_percent=tier.benefits.member_discount_percent,
        free_shipping_over_minor=tier.benefits.free_shipping_over_minor,
        points_balance=balance(db, customer_id=customer_id),
    )


def cart_lines(
    db: Session, items: Sequence[CartItem], *, channel: str, store_id: str | None
) -> list[CartLine]:
    products = catalog.get_products(db, skus=[item.sku for item in items])
    lines = []
    for number, item in enumerate(items, start=1):
        product = products.get(item.sku)
        if product is None:
            raise InvalidInput(f"Unknown product {item.sku!r}", field=f"lines.{number - 1}.sku")
        price = item.unit_price_minor
        if price is None:
            price = catalog.effective_price(db, sku=item.sku, channel=channel, store_id=store_id)
        assert price is not None
        member_price = catalog.effective_price(
            db, sku=item.sku, channel=MEMBER_PRICE_CHANNEL, store_id=store_id
        )
        lines.append(
            CartLine(
                line_no=number,
                sku=item.sku,
                quantity=item.quantity,
                unit_price_minor=price,
                category=product.category_path,
                brand=product.brand,
                member_unit_price_minor=member_price
                if member_price != product.price_minor
                else None,
            )
        )
    return lines


def checkout(
    db: Session,
    *,
    customer_id: str | None,
    items: Sequence[CartItem],
    channel: str,
    store_id: str | None = None,
    coupons: Sequence[str] = (),
    points_to_use: int = 0,
    shipping_minor: int = 0,
    at: datetime | None = None,
    currency: str | None = None,
) -> Checkout:
    """The effects for this cart, in the documented order. Reads only. A cart in another
    ``currency`` than the program's earns no points, as its order would not (the earning rules
    say why, in a points-earned effect of 0 points), and gets no coupon, points payment,
    member price, tier discount or free shipping (each says why, with 0 off)."""
    moment = at or clock.now()
    if points_to_use and customer_id is None:
        raise InvalidInput("Only a member can pay with points", field="points_to_use")
    lines = cart_lines(db, items, channel=channel, store_id=store_id)
    terms = member_terms(db, customer_id=customer_id, at=moment)
    valid, refused = reward_coupons.validate_coupons(
        db, customer_id=customer_id, codes=coupons, at=moment
    )
    program = get_program(db)
    policy = checkout_policy(
        db, point_value_minor_per_100=program.point_value_minor_per_100, currency=program.currency
    )

    def earn(paid: dict[int, int]) -> list[tuple[str, str, int]]:
        if customer_id is None:
            return []
        fact = Fact(
            kind="order_placed",
            customer_id=customer_id,
            occurred_at=moment,
            channel=channel,
            order_id="checkout",
            lines=[
                OrderLine(
                    line_no=line.line_no,
                    sku=line.sku,
                    quantity=1,
                    unit_price_minor=paid[line.line_no],
                    category=line.category,
                    brand=line.brand,
                )
                for line in lines
            ],
            total_minor=sum(paid.values()),
            currency=currency or program.currency,
            program_currency=program.currency,
        )
        _version, rules = rule_set(db, at=moment)
        member = earning_awards.member_context(db, rules, fact)
        return [
            (f"rule:{d.rule_id}", f"{d.rule_name}: {d.why}", d.points)
            for d in evaluate(rules, fact, member)
            if d.fired or (d.kind == "spend" and fact.unconverted)
        ]

    result = calculate(
        lines,
        member=terms,
        coupons=valid,
        points_to_use=points_to_use,
        shipping_minor=shipping_minor,
        policy=policy,
        earn=earn,
        foreign=foreign_currency(currency, program.currency),
    )
    result.refused_coupons.update(refused)
    return result


def apply(
    db: Session,
    *,
    order_id: str,
    customer_id: str | None,
    result: Checkout,
    coupons: Sequence[str],
    at: datetime | None = None,
) -> None:
    """Make ``result`` true for ``order_id`` in the caller's transaction (no commit): redeem
    the points paid, consume the coupons applied, record the effects. A refusal (points no
    longer there, a coupon used meanwhile) raises, and the caller's transaction rolls back."""
    moment = at or clock.now()
    applied = [e.rule for e in result.effects if e.step == "coupon"]
    # Refusals are keyed by the normalised code ("spring-10" and "SPRING10" are one coupon).
    normalised = dict.fromkeys(reward_coupons.normalise_code(code) for code in coupons)
    used_codes = [code for code in normalised if code not in result.refused_coupons]
    if applied and used_codes:
        reward_coupons.consume_coupons(
            db, codes=used_codes, order_id=order_id, at=moment, customer_id=customer_id
        )
    if result.points_used:
        assert customer_id is not None
        redeem(
            db,
            customer_id=customer_id,
            points=result.points_used,
            reason=f"Paid part of order {order_id}",
            order_id=order_id,
            commit=False,
        )
    if customer_id is None:
        return

    def saved(*steps: str, plan: bool | None = None) -> int:
        return sum(
            e.amount_minor
            for e in result.effects
            if e.step in steps and (plan is None or e.rule.startswith("plan:") == plan)
        )

    db.add(
        AppliedCheckout(
            order_id=order_id,
            customer_id=customer_id,
            effects=[asdict(effect) for effect in result.effects],
            plan_savings_minor=saved("member_price", "free_shipping", plan=True),
            tier_savings_minor=saved("tier_discount") + saved("free_shipping", plan=False),
            coupon_savings_minor=saved("coupon"),
            points_used=result.points_used,
            placed_at=moment,
        )
    )
    db.flush()


def apply_to_order(
    db: Session,
    *,
    order_id: str,
    customer_id: str | None,
    channel: str,
    store_id: str | None,
    lines: Sequence[CartItem],
    discount_minor: int,
    shipping_minor: int,
    points_payment_minor: int,
    coupons: Sequence[str],
    points_to_use: int,
    shipping_before_minor: int,
    at: datetime,
    currency: str | None = None,
) -> Checkout:
    """For ``POST /v1/orders`` with a loyalty block, in the order's transaction: work out the
    checkout effects, refuse an order carrying a coupon used or expired since its checkout
    (409 coupon-unavailable naming ``loyalty.coupons.N``, also when another order takes it
    while this one is applied), then one whose totals carry other effects (422 naming the
    field and the expected amount), then apply them. An order in another ``currency`` than the
    program's carrying coupons or points to use is refused first (422 naming ``loyalty``):
    those apply only in the program's currency."""
    foreign = foreign_currency(currency, get_program(db).currency)
    if foreign is not None and (coupons or points_to_use):
        raise InvalidInput(
            f"An {foreign[0].lower()}{foreign[1:]}; send the order without loyalty coupons "
            "or points_to_use",
            field="loyalty",
        )
    if customer_id is not None and (coupons or points_to_use):
        # Points and coupons spent by a merged-away id: its profile held against the merge, so
        # they are spent wholly before it (and the rest moves) or after it, on the survivor.
        customer_id = hold_member(db, customer_id)
    result = checkout(
        db,
        customer_id=customer_id,
        items=lines,
        channel=channel,
        store_id=store_id,
        coupons=coupons,
        points_to_use=points_to_use,
        shipping_minor=shipping_before_minor,
        at=at,
        currency=currency,
    )
    # A coupon used (by an order racing this one) or expired since the checkout is answered
    # as such, before the totals it no longer gives are compared.
    for code, reason in result.refused_coupons.items():
        if reason in _GONE_SINCE_CHECKOUT:
            raise _unavailable(coupons, code=code, reason=reason)
    for field, sent, expected in (
        ("discount_minor", discount_minor, result.discount_minor),
        ("shipping_minor", shipping_minor, result.shipping_minor),
        ("payments", points_payment_minor, result.points_payment_minor),
    ):
        if sent != expected:
            what = "a points payment of" if field == "payments" else f"{field} of"
            raise InvalidInput(
                f"The loyalty effects give {what} {expected}, the order says {sent}; "
                "take the amounts from POST /v1/loyalty/checkout",
                field=field,
                expected=expected,
            )
    try:
        apply(db, order_id=order_id, customer_id=customer_id, result=result, coupons=coupons, at=at)
    except reward_coupons.CouponUnavailable as lost:  # another order used it first
        code, reason = str(lost.extra.get("code")), str(lost.extra.get("reason"))
        raise _unavailable(coupons, code=code, reason=reason) from None
    return result


# Refusals that can come between a checkout and its order (the others, an unknown code or
# another customer's, were already refused at the checkout and change nothing).
_GONE_SINCE_CHECKOUT = frozenset({"used", "expired"})


def _unavailable(
    coupons: Sequence[str], *, code: str, reason: str
) -> reward_coupons.CouponUnavailable:
    """409 coupon-unavailable naming the order's ``loyalty.coupons.N`` that gave ``code``
    (however it was typed), with the code and why."""
    index = next(
        (n for n, sent in enumerate(coupons) if reward_coupons.normalise_code(sent) == code), 0
    )
    return reward_coupons.CouponUnavailable(
        reward_coupons.unavailable_detail(code, reason),
        field=f"loyalty.coupons.{index}",
        code=code,
        reason=reason,
    )
