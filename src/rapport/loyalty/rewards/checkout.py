"""Checkout effects: what a member pays and earns for a cart, step by step, in a fixed order.

1. member prices (paying members: the catalogue's ``members`` channel price, where lower)
2. tier discount (a percentage off every line)
3. coupons, in the order given; a coupon that does not stack ends the coupon step
4. points as payment (whole points, at the program's point value)
5. free shipping (paying members, or the tier's threshold)
6. points to be earned (the earning rules on what is paid for each line)

A cart in another currency than the program's gets none of the money effects (1 to 5): its
minor units are not the program's, and Rapport keeps no exchange rates. Each that would have
applied is answered with 0 off and why ("order in JPY, program in EUR: coupons, points and
member prices apply only in EUR"); its coupons are refused with the same words.

Every line discount stops at the line's cap (a share of its list price) and a price never goes
below zero; points pay at most a share of the order. Each effect names the rule that made it.
The calculation is pure: ``loyalty.service`` reads the member, coupons and rules, and applies
the answer when an order is placed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rapport.catalog.service import in_any_category
from rapport.platform import formatting

Step = Literal[
    "member_price", "tier_discount", "coupon", "points_payment", "free_shipping", "points_earned"
]


@dataclass(frozen=True, slots=True)
class CartLine:
    line_no: int
    sku: str
    quantity: int
    unit_price_minor: int
    category: str | None = None
    brand: str | None = None
    member_unit_price_minor: int | None = None


@dataclass(frozen=True, slots=True)
class Coupon:
    """A coupon the caller has checked is valid for this customer now."""

    code: str
    rule: str  # what made it: the reward or campaign id
    kind: Literal["percent", "amount"]
    value: int  # percent (1-100) or minor units
    min_subtotal_minor: int = 0
    categories: tuple[str, ...] = ()  # empty: every line
    stackable: bool = True


@dataclass(frozen=True, slots=True)
class Policy:
    max_line_discount_percent: int = 70
    max_points_payment_percent: int = 50
    point_value_minor_per_100: int = 100
    currency: str = formatting.DEFAULT_CURRENCY  # the program's: what effects' words say


@dataclass(frozen=True, slots=True)
class MemberTerms:
    """The member's standing as checkout needs it."""

    paying: bool = False
    paying_plan: str | None = None
    plan_member_prices: bool = True
    plan_free_shipping: bool = True
    tier: str | None = None  # the tier's id: effects' rules name it ("tier:member")
    tier_name: str | None = None  # its display name: effects' descriptions say it ("Member")
    tier_discount_percent: float = 0.0
    free_shipping_over_minor: int | None = None
    points_balance: int = 0

    @property
    def shown_tier(self) -> str | None:
        """The tier as effects' descriptions say it: its name (its id when none is known)."""
        return self.tier_name or self.tier


@dataclass(frozen=True, slots=True)
class Effect:
    step: Step
    rule: str
    description: str
    amount_minor: int = 0  # what it takes off the price (or, for earned points, 0)
    line_no: int | None = None
    points: int = 0


@dataclass
class Checkout:
    lines: list[dict[str, int | str | None]]
    subtotal_minor: int  # list prices
    discount_minor: int  # member prices, tier discount, coupons
    points_used: int
    points_payment_minor: int
    shipping_minor: int
    total_minor: int  # what remains to pay by other means
    points_to_earn: int
    effects: list[Effect] = field(default_factory=list)
    refused_coupons: dict[str, str] = field(default_factory=dict)


# Earning, given the amount paid per line (after every discount and points): for each rule
# that fires, (rule, why, points).
Earner = Callable[[dict[int, int]], list[tuple[str, str, int]]]


def foreign_currency(currency: str | None, program_currency: str) -> str | None:
    """Why a cart or order in ``currency`` gets no coupon, points payment, member price, tier
    discount or free shipping, or None when it is in the program's currency (or says none)."""
    if currency is None or currency == program_currency:
        return None
    return (
        f"order in {currency}, program in {program_currency}: coupons, points and member "
        f"prices apply only in {program_currency}"
    )


def calculate(
    lines: Sequence[CartLine],
    *,
    member: MemberTerms,
    coupons: Sequence[Coupon],
    points_to_use: int,
    shipping_minor: int,
    policy: Policy,
    earn: Earner | None,
    foreign: str | None = None,
) -> Checkout:
    """The effects, in order. ``foreign``: why the cart's currency takes no money effects
    (:func:`foreign_currency`); then only the points to be earned are worked out."""
    if foreign is not None:
        result = calculate(
            lines,
            member=MemberTerms(),
            coupons=(),
            points_to_use=0,
            shipping_minor=shipping_minor,
            policy=policy,
            earn=earn,
        )
        result.effects[:0] = _not_applied(
            lines,
            member=member,
            points_to_use=points_to_use,
            shipping_minor=shipping_minor,
            why=foreign,
        )
        result.refused_coupons.update({coupon.code: foreign for coupon in coupons})
        return result
    list_totals = {line.line_no: line.quantity * line.unit_price_minor for line in lines}
    paid = dict(list_totals)
    floors = {
        no: total - total * policy.max_line_discount_percent // 100
        for no, total in list_totals.items()
    }
    effects: list[Effect] = []

    def take(line_no: int, wanted: int) -> int:
        """Lower a line's price by up to ``wanted``, never under its floor; what was taken."""
        taken = max(0, min(wanted, paid[line_no] - floors[line_no]))
        paid[line_no] -= taken
        return taken

    # 1. member prices
    if member.paying and member.plan_member_prices:
        for line in lines:
            if line.member_unit_price_minor is None:
                continue
            saving = (line.unit_price_minor - line.member_unit_price_minor) * line.quantity
            taken = take(line.line_no, saving) if saving > 0 else 0
            if taken:
                effects.append(
                    Effect(
                        "member_price",
                        f"plan:{member.paying_plan}",
                        f"member price for {line.sku}",
                        taken,
                        line.line_no,
                    )
                )
    # 2. tier discount
    if member.tier_discount_percent > 0:
        for line in lines:
            taken = take(line.line_no, int(paid[line.line_no] * member.tier_discount_percent / 100))
            if taken:
                effects.append(
                    Effect(
                        "tier_discount",
                        f"tier:{member.tier}",
                        f"{member.tier_discount_percent:g}% {member.shown_tier} discount",
                        taken,
                        line.line_no,
                    )
                )
    # 3. coupons
    refused: dict[str, str] = {}
    applied_any = False
    for coupon in coupons:
        if applied_any and not coupon.stackable:
            refused[coupon.code] = "does not combine with other coupons"
            continue
        # A coupon for "Wine" is good on "Wine/Red": a category covers everything under it.
        eligible = [
            line
            for line in lines
            if not coupon.categories or in_any_category(line.category, coupon.categories)
        ]
        base = sum(paid[line.line_no] for line in eligible)
        if not eligible or base == 0:
            refused[coupon.code] = "no line in the cart qualifies"
            continue
        if base < coupon.min_subtotal_minor:
            refused[coupon.code] = (
                f"needs a basket of at least "
                f"{formatting.money(coupon.min_subtotal_minor, policy.currency)}"
            )
            continue
        wanted = base * coupon.value // 100 if coupon.kind == "percent" else coupon.value
        taken_total = 0
        for line, share in zip(
            eligible, _split(wanted, [paid[x.line_no] for x in eligible]), strict=True
        ):
            taken_total += take(line.line_no, share)
        if taken_total == 0:
            refused[coupon.code] = "the lines are already at their lowest price"
            continue
        applied_any = True
        effects.append(Effect("coupon", coupon.rule, f"coupon {coupon.code}", taken_total))
        if not coupon.stackable:
            break
    # 4. points as payment
    goods = sum(paid.values())
    value = policy.point_value_minor_per_100
    most_minor = goods * policy.max_points_payment_percent // 100
    usable = min(points_to_use, member.points_balance, most_minor * 100 // value if value else 0)
    points_payment = usable * value // 100
    if usable > 0:
        effects.append(
            Effect(
                "points_payment",
                "program:points",
                f"{formatting.number(usable)} points, worth "
                f"{formatting.money(points_payment, policy.currency)}",
                points_payment,
                points=usable,
            )
        )
    # 5. free shipping
    shipping = shipping_minor
    if shipping:
        reason = None
        if member.paying and member.plan_free_shipping:
            reason, rule = (
                "free shipping for members of the paid plan",
                f"plan:{member.paying_plan}",
            )
        elif (
            member.free_shipping_over_minor is not None and goods >= member.free_shipping_over_minor
        ):
            over = member.free_shipping_over_minor
            reason, rule = (
                f"always free shipping for {member.shown_tier}"
                if over == 0
                else f"free shipping for {member.shown_tier} over "
                f"{formatting.money(over, policy.currency)}",
                f"tier:{member.tier}",
            )
        if reason is not None:
            effects.append(Effect("free_shipping", rule, reason, shipping))
            shipping = 0
    # 6. points to be earned, on what is paid for each line after points
    paid_after_points = dict(
        zip(paid, _split(goods - points_payment, list(paid.values())), strict=True)
    )
    points_to_earn = 0
    for rule, why, points in earn(paid_after_points) if earn is not None else []:
        points_to_earn += points
        effects.append(Effect("points_earned", rule, why, points=points))
    subtotal = sum(list_totals.values())
    return Checkout(
        lines=[
            {
                "line_no": line.line_no,
                "sku": line.sku,
                "quantity": line.quantity,
                "list_minor": list_totals[line.line_no],
                "paid_minor": paid[line.line_no],
            }
            for line in lines
        ],
        subtotal_minor=subtotal,
        discount_minor=subtotal - goods,
        points_used=usable,
        points_payment_minor=points_payment,
        shipping_minor=shipping,
        total_minor=goods - points_payment + shipping,
        points_to_earn=points_to_earn,
        effects=effects,
        refused_coupons=refused,
    )


def _not_applied(
    lines: Sequence[CartLine],
    *,
    member: MemberTerms,
    points_to_use: int,
    shipping_minor: int,
    why: str,
) -> list[Effect]:
    """The money effects a cart in another currency would otherwise have had, each with 0
    off and ``why``."""
    effects: list[Effect] = []
    plan = f"plan:{member.paying_plan}"
    if member.paying and member.plan_member_prices:
        effects.extend(
            Effect("member_price", plan, f"no member price for {line.sku}: {why}", 0, line.line_no)
            for line in lines
            if line.member_unit_price_minor is not None
            and line.member_unit_price_minor < line.unit_price_minor
        )
    if member.tier_discount_percent > 0:
        effects.append(
            Effect(
                "tier_discount",
                f"tier:{member.tier}",
                f"no {member.tier_discount_percent:g}% {member.shown_tier} discount: {why}",
            )
        )
    if points_to_use > 0:
        effects.append(Effect("points_payment", "program:points", f"no points payment: {why}"))
    if shipping_minor:
        if member.paying and member.plan_free_shipping:
            effects.append(Effect("free_shipping", plan, f"no free shipping: {why}"))
        elif member.free_shipping_over_minor is not None:
            effects.append(
                Effect("free_shipping", f"tier:{member.tier}", f"no free shipping: {why}")
            )
    return effects


def _split(amount: int, weights: list[int]) -> list[int]:
    """``amount`` in whole minor units in proportion to ``weights`` (remainder to the first)."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    shares = [amount * weight // whole for weight in weights]
    left = amount - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: -weights[i])[:left]:
        shares[index] += 1
    return shares
