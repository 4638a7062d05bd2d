"""What training learns beyond the blend: complements and similar items for a catalogue
without categories, and windows measured from the end of the history."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from rapport.recommend.ranking import Context, rank
from rapport.recommend.trained_model import ProductFacts, build

from .factories import NOW, PRODUCTS, purchases

UNCATEGORISED = [replace(p, category_path="") for p in PRODUCTS]
ONE_CATEGORY = [replace(p, category_path="Shop") for p in PRODUCTS]


def _skus(bundle, placement: str, **context) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.sku for r in rank(bundle, Context(placement=placement, limit=5, **context))]


@pytest.mark.parametrize("catalogue", [UNCATEGORISED, ONE_CATEGORY], ids=["none", "one"])
def test_a_catalogue_without_categories_still_gets_complements_and_similar_items(
    catalogue: list[ProductFacts],
) -> None:
    bundle = build(purchases(), catalogue, version="v", now=NOW)
    # red wine is bought with a corkscrew, then with glasses: co-purchase, whatever the category
    complements = _skus(bundle, "product_complements", item="W-CHIANTI")
    assert {"K-CORK", "K-GLASS"} <= set(complements)
    cart = _skus(bundle, "cart", cart=("W-RIOJA",))
    assert {"K-CORK", "K-GLASS"} & set(cart)
    assert "W-RIOJA" not in cart
    # similar: the other reds their buyers also buy (item-to-item neighbours)
    similar = _skus(bundle, "product_similar", item="W-CHIANTI")
    assert similar
    assert {"W-BAROLO", "W-RIOJA"} & set(similar[:3])


def test_with_categories_complements_come_from_other_categories() -> None:
    bundle = build(purchases(), PRODUCTS, version="v", now=NOW)
    complements = _skus(bundle, "product_complements", item="W-CHIANTI")
    assert not {"W-BAROLO", "W-RIOJA"} & set(complements)


def test_imported_history_that_ended_a_year_ago_is_measured_from_its_last_day() -> None:
    fresh = build(purchases(), PRODUCTS, version="v", now=NOW)
    year_old = [replace(p, at=p.at - timedelta(days=365)) for p in purchases()]
    old = build(year_old, PRODUCTS, version="v", now=NOW)
    coffee = old.item_index["G-COFFEE"]
    # coffee sold every week of the history's last month: popular, not a leftover
    assert old.popularity[coffee] >= 6
    np.testing.assert_allclose(old.popularity, fresh.popularity)
    np.testing.assert_allclose(old.trending, fresh.trending)
    assert old.store_popularity.nnz == fresh.store_popularity.nnz > 0
    anonymous = _skus(old, "home")
    assert anonymous[0] == _skus(fresh, "home")[0]


def test_a_daypart_without_sales_leaves_every_category_as_it_is() -> None:
    # every purchase at midnight (a dataset with dates only): evenings say nothing
    at_midnight = [
        replace(p, at=p.at.replace(hour=0, minute=0, second=0, microsecond=0)) for p in purchases()
    ]
    bundle = build(at_midnight, PRODUCTS, version="v", now=NOW)
    evening = 4 * 0 + 18 // 6  # a weekday evening
    np.testing.assert_allclose(bundle.daypart_lift[:, evening], 1.0)
    night = bundle.daypart_lift[:, 0]
    assert night.min() > 0.5  # the lifts of a daypart with all the sales stay near 1 too
