"""The trained model file: everything serving needs, learnt in one pass over the purchases.

A bundle holds the blend (the customer's favourites, neighbours, popularity), substitutes
(attributes and co-purchase within a category), complements (bought in the same basket, across
categories), popularity per store, trending items, and how each category sells by time of day
and channel. It is written as one ``.npz`` file (plain arrays, no pickles) per version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from threadpoolctl import threadpool_limits

from rapport.recommend.algorithms import PARTS, Blend, keep_top_per_row
from rapport.recommend.interactions import (
    SECONDS_PER_DAY,
    FloatArray,
    IntArray,
    Interactions,
    day_number,
    row_entries,
)
from rapport.recommend.tuning import tune

FORMAT = 1
NEIGHBOURS = 30
# Above this many items a category is no longer a shelf but most of the catalogue.
LARGE_CATEGORY = 1000
# An item with fewer complements from other categories than this also gets those bought with it
# from its own (at half strength): a catalogue with one category for everything still has them.
FEW_COMPLEMENTS = 5
STORE_WINDOW_DAYS = 90.0
TRENDING_DAYS = 7.0
# weekday/weekend x night, morning, afternoon, evening
DAYPARTS = 8
CHANNELS = ("web", "app", "store")


def daypart(moment: datetime) -> int:
    weekend = moment.weekday() >= 5
    return 4 * int(weekend) + moment.hour // 6


@dataclass(frozen=True)
class Purchase:
    """One line of training data."""

    basket: str
    customer_id: str | None
    sku: str
    at: datetime
    store_id: str | None = None
    channel: str = "web"


@dataclass(frozen=True)
class ProductFacts:
    sku: str
    name: str
    category_path: str
    brand: str | None = None
    price_minor: int = 0
    cost_minor: int = 0
    country: str | None = None


def _strings(values: Sequence[str]) -> npt.NDArray[np.str_]:
    return np.asarray(list(values), dtype=np.str_) if values else np.zeros(0, dtype="<U1")


@dataclass
class Bundle:
    version: str
    trained_at: datetime
    data: Interactions
    blend: Blend
    names: list[str]
    categories: list[str]
    brands: list[str]
    countries: list[str]
    price_minor: IntArray
    margin_rate: FloatArray
    substitutes: sparse.csr_matrix
    complements: sparse.csr_matrix
    category_of: IntArray  # index into top_categories
    top_categories: list[str]
    category_best: sparse.csr_matrix  # top category x items: the category's best sellers
    category_partners: sparse.csr_matrix  # top category x top category: bought together
    stores: list[str]
    store_popularity: sparse.csr_matrix  # stores x items
    segments: list[str]  # the customers' loyalty tiers when trained
    segment_popularity: sparse.csr_matrix  # segments x items
    trending: FloatArray
    daypart_lift: FloatArray  # top category x DAYPARTS
    channel_lift: FloatArray  # top category x CHANNELS
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    item_index: dict[str, int] = field(default_factory=dict, repr=False)
    user_index: dict[str, int] = field(default_factory=dict, repr=False)
    store_index: dict[str, int] = field(default_factory=dict, repr=False)
    segment_index: dict[str, int] = field(default_factory=dict, repr=False)
    top_category_index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.top_category_index = {c: i for i, c in enumerate(self.top_categories)}
        self.segment_index = {segment: i for i, segment in enumerate(self.segments)}
        self.item_index = {sku: i for i, sku in enumerate(self.data.items)}
        self.user_index = {customer: i for i, customer in enumerate(self.data.users)}
        self.store_index = {store: i for i, store in enumerate(self.stores)}

    @cached_property
    def neighbour_links(self) -> sparse.csc_matrix:
        """The item-to-item links by target item (which purchases lead to each item), for
        explaining "because you bought" picks."""
        return self.blend.knn.similarity.tocsc()

    @property
    def popularity(self) -> FloatArray:
        return self.blend.frequency.popularity.popularity

    @property
    def repeat(self) -> FloatArray:
        return self.blend.frequency.repeat

    # ---------------------------------------------------------------- persistence

    def save(self, path: Path) -> None:
        """Write the bundle where readers never see half a file: a temporary name, then an
        atomic rename."""
        arrays: dict[str, npt.NDArray[Any]] = {
            "meta": np.asarray(
                json.dumps(
                    {
                        "format": FORMAT,
                        "version": self.version,
                        "trained_at": self.trained_at.isoformat(),
                        "end": self.data.end,
                        "blend": self.blend.params,
                        "metrics": self.metrics,
                        "params": self.params,
                    }
                )
            ),
            "users": _strings(self.data.users),
            "items": _strings(self.data.items),
            "user": self.data.user,
            "item": self.data.item,
            "day": self.data.day,
            "names": _strings(self.names),
            "categories": _strings(self.categories),
            "brands": _strings(self.brands),
            "countries": _strings(self.countries),
            "price_minor": self.price_minor,
            "margin_rate": self.margin_rate,
            "category_of": self.category_of,
            "top_categories": _strings(self.top_categories),
            "stores": _strings(self.stores),
            "segments": _strings(self.segments),
            "trending": self.trending,
            "daypart_lift": self.daypart_lift,
            "channel_lift": self.channel_lift,
        }
        for name in (
            "substitutes",
            "complements",
            "category_best",
            "category_partners",
            "store_popularity",
            "segment_popularity",
        ):
            matrix: sparse.csr_matrix = getattr(self, name)
            arrays[f"{name}.data"] = matrix.data
            arrays[f"{name}.indices"] = matrix.indices
            arrays[f"{name}.indptr"] = matrix.indptr
            arrays[f"{name}.shape"] = np.asarray(matrix.shape, dtype=np.int64)
        arrays.update({f"blend.{k}": v for k, v in self.blend.state().items()})
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with partial.open("wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> Bundle:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        meta = json.loads(str(arrays["meta"]))
        if meta["format"] != FORMAT:
            raise ValueError(f"{path} is model format {meta['format']}, expected {FORMAT}")

        def matrix(name: str) -> sparse.csr_matrix:
            return sparse.csr_matrix(
                (arrays[f"{name}.data"], arrays[f"{name}.indices"], arrays[f"{name}.indptr"]),
                shape=tuple(int(n) for n in arrays[f"{name}.shape"]),
            )

        blend = Blend.restored(
            meta["blend"],
            {k.removeprefix("blend."): v for k, v in arrays.items() if k.startswith("blend.")},
        )
        return cls(
            version=meta["version"],
            trained_at=datetime.fromisoformat(meta["trained_at"]),
            data=Interactions(
                users=arrays["users"].tolist(),
                items=arrays["items"].tolist(),
                user=arrays["user"],
                item=arrays["item"],
                day=arrays["day"],
                end=float(meta["end"]),
            ),
            blend=blend,
            names=arrays["names"].tolist(),
            categories=arrays["categories"].tolist(),
            brands=arrays["brands"].tolist(),
            countries=arrays["countries"].tolist(),
            price_minor=arrays["price_minor"],
            margin_rate=arrays["margin_rate"],
            substitutes=matrix("substitutes"),
            complements=matrix("complements"),
            category_of=arrays["category_of"],
            top_categories=arrays["top_categories"].tolist(),
            category_best=matrix("category_best"),
            category_partners=matrix("category_partners"),
            stores=arrays["stores"].tolist(),
            store_popularity=matrix("store_popularity"),
            segments=arrays["segments"].tolist(),
            segment_popularity=matrix("segment_popularity"),
            trending=arrays["trending"],
            daypart_lift=arrays["daypart_lift"],
            channel_lift=arrays["channel_lift"],
            metrics=meta["metrics"],
            params=meta["params"],
        )


# ------------------------------------------------------------------------------ training


def top_category(path: str) -> str:
    return path.split("/", 1)[0] if path else ""


def build(
    purchases: Sequence[Purchase],
    products: Sequence[ProductFacts],
    *,
    version: str,
    now: datetime,
    blend_params: dict[str, Any] | None = None,
    segments: dict[str, str] | None = None,
    tuned: bool = True,
) -> Bundle:
    """Learn a bundle from purchase lines and the catalogue (and each customer's segment, their
    loyalty tier, for popularity per segment). With ``tuned`` the blend's weights are chosen on
    the history's last weeks (:mod:`rapport.recommend.tuning`, figures in ``metrics``);
    ``blend_params`` are where the search starts and what stays when there is too little
    history to measure. Deterministic: the same input gives the same arrays.

    Windows (popularity, trending, recency) are measured from the end of the history: the
    last purchase, or ``now`` if that is earlier. Imported history that ended months ago is
    then as fresh as it was on its last day, not empty."""
    facts = {p.sku: p for p in products}
    days = np.fromiter(
        (p.at.timestamp() / SECONDS_PER_DAY for p in purchases),
        dtype=np.float64,
        count=len(purchases),
    )
    end = min(day_number(now), float(days.max())) if len(days) else day_number(now)
    known = np.fromiter((p.customer_id is not None for p in purchases), dtype=bool, count=len(days))
    data = Interactions.from_purchases(
        [p.customer_id for p in purchases if p.customer_id is not None],
        [p.sku for p in purchases if p.customer_id is not None],
        days[known],
        end=end,
        item_universe=sorted(set(facts) | {p.sku for p in purchases}),
    )
    params = dict(blend_params or {})
    metrics: dict[str, Any] = {}
    if tuned:
        # The final fit (every part, since the weights are not chosen yet) runs beside the
        # search on the second core: both spend most of their time outside the GIL. What the
        # catalogue learns that no weight changes (substitutes, complements, lifts) follows it
        # there, while the search still runs. One BLAS thread each: two fits with a BLAS pool
        # each would fight over two cores.
        with threadpool_limits(1, "blas"), ThreadPoolExecutor(1) as pool:
            every_part = pool.submit(Blend(**{**params, **dict.fromkeys(PARTS, 1.0)}).fit, data)
            learnt = pool.submit(
                lambda: _catalogue(purchases, facts, data, every_part.result(), days, segments)
            )
            tuning = tune(data, params)
            blend, bundle = every_part.result(), learnt.result()
        params, metrics = tuning.params, tuning.report
        blend = blend.reweighed(params)
    else:
        blend = Blend(**params).fit(data)
        bundle = _catalogue(purchases, facts, data, blend, days, segments)
    return bundle(
        version=version,
        trained_at=now,
        data=data,
        blend=blend,
        metrics=metrics,
        params={"neighbours": NEIGHBOURS},
    )


def _catalogue(
    purchases: Sequence[Purchase],
    facts: dict[str, ProductFacts],
    data: Interactions,
    blend: Blend,
    days: npt.NDArray[np.float64],
    segments: dict[str, str] | None,
) -> partial[Bundle]:
    """The bundle's item side (names and prices, substitutes, complements, popularity per
    store and segment, trending and context lifts), as a bundle waiting for its blend. It
    reads the blend's fitted item-kNN links and popularity, never its weights, so it can be
    learnt before the weights are chosen."""
    end = data.end
    items = data.items
    index = {sku: i for i, sku in enumerate(items)}
    item_of = np.fromiter((index[p.sku] for p in purchases), dtype=np.int64, count=len(days))
    described = [facts.get(sku) for sku in items]
    categories = [f.category_path if f else "" for f in described]
    tops = sorted({top_category(c) for c in categories})
    top_index = {c: i for i, c in enumerate(tops)}
    category_of = np.asarray([top_index[top_category(c)] for c in categories], dtype=np.int64)
    price = np.asarray([f.price_minor if f else 0 for f in described], dtype=np.int64)
    cost = np.asarray([f.cost_minor if f else 0 for f in described], dtype=np.int64)
    margin = np.where(price > 0, (price - cost) / np.maximum(price, 1), 0.0).astype(np.float32)
    baskets = _basket_matrix(purchases, item_of, len(items))
    co_bought = _cosine(baskets, shrink=5.0)
    recent = days >= end - STORE_WINDOW_DAYS
    stores, store_popularity = _popularity_by(
        [p.store_id for p in purchases], item_of, recent, len(items)
    )
    segment_of = segments or {}
    segment_names, segment_popularity = _popularity_by(
        [segment_of.get(p.customer_id or "") for p in purchases], item_of, recent, len(items)
    )
    return partial(
        Bundle,
        names=[f.name if f else sku for sku, f in zip(items, described, strict=True)],
        categories=categories,
        brands=[(f.brand or "") if f else "" for f in described],
        countries=[(f.country or "") if f else "" for f in described],
        price_minor=price,
        margin_rate=margin,
        substitutes=_substitutes(categories, described, price, co_bought, blend),
        complements=_complements(co_bought, categories, category_of),
        category_of=category_of,
        top_categories=tops,
        category_best=_category_best(category_of, blend, len(tops)),
        category_partners=_category_partners(baskets, category_of, len(tops)),
        stores=stores,
        store_popularity=store_popularity,
        segments=segment_names,
        segment_popularity=segment_popularity,
        trending=_trending(item_of, end - days, len(items)),
        daypart_lift=_lift(purchases, item_of, category_of, len(tops), "daypart"),
        channel_lift=_lift(purchases, item_of, category_of, len(tops), "channel"),
    )


def _basket_matrix(
    purchases: Sequence[Purchase], item_of: IntArray, items: int
) -> sparse.csr_matrix:
    """Baskets x items, 1 where the basket held the item."""
    basket_ids: dict[str, int] = {}
    rows = np.fromiter(
        (basket_ids.setdefault(p.basket, len(basket_ids)) for p in purchases),
        dtype=np.int64,
        count=len(item_of),
    )
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, item_of)),
        shape=(len(basket_ids), items),
    )
    matrix.data[:] = 1.0
    return matrix


def _cosine(matrix: sparse.csr_matrix, *, shrink: float) -> sparse.csr_matrix:
    """Column-to-column cosine similarity, shrunk for columns with little support."""
    co = (matrix.T @ matrix).tocoo()
    support = np.sqrt(np.asarray(matrix.sum(axis=0)).ravel())
    off_diagonal = co.row != co.col
    rows, columns = co.row[off_diagonal], co.col[off_diagonal]
    values = co.data[off_diagonal] / (support[rows] * support[columns] + shrink)
    return sparse.csr_matrix(
        (values.astype(np.float32), (rows, columns)), shape=co.shape, dtype=np.float32
    )


def _codes(values: Sequence[str]) -> IntArray:
    """Each distinct non-empty value as an integer; empty values are -1 (never equal)."""
    seen: dict[str, int] = {}
    return np.asarray([seen.setdefault(v, len(seen)) if v else -1 for v in values], dtype=np.int64)


def _substitutes(
    categories: list[str],
    described: list[ProductFacts | None],
    price: IntArray,
    co_bought: sparse.csr_matrix,
    blend: Blend,
) -> sparse.csr_matrix:
    """Items like each item: same category (closest first), similar price, same brand or
    country, and bought by the same kind of basket. Works for items nobody bought yet. Items
    without a category look among their item-kNN neighbours and co-purchases instead (a
    catalogue without categories still has similar items)."""
    leaf = _codes(categories)
    parent = _codes([top_category(c) for c in categories])
    brand = _codes([(d.brand or "") if d else "" for d in described])
    country = _codes([(d.country or "") if d else "" for d in described])
    members: dict[int, IntArray] = {}
    for code in np.unique(leaf):
        members[int(code)] = np.flatnonzero(leaf == code)
    parent_members: dict[int, IntArray] = {}
    for code in np.unique(parent):
        parent_members[int(code)] = np.flatnonzero(parent == code)
    neighbours = blend.knn.similarity
    popularity = blend.frequency.popularity.popularity
    log_price = np.log(np.maximum(price, 1).astype(np.float64))
    co_row = np.zeros(len(categories), dtype=np.float32)  # one item's co-purchases, dense
    rows, columns, values = [], [], []
    for i in range(len(categories)):
        co_items, co_values = row_entries(co_bought, i)
        related = np.union1d(row_entries(neighbours, i)[0], co_items)
        if leaf[i] < 0:
            pool = related
        else:
            pool = members[int(leaf[i])]
            if len(pool) <= NEIGHBOURS // 3:
                pool = parent_members[int(parent[i])]
            if len(pool) > LARGE_CATEGORY:
                # A category that is most of the catalogue says little (and scoring all of it
                # for every item is quadratic): its items related by purchases, else its best.
                inside = np.intersect1d(pool, related, assume_unique=True)
                pool = inside if len(inside) else pool[np.argsort(-popularity[pool])[:NEIGHBOURS]]
        candidates = pool[pool != i]
        if not len(candidates):
            continue
        co_row[co_items] = co_values
        score = np.where((leaf[candidates] == leaf[i]) & (leaf[i] >= 0), 0.4, 0.2)
        score += 0.3 * np.exp(-2.0 * np.abs(log_price[candidates] - log_price[i]))
        score += 0.15 * ((brand[candidates] == brand[i]) & (brand[i] >= 0))
        score += 0.15 * ((country[candidates] == country[i]) & (country[i] >= 0))
        score += 0.5 * co_row[candidates]
        co_row[co_items] = 0.0
        keep = np.lexsort((candidates, -score))[:NEIGHBOURS]
        rows.append(np.full(len(keep), i, dtype=np.int64))
        columns.append(candidates[keep])
        values.append(score[keep])
    n = len(categories)
    return sparse.csr_matrix(
        (
            np.concatenate(values).astype(np.float32) if values else np.zeros(0, np.float32),
            (
                np.concatenate(rows) if rows else np.zeros(0, np.int64),
                np.concatenate(columns) if columns else np.zeros(0, np.int64),
            ),
        ),
        shape=(n, n),
        dtype=np.float32,
    )


def _complements(
    co_bought: sparse.csr_matrix, categories: list[str], category_of: IntArray
) -> sparse.csr_matrix:
    """Items bought in the same basket from another category: the corkscrew for the wine.
    Where either item has no category every co-purchase counts; an item with fewer than
    ``FEW_COMPLEMENTS`` from other categories also gets those from its own, at half strength
    (a catalogue with one category for everything, or a shop's own-label range)."""
    coo = co_bought.tocoo()
    uncategorised = np.asarray([not c for c in categories], dtype=bool)
    other = (category_of[coo.row] != category_of[coo.col]) | uncategorised[coo.row]
    other |= uncategorised[coo.col]
    across_count = np.bincount(coo.row[other], minlength=co_bought.shape[0])
    filler = ~other & (across_count[coo.row] < FEW_COMPLEMENTS)
    kept = other | filler
    values = np.where(other, coo.data, 0.5 * coo.data)
    complements = sparse.csr_matrix(
        (values[kept], (coo.row[kept], coo.col[kept])), shape=coo.shape, dtype=np.float32
    )
    return keep_top_per_row(complements, NEIGHBOURS)


def _category_best(category_of: IntArray, blend: Blend, categories: int) -> sparse.csr_matrix:
    """Each category's best sellers, for complements of items with no basket history."""
    popularity = blend.frequency.popularity.popularity
    matrix = sparse.csr_matrix(
        (popularity + 1e-6, (category_of, np.arange(len(category_of)))),
        shape=(categories, len(category_of)),
        dtype=np.float32,
    )
    return keep_top_per_row(matrix, NEIGHBOURS)


def _category_partners(
    baskets: sparse.csr_matrix, category_of: IntArray, categories: int
) -> sparse.csr_matrix:
    """Which categories are bought together (cosine over baskets), a category never its own."""
    to_category = sparse.csr_matrix(
        (np.ones(len(category_of), dtype=np.float32), (np.arange(len(category_of)), category_of)),
        shape=(len(category_of), categories),
    )
    per_basket = baskets @ to_category
    per_basket.data[:] = 1.0
    return keep_top_per_row(_cosine(per_basket.tocsr(), shrink=5.0), 5)


def _popularity_by(
    groups: Sequence[str | None], item_of: IntArray, recent: npt.NDArray[np.bool_], items: int
) -> tuple[list[str], sparse.csr_matrix]:
    """Recent purchases of each item (the last 90 days) per group (store, segment), from each
    purchase's group; purchases outside any group are left out."""
    keep = np.asarray([g is not None for g in groups], dtype=bool) & recent
    chosen = [g for g, k in zip(groups, keep.tolist(), strict=True) if k]
    names = sorted({g for g in chosen if g is not None})
    group_index = {g: i for i, g in enumerate(names)}
    matrix = sparse.csr_matrix(
        (
            np.ones(len(chosen), dtype=np.float32),
            (
                np.asarray([group_index[g] for g in chosen if g is not None], dtype=np.int64),
                item_of[keep],
            ),
        ),
        shape=(len(names), items),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    return names, matrix


def _trending(item_of: IntArray, age: npt.NDArray[np.float64], items: int) -> FloatArray:
    """Items selling faster in the last week than in the four before it, by how much more."""
    recent = np.bincount(item_of[age < TRENDING_DAYS], minlength=items).astype(np.float64)
    earlier = (age >= TRENDING_DAYS) & (age < 5 * TRENDING_DAYS)
    before = np.bincount(item_of[earlier], minlength=items).astype(np.float64)
    expected = before / 4.0
    growth = np.log((recent + 1.0) / (expected + 1.0))
    return np.where(growth > 0, recent * growth, 0.0).astype(np.float32)


def _lift(
    purchases: Sequence[Purchase],
    item_of: IntArray,
    category_of: IntArray,
    categories: int,
    by: str,
) -> FloatArray:
    """How much more (or less) each category sells in each daypart or channel than overall,
    shrunk towards 1 where there is little data."""
    width = DAYPARTS if by == "daypart" else len(CHANNELS)
    counts = np.zeros((categories, width), dtype=np.float64)
    if by == "daypart":
        columns = np.fromiter((daypart(p.at) for p in purchases), np.int64, len(item_of))
    else:
        codes = {channel: i for i, channel in enumerate(CHANNELS)}
        columns = np.fromiter((codes.get(p.channel, -1) for p in purchases), np.int64, len(item_of))
    counted = columns >= 0
    np.add.at(counts, (category_of[item_of[counted]], columns[counted]), 1.0)
    # Observed against expected sales (the category's sales spread as all sales are), both
    # plus the same prior: a lift moves away from 1 only as far as the sales seen support,
    # and a daypart or channel with no sales at all leaves every category at 1.
    overall_share = counts.sum(axis=0) / max(counts.sum(), 1.0)
    expected = counts.sum(axis=1, keepdims=True) * overall_share
    prior = 20.0
    lift: FloatArray = ((counts + prior) / (expected + prior)).astype(np.float32)
    return lift
