"""Return-risk features on small hand-made baskets: bracketing, product families, shrinkage
toward the overall rate, discount depth, the customer's history, and when a return becomes
known (no label leaks into a basket placed before it could be known)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.orders.return_risk import (
    Basket,
    BasketLine,
    HistoryConfig,
    LabelledBasket,
    ReturnHistory,
)
from rapport.orders.return_risk.features import _Tally, prior_strength, product_family

START = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def basket(
    basket_id: str, customer: str, day: float, *lines: tuple[str, int, int], category: str = "gifts"
) -> Basket:
    found = lines or (("MUG-1", 1, 800),)
    return Basket(
        basket_id=basket_id,
        customer_id=customer,
        placed_at=START + timedelta(days=day),
        lines=tuple(BasketLine(sku, category, quantity, price) for sku, quantity, price in found),
    )


def kept(item: Basket) -> LabelledBasket:
    return LabelledBasket(item, returned=False)


@pytest.mark.parametrize(
    ("sku", "family"),
    [
        ("85123A", "85123"),
        ("85123B", "85123"),
        ("84029G", "84029"),
        ("22423", "22423"),
        ("TEE-12-XL", "TEE-12"),
        ("TEE-12-M", "TEE-12"),
        ("APP-00012", "APP-00012"),
        ("POST", "POST"),
    ],
)
def test_variants_share_a_product_family(sku: str, family: str) -> None:
    assert product_family(sku) == family


def test_bracketing_is_detected() -> None:
    # given a basket with one product in two colours (85123A/B), one product on two lines
    # (22423) and one plain line
    history = ReturnHistory()
    bracketed = basket(
        "B1",
        "ann",
        0,
        ("85123A", 1, 255),
        ("85123B", 1, 255),
        ("22423", 1, 1275),
        ("22423", 2, 1275),
        ("71053", 1, 339),
    )

    # when it is described
    found = history.features(bracketed)

    # then both kinds of bracketing are counted, and four of the five lines take part
    assert found.bracketed_families == 1
    assert found.repeated_sku_lines == 1
    assert found.bracketed_line_share == pytest.approx(4 / 5)
    # and a basket of distinct products is not bracketed
    plain = history.features(basket("B2", "bob", 0, ("85123A", 1, 255), ("71053", 1, 339)))
    assert (plain.bracketed_families, plain.repeated_sku_lines) == (0, 0)
    assert plain.bracketed_line_share == 0.0


def test_quantity_is_compared_with_the_products_and_the_customers_usual() -> None:
    # given a lantern that sells two at a time, to a customer who buys two per line
    history = ReturnHistory()
    for day in range(3):
        history.record(kept(basket(f"B{day}", "ann", day, ("71053", 2, 339))))
    assert history.features(basket("N", "new", 3, ("99999", 1, 100))).quantity_vs_usual_max is None

    # when the customer orders twelve
    found = history.features(basket("B9", "ann", 4, ("71053", 12, 339)))

    # then the basket holds six times the usual quantity, for the product and the customer
    assert found.quantity_vs_usual_max == pytest.approx(6.0)
    assert found.units_per_line_vs_customer == pytest.approx(6.0)


def test_shrinkage_pulls_a_product_with_one_sale_toward_the_global_rate() -> None:
    # given 40 one-line baskets of a well-known product, 4 returned, and one basket of a
    # rare product that came back, all closed by day 31 (prior strength 10 pseudo-baskets)
    history = ReturnHistory(HistoryConfig(item_prior_strength=10.0))
    for number in range(40):
        item = basket(f"W{number}", f"c{number}", 0, ("BIG-1", 1, 500))
        history.record(LabelledBasket(item, returned=number < 4))
    history.record(LabelledBasket(basket("R", "rare-buyer", 0, ("RARE-1", 1, 500)), True))

    # when baskets of each are described after the windows closed
    rare = history.features(basket("X1", "someone", 31, ("RARE-1", 1, 500)))
    big = history.features(basket("X2", "someone-else", 31, ("BIG-1", 1, 500)))

    # then the rare product's 1-of-1 is pulled most of the way to the overall line rate
    # (5 of 41 lines, with the starting prior of 1 in 10: 6/51), ...
    line_rate = (5 + 10 * 0.1) / (41 + 10)
    assert rare.sku_rate_max == pytest.approx((1 + 10 * line_rate) / (1 + 10))
    assert rare.sku_rate_max < 0.2
    # ... while the well-known product keeps close to its own 4 in 40
    assert big.sku_rate_max == pytest.approx((4 + 10 * line_rate) / (40 + 10))
    assert abs(big.sku_rate_max - 0.1) < abs(rare.sku_rate_max - 1.0)
    # and the product family is smoothed the same way
    assert rare.family_rate_max == pytest.approx((1 + 10 * line_rate) / (1 + 10))


def test_prior_strength_is_estimated_from_the_spread_of_item_rates() -> None:
    # given 2,000 products with 60 sales each, whose true return rates follow a beta prior
    # of strength 20 (mean 0.1)
    rng = np.random.default_rng(4)
    rates = rng.beta(2.0, 18.0, size=2000)
    tallies = [_Tally(60, int(returned)) for returned in rng.binomial(60, rates)]

    # when the strength is estimated, then it is close to the truth
    assert prior_strength(tallies) == pytest.approx(20.0, rel=0.2)
    # and products that hardly differ get the strongest pull, few records the fallback
    alike = [_Tally(60, int(returned)) for returned in rng.binomial(60, 0.1, size=2000)]
    assert prior_strength(alike) > 100
    assert prior_strength(tallies[:19]) == 10.0


def test_the_history_re_estimates_the_strength_as_labels_close() -> None:
    # given a history that estimates its prior, and 400 closed one-line baskets over 40
    # products, half of them returned every time
    history = ReturnHistory(HistoryConfig(item_prior_strength=None))
    for number in range(400):
        sku = f"P-{number % 40}"
        returned = number % 40 < 20
        history.record(
            LabelledBasket(basket(f"B{number}", f"c{number}", 0, (sku, 1, 500)), returned)
        )
    assert history.item_strengths["sku"] == 10.0

    # when the windows close
    history.features(basket("X", "x", 31))

    # then the products differ as much as they can: the prior is weak
    assert history.item_strengths["sku"] == 1.0


def test_discount_depth_is_measured_against_the_usual_price() -> None:
    # given a mug sold twice at 8.00
    history = ReturnHistory()
    history.record(kept(basket("B1", "ann", 0, ("MUG-1", 1, 800))))
    history.record(kept(basket("B2", "bob", 1, ("MUG-1", 1, 800))))

    # when it is offered at 6.00, then at the usual price
    cheap = history.features(basket("B3", "cid", 2, ("MUG-1", 1, 600), ("NEW-1", 1, 100)))
    usual = history.features(basket("B4", "dan", 2, ("MUG-1", 1, 800)))

    # then the discount is 25% and the one known line is discounted; a new product has no
    # usual price
    assert cheap.price_vs_usual_min == pytest.approx(0.75)
    assert cheap.price_vs_usual_mean == pytest.approx(0.75)
    assert cheap.discounted_line_share == 1.0
    assert (usual.price_vs_usual_min, usual.discounted_line_share) == (1.0, 0.0)


def test_customer_history_counts_orders_tenure_and_reorders() -> None:
    # given a customer who bought a mug on day 0 and a vase on day 10
    history = ReturnHistory()
    history.record(kept(basket("B1", "ann", 0, ("MUG-1", 1, 800))))
    history.record(kept(basket("B2", "ann", 10, ("VASE-1", 1, 2000))))

    # when they order the vase, the mug and a lamp on day 12
    found = history.features(
        basket("B3", "ann", 12, ("VASE-1", 1, 2000), ("MUG-1", 1, 800), ("LAMP-1", 1, 3000))
    )

    # then two orders over twelve days, two of three items bought before, one this week
    assert (found.prior_baskets, found.customer_tenure_days) == (2, pytest.approx(12.0))
    assert found.rebought_sku_share == pytest.approx(2 / 3)
    assert found.rebought_last_7_days_share == pytest.approx(1 / 3)
    assert found.days_since_last_return is None


def test_a_return_is_known_from_when_it_was_made_and_not_before() -> None:
    # given a mug bought on day 0 and sent back on day 5
    history = ReturnHistory()
    first = basket("B1", "ann", 0, ("MUG-1", 1, 800))
    history.record(LabelledBasket(first, True, returned_at=first.placed_at + timedelta(days=5)))

    # when the customer orders on day 3 (before the return), and on day 6 (after it)
    before = history.features(basket("B2", "ann", 3, ("MUG-1", 1, 800)))
    after = history.features(basket("B3", "ann", 6, ("MUG-1", 1, 800)))

    # then the day-3 basket knows nothing of the return
    assert (before.known_returns, before.days_since_last_return) == (0, None)
    assert before.returned_sku_share == 0.0
    assert before.sku_returns_last_30_days == 0
    # and the day-6 basket knows of it: a day ago, naming the mug it holds
    assert after.known_returns == after.returns_last_30_days == 1
    assert after.days_since_last_return == pytest.approx(1.0)
    assert after.returned_sku_share == 1.0
    assert after.sku_returns_last_30_days == 1
    # but the label still counts in no return rate while its window is open
    assert (after.closed_baskets, after.returned_baskets) == (0, 0)
    assert after.sku_known_share == 0.0


def test_items_returned_before_are_counted_ever_and_in_the_last_90_days() -> None:
    # given a customer who sent back a mug on day 2 and a vase on day 102, from two baskets
    history = ReturnHistory()
    first = basket("B1", "ann", 0, ("MUG-1", 1, 800), ("CUP-1", 1, 500))
    history.record(
        LabelledBasket(
            first,
            True,
            returned_skus=frozenset({"MUG-1"}),
            returned_at=first.placed_at + timedelta(days=2),
        )
    )
    second = basket("B2", "ann", 100, ("VASE-1", 1, 2000))
    history.record(LabelledBasket(second, True, returned_at=second.placed_at + timedelta(days=2)))

    # when on day 110 they order the mug, the vase, the cup (kept) and a lamp
    found = history.features(
        basket(
            "B3",
            "ann",
            110,
            ("MUG-1", 1, 800),
            ("VASE-1", 1, 2000),
            ("CUP-1", 1, 500),
            ("LAMP-1", 1, 3000),
        )
    )

    # then two of the four items came back before (mug and vase), but only the vase within
    # the last 90 days (the mug 108 days ago); the cup was bought, not returned
    assert found.returned_sku_count == 2
    assert found.returned_sku_count_90_days == 1
    assert found.returned_sku_share == pytest.approx(2 / 4)

    # and a mug returned again on day 112 counts as recent from then on
    third = basket("B4", "ann", 111, ("MUG-1", 1, 800))
    history.record(LabelledBasket(third, True, returned_at=third.placed_at + timedelta(days=1)))
    later = history.features(basket("B5", "ann", 113, ("MUG-1", 1, 800), ("VASE-1", 1, 2000)))
    assert (later.returned_sku_count, later.returned_sku_count_90_days) == (2, 2)


def test_a_return_without_a_time_waits_for_the_window_to_close() -> None:
    # given a returned basket on day 0 whose return time is unknown
    history = ReturnHistory()
    history.record(LabelledBasket(basket("B1", "ann", 0), True))

    # when baskets are described on day 29 and day 30
    day_29 = history.features(basket("B2", "ann", 29))
    day_30 = history.features(basket("B3", "ann", 30))

    # then the return is known only once the window closed
    assert day_29.known_returns == 0
    assert (day_30.known_returns, day_30.returned_baskets) == (1, 1)


def test_a_return_made_in_the_same_instant_is_not_seen() -> None:
    history = ReturnHistory()
    first = basket("B1", "ann", 0)
    history.record(LabelledBasket(first, True, returned_at=first.placed_at + timedelta(hours=2)))

    same_time = history.features(basket("B2", "ann", 2 / 24))

    assert same_time.known_returns == 0


def test_later_returns_never_reach_earlier_baskets() -> None:
    # given early baskets, and later ones (some returned a day after they were placed)
    early = [
        kept(basket(f"E{n}", f"c{n % 4}", n, (f"{85000 + n % 3}A", 1 + n % 2, 300)))
        for n in range(20)
    ]
    later = [
        LabelledBasket(item, True, returned_at=item.placed_at + timedelta(days=1))
        for item in (
            basket(f"L{n}", f"c{n % 4}", 20 + n, (f"{85000 + n % 3}A", 1, 300)) for n in range(5)
        )
    ]

    # when features are streamed with and without the later baskets
    alone = ReturnHistory.stream(early)
    together = ReturnHistory.stream([*later, *early])[len(later) :]

    # then the early baskets are described identically
    assert together == alone
    # and flipping the later labels changes nothing either
    flipped = [replace(item, returned=False, returned_at=None) for item in later]
    assert ReturnHistory.stream([*flipped, *early])[len(later) :] == alone


def test_return_times_must_be_possible() -> None:
    item = basket("B1", "ann", 1)
    with pytest.raises(ValueError, match="before it was placed"):
        LabelledBasket(item, True, returned_at=item.placed_at - timedelta(hours=1))
    with pytest.raises(ValueError, match="no return"):
        LabelledBasket(item, False, returned_at=item.placed_at)
    with pytest.raises(ValueError, match="timezone-aware"):
        LabelledBasket(item, True, returned_at=item.placed_at.replace(tzinfo=None))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["c1", "c2", "c3"]),
            st.floats(0.0, 120.0),
            st.sampled_from(["85123A", "85123B", "22423", "TEE-12-M"]),
            st.integers(1, 5),
            st.one_of(st.none(), st.floats(0.0, 40.0)),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 45),
    st.integers(-3, 3),
    st.floats(-5.0, 125.0),
    st.integers(-3, 3),
)
def test_replaying_keeps_what_streaming_every_basket_would_describe(
    drawn: list[tuple[str, float, str, int, float | None]],
    recent: int,
    miscount: int,
    settled_day: float,
    settled_miscount: int,
) -> None:
    # given baskets in time order, some returned (at a time, or with none known)
    items = []
    for n, (customer, day, sku, quantity, back_after) in enumerate(
        sorted(drawn, key=lambda d: d[1])
    ):
        # Ids in the order of the list: baskets placed at the same moment go by id, as the
        # database yields them ("B10" would come before "B9").
        item = basket(f"B{n:03d}", customer, day, (sku, quantity, 500))
        if back_after is None:
            items.append(kept(item))
        else:
            at = item.placed_at + timedelta(days=back_after) if back_after < 35 else None
            items.append(LabelledBasket(item, True, returned_at=at))

    # when the history replays them read once from a stream whose length was counted
    # beforehand (orders placed or erased since the count make it off by a few), keeping
    # full features only for the last few, and for the last few placed by a given time
    history = ReturnHistory()
    expected = max(len(items) + miscount, 0)
    settled_before = START + timedelta(days=settled_day)
    placed_by = sum(item.basket.placed_at <= settled_before for item in items)
    settled_expected = max(placed_by + settled_miscount, 0)
    replayed = history.replay(
        iter(items),
        recent=recent,
        expected=expected,
        settled_before=settled_before,
        settled_expected=settled_expected,
    )

    # then each basket's customer record, its label and the last features are those
    # streaming gives (fewer last ones when the stream was shorter than counted)
    streamed = ReturnHistory.stream(items)
    assert replayed.closed_baskets == [row.closed_baskets for row in streamed]
    assert replayed.returned_baskets == [row.returned_baskets for row in streamed]
    assert replayed.returned == [item.returned for item in items]
    first_recent = max(len(items) - recent, expected - recent, 0) if recent else len(items)
    assert replayed.recent == streamed[first_recent:]
    # and the last few placed by that time, with their labels, likewise
    first_settled = max(placed_by - recent, settled_expected - recent, 0) if recent else placed_by
    assert replayed.settled == streamed[first_settled:placed_by]
    assert replayed.settled_returned == [item.returned for item in items[first_settled:placed_by]]
    # and describing them read once from a stream gives the same features and labels
    assert ReturnHistory.describe(iter(items)) == (streamed, [item.returned for item in items])
    # and a sequence needs no count
    assert (
        ReturnHistory().replay(items, recent=recent).recent
        == (streamed[len(streamed) - min(recent, len(items)) :])
    )
    # and the history then describes a new basket as one that saw every basket would
    after = basket("next", "c1", 130.0, ("85123A", 2, 500))
    full = ReturnHistory()
    for item in items:
        full.record(item)
    assert history.features(after) == full.features(after)


def test_describing_baskets_out_of_time_order_is_refused() -> None:
    # given two baskets, the later one first (a stream sorted wrongly)
    later = kept(basket("B2", "c1", 10.0, ("85123A", 1, 500)))
    earlier = kept(basket("B1", "c1", 5.0, ("85123A", 1, 500)))

    # then describing them as a stream in that order fails rather than leak the future
    with pytest.raises(ValueError, match="time order"):
        ReturnHistory.describe(iter([later, earlier]))


def test_a_basket_in_another_currency_is_not_compared_as_the_same_money() -> None:
    # given a shop selling in EUR: ann's two orders of the mug at 8.00 and 22.00 EUR
    history = ReturnHistory()
    history.record(kept(basket("B1", "ann", 0, ("MUG-1", 1, 800))))
    history.record(kept(basket("B2", "ann", 5, ("MUG-1", 1, 800), ("VASE-1", 1, 1400))))

    # when she puts the mug in a basket at 15,000 KRW, and at 150.00 EUR
    krw = history.features(replace(basket("K1", "ann", 10, ("MUG-1", 1, 15000)), currency="KRW"))
    eur = history.features(basket("E1", "ann", 10, ("MUG-1", 1, 15000)))

    # then the KRW basket's amounts are left out (the model learnt amounts in EUR), and it is
    # set against no usual spend nor usual price, since she never paid in KRW
    assert (krw.shop_currency, krw.currency) == ("EUR", "KRW")
    assert (krw.value_minor, krw.max_unit_price_minor, krw.mean_unit_price_minor) == (None,) * 3
    assert krw.value_vs_customer_mean is None
    assert (krw.price_vs_usual_min, krw.discounted_line_share) == (None, None)
    assert (krw.basket_value_minor, krw.basket_max_unit_price_minor) == (15000, 15000)
    # while the customer's usual spend in EUR stays what it is
    assert krw.customer_mean_value_minor == pytest.approx(1500.0)
    assert np.isnan(krw.vector()).sum() > np.isnan(eur.vector()).sum()
    # and the EUR basket is compared as before
    assert (eur.value_minor, eur.max_unit_price_minor) == (15000, 15000)
    assert eur.value_vs_customer_mean == pytest.approx(10.0)
    assert eur.price_vs_usual_min == pytest.approx(15000 / 800)


def test_a_basket_is_set_against_the_customers_baskets_in_its_own_currency() -> None:
    # given an EUR shop where bo paid for two mugs in JPY, 1,000 and 3,000 yen
    history = ReturnHistory()
    for number in range(3):
        history.record(kept(basket(f"S{number}", "shop", number, ("MUG-1", 1, 800))))
    for number, price in enumerate((1000, 3000)):
        bought = basket(f"J{number}", "bo", 4 + number, ("MUG-1", 1, price))
        history.record(kept(replace(bought, currency="JPY")))

    # when bo puts the mug in a basket at 8,000 yen
    found = history.features(replace(basket("J3", "bo", 9, ("MUG-1", 1, 8000)), currency="JPY"))

    # then it is four times bo's usual JPY basket and price, though no JPY amount is a feature
    assert found.shop_currency == "EUR"
    assert found.value_vs_customer_mean == pytest.approx(4.0)
    assert found.price_vs_usual_min == pytest.approx(4.0)
    assert found.customer_mean_value_minor is None
    assert found.value_minor is None


def test_the_shop_currency_is_the_one_most_baskets_are_in() -> None:
    history = ReturnHistory()
    assert history.shop_currency is None
    history.record(kept(replace(basket("B1", "ann", 0), currency="JPY")))
    assert history.shop_currency == "JPY"
    history.record(kept(basket("B2", "ann", 1)))
    assert history.shop_currency == "JPY"  # a tie keeps the first
    history.record(kept(basket("B3", "bo", 2)))
    assert history.shop_currency == "EUR"
