"""Checkout effects: the documented order, caps, stacking, and prices never below zero."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rapport.loyalty.rewards.checkout import CartLine, Coupon, MemberTerms, Policy, calculate

POLICY = Policy(max_line_discount_percent=70, max_points_payment_percent=50)


def cart_line(no: int, price: int, quantity: int = 1, **extra: object) -> CartLine:
    return CartLine(line_no=no, sku=f"SKU-{no}", quantity=quantity, unit_price_minor=price, **extra)  # type: ignore[arg-type]


def earn_one_per_euro(paid: dict[int, int]) -> list[tuple[str, str, int]]:
    return [("base-earn", "1 per euro", sum(paid.values()) // 100)]


def test_effects_come_in_the_documented_order_and_add_up() -> None:
    # given a paying gold member with 5,000 points, two coupons and 1,000 points to use
    member = MemberTerms(
        paying=True,
        paying_plan="plus",
        tier="gold",
        tier_discount_percent=10,
        points_balance=5000,
    )
    lines = [
        cart_line(1, 10000, member_unit_price_minor=9000, category="shoes"),
        cart_line(2, 2000, quantity=2, category="socks"),
    ]
    coupons = [
        Coupon(code="SHOES5", rule="reward:shoes", kind="amount", value=500, categories=("shoes",)),
        Coupon(code="TEN", rule="campaign:ten", kind="percent", value=10),
    ]

    # when checkout is calculated
    result = calculate(
        lines,
        member=member,
        coupons=coupons,
        points_to_use=1000,
        shipping_minor=495,
        policy=POLICY,
        earn=earn_one_per_euro,
    )

    # then member price, tier, coupons, points, shipping and earning follow in that order
    assert [effect.step for effect in result.effects] == [
        "member_price",
        "tier_discount",
        "tier_discount",
        "coupon",
        "coupon",
        "points_payment",
        "free_shipping",
        "points_earned",
    ]
    # 100 -> 90 member price -> 81 gold -> 76 coupon; socks 40 -> 36 gold; then 10% of 112
    assert [line["paid_minor"] for line in result.lines] == [6840, 3240]
    assert result.subtotal_minor == 14000
    assert result.discount_minor == 14000 - 10080
    assert (result.points_used, result.points_payment_minor) == (1000, 1000)
    assert result.shipping_minor == 0
    assert result.total_minor == 10080 - 1000
    assert result.points_to_earn == 90
    assert all(effect.rule for effect in result.effects)


def test_a_coupon_that_does_not_stack_is_refused_after_another() -> None:
    coupons = [
        Coupon(code="FIVE", rule="r:five", kind="amount", value=500),
        Coupon(code="SOLO", rule="r:solo", kind="percent", value=20, stackable=False),
    ]
    result = calculate(
        [cart_line(1, 5000)],
        member=MemberTerms(),
        coupons=coupons,
        points_to_use=0,
        shipping_minor=0,
        policy=POLICY,
        earn=None,
    )
    assert result.total_minor == 4500
    assert result.refused_coupons == {"SOLO": "does not combine with other coupons"}


def test_minimum_basket_and_category_conditions_refuse_coupons_with_a_reason() -> None:
    coupons = [
        Coupon(code="BIG", rule="r:big", kind="amount", value=1000, min_subtotal_minor=10000),
        Coupon(code="KIDS", rule="r:kids", kind="percent", value=10, categories=("kids",)),
    ]
    result = calculate(
        [cart_line(1, 5000, category="shoes")],
        member=MemberTerms(),
        coupons=coupons,
        points_to_use=0,
        shipping_minor=0,
        policy=POLICY,
        earn=None,
    )
    assert set(result.refused_coupons) == {"BIG", "KIDS"}
    assert result.total_minor == 5000


def test_tier_threshold_gives_free_shipping_only_over_it() -> None:
    member = MemberTerms(tier="member", free_shipping_over_minor=9000)
    under = calculate(
        [cart_line(1, 8000)],
        member=member,
        coupons=[],
        points_to_use=0,
        shipping_minor=495,
        policy=POLICY,
        earn=None,
    )
    over = calculate(
        [cart_line(1, 9500)],
        member=member,
        coupons=[],
        points_to_use=0,
        shipping_minor=495,
        policy=POLICY,
        earn=None,
    )
    assert (under.shipping_minor, over.shipping_minor) == (495, 0)


def test_points_pay_at_most_the_policy_share_and_the_balance() -> None:
    result = calculate(
        [cart_line(1, 4000)],
        member=MemberTerms(points_balance=100_000),
        coupons=[],
        points_to_use=100_000,
        shipping_minor=0,
        policy=POLICY,
        earn=None,
    )
    assert (result.points_used, result.points_payment_minor) == (2000, 2000)
    poor = calculate(
        [cart_line(1, 4000)],
        member=MemberTerms(points_balance=300),
        coupons=[],
        points_to_use=1000,
        shipping_minor=0,
        policy=POLICY,
        earn=None,
    )
    assert poor.points_used == 300


coupon_strategy = st.builds(
    Coupon,
    code=st.text(alphabet="ABCDEFGH", min_size=3, max_size=6),
    rule=st.just("r:any"),
    kind=st.sampled_from(["percent", "amount"]),
    value=st.integers(min_value=1, max_value=100_000),
    stackable=st.booleans(),
)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 100_000),
            st.integers(1, 5),
            st.one_of(st.none(), st.integers(0, 100_000)),
        ),
        min_size=1,
        max_size=6,
    ),
    st.lists(coupon_strategy, max_size=4),
    st.integers(0, 100),
    st.integers(0, 10**7),
    st.booleans(),
)
def test_no_line_goes_below_its_cap_and_totals_reconcile(
    items: list[tuple[int, int, int | None]],
    coupons: list[Coupon],
    tier_percent: int,
    points: int,
    paying: bool,
) -> None:
    lines = [
        cart_line(no, price, quantity, member_unit_price_minor=member_price)
        for no, (price, quantity, member_price) in enumerate(items, start=1)
    ]
    result = calculate(
        lines,
        member=MemberTerms(
            paying=paying,
            paying_plan="plus",
            tier="t",
            tier_discount_percent=tier_percent,
            points_balance=points,
        ),
        coupons=coupons,
        points_to_use=points,
        shipping_minor=495,
        policy=POLICY,
        earn=earn_one_per_euro,
    )
    for line, shown in zip(lines, result.lines, strict=True):
        list_total = line.quantity * line.unit_price_minor
        assert 0 <= shown["paid_minor"] <= list_total  # type: ignore[operator]
        assert shown["paid_minor"] >= list_total - list_total * 70 // 100  # type: ignore[operator]
    goods = sum(int(shown["paid_minor"]) for shown in result.lines)  # type: ignore[arg-type]
    assert result.discount_minor == result.subtotal_minor - goods
    assert 0 <= result.points_payment_minor <= goods // 2
    assert result.total_minor == goods - result.points_payment_minor + result.shipping_minor
    assert result.total_minor >= 0
    line_discounts = sum(
        e.amount_minor
        for e in result.effects
        if e.step in {"member_price", "tier_discount", "coupon"}
    )
    assert line_discounts == result.discount_minor


def test_effects_say_points_and_money_in_words_a_person_reads() -> None:
    # given a member paying with 1,641 points at 1.00 per 100 points, and a coupon whose
    # minimum basket the cart misses
    member = MemberTerms(points_balance=5000)
    coupons = [
        Coupon(code="BIG", rule="campaign:big", kind="amount", value=500, min_subtotal_minor=100000)
    ]
    result = calculate(
        [cart_line(1, 10000)],
        member=member,
        coupons=coupons,
        points_to_use=1641,
        shipping_minor=0,
        policy=Policy(point_value_minor_per_100=100, currency="EUR"),
        earn=None,
    )
    # then the points payment reads as points worth money, the refusal as money
    [payment] = [effect for effect in result.effects if effect.step == "points_payment"]
    assert (payment.description, payment.amount_minor) == ("1,641 points, worth €16.41", 1641)
    assert result.refused_coupons == {"BIG": "needs a basket of at least €1,000.00"}


def test_free_shipping_says_its_threshold_in_the_programmes_currency() -> None:
    def reason(member: MemberTerms, policy: Policy) -> str:
        result = calculate(
            [cart_line(1, 9500)],
            member=member,
            coupons=[],
            points_to_use=0,
            shipping_minor=495,
            policy=policy,
            earn=None,
        )
        return next(e.description for e in result.effects if e.step == "free_shipping")

    member = MemberTerms(tier="member", tier_name="Member", free_shipping_over_minor=9000)
    gold = MemberTerms(tier="gold", tier_name="Gold Circle", free_shipping_over_minor=0)
    in_yen = Policy(max_line_discount_percent=70, max_points_payment_percent=50, currency="JPY")
    assert reason(member, POLICY) == "free shipping for Member over €90.00"
    assert reason(member, in_yen) == "free shipping for Member over JP¥9,000"
    assert reason(gold, POLICY) == "always free shipping for Gold Circle"


def test_the_tier_discount_names_the_tier_by_its_name_and_its_rule_by_its_id() -> None:
    # given a member of the tier with id "gold", named "Gold Circle", with 5% off
    gold = MemberTerms(tier="gold", tier_name="Gold Circle", tier_discount_percent=5)

    # when a cart is worked out
    result = calculate(
        [cart_line(1, 2000)],
        member=gold,
        coupons=[],
        points_to_use=0,
        shipping_minor=0,
        policy=POLICY,
        earn=None,
    )

    # then the discount says the tier's name, and its rule keeps the id for clients
    discounts = [(e.rule, e.description) for e in result.effects if e.step == "tier_discount"]
    assert discounts == [("tier:gold", "5% Gold Circle discount")]
