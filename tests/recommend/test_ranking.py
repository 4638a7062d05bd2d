"""Re-ranking in context and merchandising rules, on a bundle trained from the shop."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.recommend.ranking import DIVERSITY, Context, Rule, _diverse, rank
from rapport.recommend.trained_model import Bundle, build

from .factories import NOW, PRODUCTS, purchases, shop_bundle


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return shop_bundle()


def skus(
    bundle: Bundle, context: Context, rules: list[Rule] | None = None, **kw: object
) -> list[str]:
    return [r.sku for r in rank(bundle, context, rules or [], **kw)]  # type: ignore[arg-type]


def customer(bundle: Bundle, name: str) -> int:
    return bundle.user_index[name]


def test_similar_items_to_a_chianti_are_other_italian_reds_at_a_similar_price(
    bundle: Bundle,
) -> None:
    ranked = rank(bundle, Context("product_similar", limit=3, item="W-CHIANTI"), [])
    assert [r.sku for r in ranked][:2] == ["W-MONTE", "W-BAROLO"]
    assert all(r.category.startswith("Wine/") for r in ranked)
    assert ranked[0].reason == "similar"
    assert ranked[0].explanation == "Similar to Chianti Classico"


def test_complements_of_a_chianti_come_from_other_categories(bundle: Bundle) -> None:
    # Chianti went into three baskets with wine glasses and two with a corkscrew.
    ranked = rank(bundle, Context("product_complements", limit=3, item="W-CHIANTI"), [])
    assert [r.sku for r in ranked[:2]] == ["K-GLASS", "K-CORK"]
    assert all(not r.category.startswith("Wine/") for r in ranked)
    assert ranked[0].explanation == "Often bought with Chianti Classico"


def test_a_product_never_bought_gets_its_category_best_sellers_as_similar(bundle: Bundle) -> None:
    # Not in the model at all (added to the catalogue after training).
    context = Context(
        "product_similar", limit=3, item="W-NEWER", item_category="Wine/Red", item_name="Nero"
    )
    ranked = rank(bundle, context, [])
    assert ranked
    assert {r.category for r in ranked} == {"Wine/Red"}
    assert ranked[0].explanation == "Similar to Nero"


def test_cart_complements_leave_out_what_is_in_the_cart(bundle: Bundle) -> None:
    found = skus(bundle, Context("cart", limit=5, cart=("W-RIOJA", "K-CORK")))
    assert "W-RIOJA" not in found
    assert "K-CORK" not in found
    assert "K-GLASS" in found


def test_complements_run_out_into_best_sellers_of_other_categories(bundle: Bundle) -> None:
    # given a shelf longer than the Chianti's two complements
    ranked = rank(bundle, Context("product_complements", limit=8, item="W-CHIANTI"), [])
    # then the complements come first, then best sellers, none of them another wine
    assert [r.sku for r in ranked[:2]] == ["K-GLASS", "K-CORK"]
    assert [r.reason for r in ranked] == ["bought_together"] * 2 + ["popular"] * (len(ranked) - 2)
    assert len(ranked) > 2
    assert not any(r.category.startswith("Wine/") for r in ranked)
    assert ranked[2].explanation == "Popular right now"


@pytest.mark.parametrize(
    "context",
    [
        # in the catalogue and the model, never bought
        Context("product_complements", limit=5, item="W-MONTE"),
        # added to the catalogue after training
        Context("product_complements", limit=5, item="W-NEWER", item_category="Wine/Red"),
    ],
    ids=["never-bought", "added-since-training"],
)
def test_best_sellers_behind_a_never_bought_product_are_said_to_be_popular(
    bundle: Bundle, context: Context
) -> None:
    # given a product nothing was ever bought with (nor by anyone)
    ranked = rank(bundle, context, [])
    # then its shelf is best sellers, explained as popular, not as going with it
    assert ranked
    assert {(r.reason, r.explanation) for r in ranked} == {("popular", "Popular right now")}


def test_a_cart_nobody_knows_still_gets_a_full_shelf_of_best_sellers(bundle: Bundle) -> None:
    # given a cart of a SKU neither the model nor the catalogue knows
    ranked = rank(bundle, Context("cart", limit=4, cart=("NOT-A-SKU",)), [])
    # then the shelf is full of best sellers, the best first, and says so
    assert len(ranked) == 4
    assert ranked[0].sku == "K-GLASS"
    assert {r.reason for r in ranked} == {"popular"}
    assert ranked[0].score == 1.0  # with no complement to stay below, on the popular scale


def test_a_customer_without_personal_data_gets_what_is_popular(bundle: Bundle) -> None:
    # Wine glasses: eight buyers in the last 30 days; coffee: six; the sofa: three buyers,
    # all this week (trending).
    ranked = rank(bundle, Context("home", limit=3), [])
    assert [r.sku for r in ranked] == ["K-GLASS", "H-SOFA", "G-COFFEE"]
    assert [r.reason for r in ranked] == ["popular", "trending", "popular"]


def test_popular_near_the_store(bundle: Bundle) -> None:
    ranked = rank(bundle, Context("home", limit=2, store_id="st-lyo-01", store_name="Lyon"), [])
    assert ranked[0].reason == "popular_near_you"
    assert ranked[0].explanation == "Popular at Lyon"
    assert ranked[0].sku in {"G-PASTA", "G-COFFEE"}


def test_personal_home_shows_the_customers_staples_and_explains_them(bundle: Bundle) -> None:
    ranked = rank(bundle, Context("home", limit=4, customer=customer(bundle, "c2")), [])
    assert ranked[0].sku == "G-COFFEE"
    assert ranked[0].reason == "buy_again"
    assert ranked[0].explanation == "You buy this regularly"


def test_an_item_the_customer_bought_is_never_explained_as_going_with_their_purchases() -> None:
    # given a blend that weighs the neighbour parts far above the customer's own items
    bundle = shop_bundle()
    weights = bundle.blend.weights("repeat")
    parts = {"own": 0.01, "knn": 1.0, "ease": 1.0, "als": 1.0, "popular": 0.0, "upcf": 0.0}
    bundle.blend.set_weights("repeat", {**weights, **parts})
    for name in ("c1", "c4", "c9"):
        user = customer(bundle, name)
        bought = {bundle.data.items[i] for i in bundle.data.counts()[user].indices}
        # when their home page is ranked
        ranked = rank(bundle, Context("home", limit=8, customer=user), [])
        # then what they bought reads "bought before", and only new items "go with" it
        assert any(r.sku in bought for r in ranked)
        for r in ranked:
            if r.sku in bought:
                assert r.reason == "buy_again", (name, r.sku, r.reason)
            else:
                assert r.reason != "buy_again", (name, r.sku, r.reason)


def test_just_bought_items_are_left_out_unless_bought_again_and_again(bundle: Bundle) -> None:
    context = Context(
        "home",
        limit=10,
        customer=customer(bundle, "c3"),
        recently_bought=frozenset({"H-SOFA", "G-COFFEE"}),
    )
    found = skus(bundle, context)
    assert "H-SOFA" not in found
    assert "G-COFFEE" in found


def test_store_bound_requests_never_show_an_item_out_of_stock_there(bundle: Bundle) -> None:
    asked: list[list[str]] = []

    def available(candidates: list[str]) -> set[str]:
        asked.append(candidates)
        return set(candidates) - {"G-COFFEE", "K-CORK"}

    context = Context("home", limit=5, customer=customer(bundle, "c1"), store_id="st-par-01")
    found = skus(bundle, context, available=available)
    assert asked
    assert "G-COFFEE" not in found
    assert "K-CORK" not in found
    assert len(found) == 5


def test_rules_apply_in_order_exclude_filter_boost_bury_then_pins(bundle: Bundle) -> None:
    base = Context("home", limit=5)
    plain = skus(bundle, base)
    assert plain[:3] == ["K-GLASS", "H-SOFA", "G-COFFEE"]
    # Exclude removes an item wherever it would be.
    assert "G-COFFEE" not in skus(bundle, base, [Rule("x", "exclude", sku="G-COFFEE")])
    # A filter keeps only matching items (a category matches its subcategories).
    wine_only = skus(bundle, base, [Rule("f", "filter", attribute="category", value="Wine")])
    assert wine_only
    assert all(s.startswith("W-") for s in wine_only)
    # Bury sends coffee down, boost brings the sofa up.
    buried = skus(bundle, base, [Rule("b", "bury", sku="G-COFFEE", factor=100.0)])
    assert "G-COFFEE" not in buried[:3]
    boosted = skus(bundle, base, [Rule("b", "boost", sku="W-CHABLIS", factor=1000.0)])
    assert boosted[0] == "W-CHABLIS"
    # A pin lands at its position whatever the scores, after everything else.
    pinned = rank(bundle, base, [Rule("p", "pin", sku="W-MONTE", position=2)])
    assert pinned[1].sku == "W-MONTE"
    assert pinned[1].reason == "pinned"
    assert pinned[1].explanation == "Pinned by merchandiser"
    assert len(pinned) == 5
    # An excluded item cannot be pinned back; a filter applies to pins too.
    excluded_pin = [
        Rule("x", "exclude", sku="W-MONTE"),
        Rule("p", "pin", sku="W-MONTE", position=1),
    ]
    assert "W-MONTE" not in skus(bundle, base, excluded_pin)
    filtered_pin = [
        Rule("f", "filter", attribute="category", value="Grocery"),
        Rule("p", "pin", sku="W-MONTE", position=1),
    ]
    assert "W-MONTE" not in skus(bundle, base, filtered_pin)


def test_two_pins_of_one_item_show_it_once_where_the_most_specific_pin_puts_it(
    bundle: Bundle,
) -> None:
    base = Context("home", limit=5)
    everywhere = Rule("all", "pin", sku="W-MONTE", position=1)
    on_home = Rule("home", "pin", sku="W-MONTE", position=3, placement="home")
    for rules in ([everywhere, on_home], [on_home, everywhere]):
        found = skus(bundle, base, rules)
        # once, at the home pin's position: the rule for this placement overrides the other
        assert found.count("W-MONTE") == 1
        assert found.index("W-MONTE") == 2
        assert len(found) == 5
    # equally specific pins of one item: the first position wins
    found = skus(
        bundle,
        base,
        [Rule("a", "pin", sku="W-MONTE", position=4), Rule("b", "pin", sku="W-MONTE", position=2)],
    )
    assert found.count("W-MONTE") == 1
    assert found.index("W-MONTE") == 1
    # a segment's pin overrides one for everyone, the placement's overrides both
    found = skus(
        bundle,
        base,
        [
            Rule("all", "pin", sku="W-MONTE", position=1),
            Rule("gold", "pin", sku="W-MONTE", position=4, segment="gold"),
        ],
    )
    assert found.index("W-MONTE") == 3


def test_pins_keep_their_positions_when_another_pin_is_dropped(bundle: Bundle) -> None:
    base = Context("home", limit=5)
    rules = [
        Rule("x", "exclude", sku="W-MONTE"),
        Rule("first", "pin", sku="W-MONTE", position=1),
        Rule("fourth", "pin", sku="W-CHABLIS", position=4),
    ]
    found = skus(bundle, base, rules)
    # the excluded pin does not hand its position to the other one
    assert "W-MONTE" not in found
    assert found.index("W-CHABLIS") == 3
    # two items pinned at one position follow each other, the earlier rule first
    both = skus(
        bundle,
        base,
        [
            Rule("a", "pin", sku="W-MONTE", position=2),
            Rule("b", "pin", sku="W-CHABLIS", position=2),
        ],
    )
    assert both[1:3] == ["W-MONTE", "W-CHABLIS"]
    assert len(both) == len(set(both)) == 5


def test_boosts_of_one_item_by_two_rules_combine_by_specificity(bundle: Bundle) -> None:
    base = Context("home", limit=20)

    def score(rules: list[Rule], sku: str = "W-CHABLIS") -> float:
        return next(r.score for r in rank(bundle, base, rules) if r.sku == sku)

    plain = score([])
    # the rule for this placement overrides the one for every placement, boost or bury
    everywhere = Rule("all", "boost", sku="W-CHABLIS", factor=2.0)
    on_home = Rule("home", "boost", sku="W-CHABLIS", factor=3.0, placement="home")
    assert score([everywhere, on_home]) == pytest.approx(3 * plain, rel=1e-4)
    bury_home = Rule("home", "bury", sku="W-CHABLIS", factor=2.0, placement="home")
    assert score([everywhere, bury_home]) == pytest.approx(plain / 2, rel=1e-4)
    # of equally specific ones of one target the newest applies, never both
    bury_all = Rule("all", "bury", sku="W-CHABLIS", factor=2.0)
    assert score([everywhere, bury_all]) == pytest.approx(plain / 2, rel=1e-4)
    assert score([bury_all, everywhere]) == pytest.approx(2 * plain, rel=1e-4)
    # rules on different targets that both match the item multiply too
    wine = Rule("wine", "boost", attribute="category", value="Wine", factor=2.0, placement="home")
    assert score([everywhere, wine]) == pytest.approx(4 * plain, rel=1e-4)


def test_of_two_equally_specific_boosts_of_one_target_the_newest_applies(bundle: Bundle) -> None:
    base = Context("home", limit=20)

    def score(rules: list[Rule], sku: str = "W-CHABLIS") -> float:
        return next(r.score for r in rank(bundle, base, rules) if r.sku == sku)

    plain = score([])
    # two boosts of the category Wine for every placement: x2 made first, x3 made later
    older = Rule("x2", "boost", attribute="category", value="Wine", factor=2.0, rule_id=7)
    newer = Rule("x3", "boost", attribute="category", value="Wine", factor=3.0, rule_id=9)
    assert score([older, newer]) == pytest.approx(3 * plain, rel=1e-4)  # not x6
    assert score([newer, older]) == pytest.approx(3 * plain, rel=1e-4)
    # a rule that began later is newer than one made later that has no start
    summer = Rule(
        "summer", "boost", attribute="category", value="Wine", factor=1.5, rule_id=5,
        starts_at=datetime(2026, 6, 1, tzinfo=UTC),
    )  # fmt: skip
    assert score([older, newer, summer]) == pytest.approx(1.5 * plain, rel=1e-4)


def test_attribute_rules_match_brand_and_country(bundle: Bundle) -> None:
    base = Context("product_similar", limit=5, item="W-CHIANTI")
    assert "W-MONTE" not in skus(
        bundle, base, [Rule("b", "exclude", attribute="brand", value="Castello")]
    )
    italian = skus(bundle, base, [Rule("c", "filter", attribute="country_of_origin", value="IT")])
    assert set(italian) == {"W-MONTE", "W-BAROLO"}


def test_diversity_mixes_categories(bundle: Bundle) -> None:
    ranked = rank(bundle, Context("home", limit=4), [])
    categories = [r.category.split("/")[0] for r in ranked]
    assert len(set(categories)) >= 3


def test_margin_weight_favours_margin_among_similar_scores(bundle: Bundle) -> None:
    base = Context("product_similar", limit=3, item="W-BAROLO")
    without = skus(bundle, base)
    with_margin = skus(
        bundle,
        Context("product_similar", limit=3, item="W-BAROLO", margin_weight=1.0),
    )
    assert set(with_margin) == set(without)  # same candidates, re-weighed


def test_time_of_day_changes_scores_where_categories_sell_at_different_hours(
    bundle: Bundle,
) -> None:
    morning = rank(bundle, Context("home", limit=9, at=datetime(2026, 6, 2, 8, tzinfo=UTC)), [])
    evening = rank(bundle, Context("home", limit=9, at=datetime(2026, 6, 2, 21, tzinfo=UTC)), [])
    assert {r.sku: r.score for r in morning} != {r.sku: r.score for r in evening}


def test_a_new_customer_in_a_tier_sees_what_that_tier_buys() -> None:
    # c9-c12 (pasta and Chablis buyers) are gold members; everyone else is in the base tier.
    tiers = {f"c{n}": ("gold" if n >= 9 else "base") for n in range(1, 13)}
    bundle = build(purchases(), PRODUCTS, version="v", now=NOW, segments=tiers)
    ranked = rank(bundle, Context("home", limit=3, segment=("gold", "Gold")), [])
    assert ranked[0].sku == "G-PASTA"
    assert ranked[0].reason == "popular_in_tier"
    assert ranked[0].explanation == "Popular with Gold members"
    anyone = rank(bundle, Context("home", limit=3), [])
    assert anyone[0].sku != "G-PASTA"


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_diversity_picks_what_the_greedy_definition_picks(data: st.DataObject) -> None:
    # given a pool ordered as ranking orders it (score, then index), with many ties
    items = data.draw(st.integers(min_value=1, max_value=40))
    scores = np.array(
        data.draw(
            st.lists(st.sampled_from([0.1, 0.5, 0.75, 1.0, 2.0]), min_size=items, max_size=items)
        ),
        dtype=np.float64,
    )
    category_of = np.array(
        data.draw(st.lists(st.integers(0, 4), min_size=items, max_size=items)), dtype=np.int64
    )
    pool = [int(i) for i in np.lexsort((np.arange(items), -scores))]
    limit = data.draw(st.integers(min_value=1, max_value=12))
    fake = SimpleNamespace(category_of=category_of, top_categories=list(range(5)))
    # then each pick is the best discounted score, ties to the earlier candidate
    expected: list[int] = []
    shown = np.zeros(5)
    left = list(pool)
    for _ in range(min(limit, items)):
        best = max(
            left, key=lambda i: (scores[i] * DIVERSITY ** shown[category_of[i]], -pool.index(i))
        )
        expected.append(best)
        shown[category_of[best]] += 1
        left.remove(best)
    assert _diverse(fake, scores, pool, limit) == expected  # type: ignore[arg-type]


def test_new_items_for_a_customer_are_ranked_with_the_tuned_in_season_boost() -> None:
    # given a bundle whose discovery weights boost what is in season
    bundle = shop_bundle()
    context = Context("discover", limit=50, customer=customer(bundle, "c2"), exclude_purchased=True)
    before = skus(bundle, context)
    last = before[len(before) // 2]
    weights = bundle.blend.weights("discover")
    bundle.blend.set_weights("discover", {**weights, "season": 1.0})
    # when an item ranked halfway is the only one selling much faster than usual lately
    season = np.ones_like(bundle.blend.season)
    season[bundle.item_index[last]] = 1e6
    bundle.blend.season = season
    # then it is the first recommendation, explained as in season
    first = rank(bundle, context, [])[0]
    assert first.sku == last
    assert first.reason == "trending"
    assert first.explanation == "In season: selling faster than usual lately"
