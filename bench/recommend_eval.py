"""Recommendation quality on real retail data: what Rapport serves against the best baselines.

    .venv/bin/python bench/recommend_eval.py [--datasets ta-feng,online-retail] [--quick]

For each dataset in ../shared/data that has customer and item ids (Ta-Feng, Online Retail) it
trains on the past and predicts each customer's distinct items of the next period, under two
protocols: repeats allowed, and only items new to the customer. Every baseline is tuned on a
validation window carved from the end of the training period (same length as the test
window), refitted on the whole training period and scored once on the test period: popularity,
the customer's top items, item-kNN, EASE, ALS, and two next-basket methods from their papers,
TIFU-KNN (Hu et al., SIGIR 2020) and UP-CF@r (Faggioli et al., UMAP 2020).

``rapport`` is what the product serves, scored the way a shop asks for it: the catalogue and the
customers (consenting to personalisation) go into a throw-away SQLite database, the model is
trained by the training function the product runs (``trained_model.build``, which tunes the
blend's weights on the history's own last weeks), and every test customer's 20 items come from
``recommend.service.recommend``, the verb behind ``GET /v1/recommendations``: placement ``home``
with repeats allowed, ``discover`` for new items. Rules, diversity and context apply as served.

Prints one Markdown table per dataset and protocol, with the paired 95% interval of the
difference in Recall@20 between ``rapport`` and the best baseline (same customers), then one
JSON line: ``{"<dataset>": {"<model>": {"recall@10", "recall@20", "ndcg@10", "coverage@10",
"train_s"}}, "verdict": {...}, "train_s": ..., "peak_rss_mib": ...}`` (dataset keys carry the
protocol: ``ta-feng`` and ``ta-feng/new-items``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import resource
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from ingest import sqlite_database

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.platform.db import open_session
from rapport.recommend import service as recommend
from rapport.recommend.algorithms import ALS, EASE, ItemKNN, PersonalFrequency, Popularity
from rapport.recommend.base import Recommender
from rapport.recommend.evaluation import Purchases, Split, evaluate, grid, split, tune
from rapport.recommend.trained_model import ProductFacts, Purchase, build

# The shared data sets live beside the checkout (../shared/data); RAPPORT_BENCH_DATA names
# another place (a clone elsewhere).
DATA = Path(
    os.environ.get("RAPPORT_BENCH_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
DAY = 86_400.0


def _day(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() / DAY


def _ta_feng_rows() -> Any:
    with (
        zipfile.ZipFile(DATA / "ta-feng" / "ta_feng.csv.zip") as archive,
        archive.open(archive.namelist()[0]) as raw,
    ):
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig"))
        next(reader)
        yield from reader


def load_ta_feng() -> Purchases:
    customers_, items, days = [], [], []
    cache: dict[str, float] = {}
    for row in _ta_feng_rows():
        stamp = row[0]
        if stamp not in cache:
            cache[stamp] = _day(datetime.strptime(stamp, "%m/%d/%Y"))  # noqa: DTZ007
        customers_.append(row[1])
        items.append(row[5])
        days.append(cache[stamp])
    return Purchases(np.asarray(customers_), np.asarray(items), np.asarray(days))


def ta_feng_products() -> list[ProductFacts]:
    """Ta-Feng's products as a catalogue: the product subclass as the category (under its
    first three digits), the unit price of the first sale."""
    products: dict[str, ProductFacts] = {}
    for row in _ta_feng_rows():
        sku, subclass, amount = row[5], row[4], max(int(row[6]), 1)
        if sku not in products:
            products[sku] = ProductFacts(
                sku=sku,
                name=f"Ta-Feng {sku}",
                category_path=f"{subclass[:3]}/{subclass}",
                price_minor=int(row[8]) * 100 // amount,
                cost_minor=int(row[7]) * 100 // amount,
                country="TW",
            )
    return list(products.values())


def _online_retail_rows() -> Any:
    with gzip.open(DATA / "online-retail" / "online_retail.csv.gz", "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            # Purchases by known customers of real products: no cancellations, no postage,
            # discount or manual lines.
            if not row["CustomerID"] or row["InvoiceNo"].startswith("C"):
                continue
            if int(row["Quantity"]) <= 0 or not any(c.isdigit() for c in row["StockCode"]):
                continue
            yield row


def load_online_retail() -> Purchases:
    customers_, items, days = [], [], []
    for row in _online_retail_rows():
        moment = datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007
        customers_.append(row["CustomerID"])
        items.append(row["StockCode"])
        days.append(_day(moment))
    return Purchases(np.asarray(customers_), np.asarray(items), np.asarray(days))


def online_retail_products() -> list[ProductFacts]:
    """Online Retail's products as it sells them: a description and a price, and one category
    for everything (the catalogue of a shop without a taxonomy)."""
    products: dict[str, ProductFacts] = {}
    for row in _online_retail_rows():
        if row["StockCode"] not in products:
            price = round(float(row["UnitPrice"]) * 100)
            products[row["StockCode"]] = ProductFacts(
                sku=row["StockCode"],
                name=(row["Description"] or row["StockCode"]).strip()[:200],
                category_path="Gifts",
                price_minor=price,
                cost_minor=price // 2,
            )
    return list(products.values())


@dataclass(frozen=True)
class Dataset:
    name: str
    load: Callable[[], Purchases]
    products: Callable[[], list[ProductFacts]]
    cutoff: datetime
    stop: datetime

    @property
    def window(self) -> float:
        return _day(self.stop) - _day(self.cutoff)


DATASETS = {
    # The protocol: train before 2001-02-01, test on February.
    "ta-feng": Dataset(
        "ta-feng",
        load_ta_feng,
        ta_feng_products,
        datetime(2001, 2, 1, tzinfo=UTC),
        datetime(2001, 3, 1, tzinfo=UTC),
    ),
    # The last three months (to 2011-12-09) against the nine before.
    "online-retail": Dataset(
        "online-retail",
        load_online_retail,
        online_retail_products,
        datetime(2011, 9, 10, tzinfo=UTC),
        datetime(2011, 12, 10, tzinfo=UTC),
    ),
}


def _model_grids(
    new_only: bool,
) -> dict[str, tuple[Callable[..., Recommender], list[dict[str, Any]]]]:
    """Light tuning: a handful of values per model's main knobs."""
    from rapport.recommend.next_basket import TIFUKNN, UPCF

    grids: dict[str, tuple[Callable[..., Recommender], list[dict[str, Any]]]] = {
        "popularity": (Popularity, grid(window_days=[30.0])),
        "item_knn": (
            ItemKNN,
            grid(
                neighbours=[50, 200],
                shrink=[0.0, 20.0],
                half_life_days=[30.0, 1e6],
                self_weight=[0.0] if new_only else [0.0, 1.0],
            ),
        ),
        "als": (ALS, grid(factors=[64, 128], regularization=[0.05, 1.0], alpha=[1.0, 5.0])),
        "ease": (EASE, grid(l2=[100.0, 500.0, 2000.0], max_items=[6000])),
        # For new items only the neighbours count (the customer's own items are masked), so
        # alpha, which weighs them against the neighbours, changes nothing there.
        "tifu_knn": (TIFUKNN, TIFU_GRID_NEW if new_only else TIFU_GRID),
        "up_cf": (UPCF, UPCF_GRID_NEW if new_only else UPCF_GRID),
    }
    if not new_only:
        grids["top_frequency"] = (
            PersonalFrequency,
            grid(half_life_days=[14.0, 60.0, 1e6], repeat_power=[0.0]),
        )
    return grids


# The grids the implementations' checks on both datasets recommend (no decay often wins when
# the target is a whole month's items; the new-items protocol favours more, closer neighbours).
TIFU_GRID = grid(
    group_size=[3, 7],
    within_decay=[0.9, 1.0],
    group_decay=[0.7, 1.0],
    neighbours=[300],
    alpha=[0.7],
)
TIFU_GRID_NEW = grid(
    group_size=[7],
    within_decay=[0.9],
    group_decay=[0.7, 1.0],
    neighbours=[100, 300],
    metric=["euclidean", "cosine"],
    alpha=[0.7],
)
UPCF_GRID = grid(recency=[5, 1000], alpha=[0.25, 0.75], q=[1.0, 5.0], neighbours=[300])
UPCF_GRID_NEW = grid(recency=[1, 5, 1000], alpha=[0.25, 0.75], q=[1.0], neighbours=[100, 300])
PROTOCOLS = {False: "home", True: "discover"}  # new_only -> the placement that serves it


@dataclass
class Scored:
    """One model on one protocol: the means, and each test customer's Recall@20."""

    metrics: dict[str, float]
    each: np.ndarray


def run_baselines(
    dataset: Dataset, purchases: Purchases, *, new_only: bool, log: Callable[[str], None]
) -> tuple[Split, dict[str, Scored]]:
    cutoff, stop = _day(dataset.cutoff), _day(dataset.stop)
    validation = split(
        purchases.before(cutoff), cutoff=cutoff - dataset.window, stop=cutoff, new_only=new_only
    )
    test = split(purchases, cutoff=cutoff, stop=stop, new_only=new_only)
    log(
        f"{dataset.name}{' new items' if new_only else ''}: {len(test.users):,} test customers, "
        f"{test.train.shape[1]:,} items, {len(test.train.user):,} training purchases"
    )
    # Imported here: bench/recommend_serve.py imports this module's loaders, and
    # bench/before_after.py runs it against code from before these existed.
    from rapport.recommend.evaluation import recall_each

    results: dict[str, Scored] = {}
    for name, (build_model, candidates) in _model_grids(new_only).items():
        tuned = tune(build_model, candidates, validation)
        model = build_model(**tuned.params)
        started = time.perf_counter()
        model.fit(test.train)
        train_s = time.perf_counter() - started
        results[name] = Scored(
            {**evaluate(model, test), "train_s": train_s}, recall_each(model, test)
        )
        log(f"  {name:14} {tuned.params} -> {_rounded(results[name].metrics)}")
    return test, results


def weighing_bound(
    dataset: Dataset, test: Split, *, log: Callable[[str], None]
) -> dict[bool, float]:
    """Recall@20 of the best weighing of the served blend's parts chosen on the test customers
    themselves (new_only -> figure): about how far weights could take the blend."""
    from rapport.recommend import tuning
    from rapport.recommend.algorithms import PARTS, Blend

    started = time.perf_counter()
    blend = Blend(**{**recommend.DEFAULT_BLEND, **dict.fromkeys(PARTS, 1.0)}).fit(test.train)
    window = tuning.Window(
        train=test.train,
        cutoff=_day(dataset.cutoff),
        days=dataset.window,
        users=test.users,
        targets=test.targets,
    )
    found = tuning.weighing_bound(blend, window)
    for protocol, result in found.items():
        log(f"  weighing bound, {protocol}: {result.served:.4f} with {result.weights}")
    log(f"  weighing bound in {time.perf_counter() - started:.0f} s")
    return {new_only: found[tuning_protocol].served for new_only, tuning_protocol in BOUND.items()}


BOUND = {False: "repeat", True: "discover"}  # new_only -> the tuning protocol


def import_shop(url: str, products: list[ProductFacts], external_ids: list[str]) -> dict[str, str]:
    """The catalogue and the customers (consenting to personalisation) in a Rapport
    database, through the domains' own verbs. Returns Rapport's customer id per dataset id."""
    with open_session(url) as db:
        for start in range(0, len(products), 1000):
            catalog.upsert_products(
                db,
                products=[
                    catalog.ProductUpsert(
                        sku=p.sku,
                        name=p.name,
                        category_path=p.category_path,
                        price_minor=p.price_minor,
                        cost_minor=min(p.cost_minor, p.price_minor),
                        currency="EUR",
                        country_of_origin=p.country,
                    )
                    for p in products[start : start + 1000]
                ],
            )
        for start in range(0, len(external_ids), 5000):
            customers.import_customers(
                db,
                customers=[
                    customers.ImportedCustomer(
                        external_id=f"bench-{c}",
                        email=None,
                        first_name=None,
                        last_name=None,
                        locale="en",
                        home_city=None,
                        home_latitude=None,
                        home_longitude=None,
                        consents={"personalization": True},
                    )
                    for c in external_ids[start : start + 5000]
                ],
            )
        ids = customers.customer_ids_by_external_id(
            db, external_ids=[f"bench-{c}" for c in external_ids]
        )
        db.commit()
    return {c: ids[f"bench-{c}"] for c in external_ids}


@dataclass
class Served:
    scored: dict[bool, Scored]  # new_only -> what the product served
    train_s: float
    peak_rss_mib: float
    metrics: dict[str, Any]  # what training measured on its own validation window


def run_served(
    dataset: Dataset,
    purchases: Purchases,
    tests: dict[bool, Split],
    *,
    log: Callable[[str], None],
    limit: int | None = None,
) -> Served:
    """Train as the product trains and ask the recommendation verb for every test customer."""
    cutoff = _day(dataset.cutoff)
    history = purchases.before(cutoff)
    products = dataset.products()
    with tempfile.TemporaryDirectory(prefix="rapport-eval-") as tmp:
        workdir = Path(tmp)
        with sqlite_database(workdir, "eval") as url:
            started = time.perf_counter()
            ids = import_shop(url, products, sorted(set(history.customers.tolist())))
            took = time.perf_counter() - started
            log(f"  catalogue and {len(ids):,} customers imported in {took:.0f} s")
            lines = [
                Purchase(
                    basket=f"{customer}-{int(day)}",
                    customer_id=ids[customer],
                    sku=str(sku),
                    at=datetime.fromtimestamp(day * DAY, tz=UTC),
                    channel="store",
                )
                for customer, sku, day in zip(
                    history.customers.tolist(),
                    history.items.tolist(),
                    history.days.tolist(),
                    strict=True,
                )
            ]
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            started = time.perf_counter()
            bundle = build(
                lines,
                products,
                version="eval",
                now=dataset.cutoff,
                blend_params=recommend.DEFAULT_BLEND,
            )
            train_s = time.perf_counter() - started
            peak = max(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            log(f"  trained in {train_s:.1f} s: {json.dumps(bundle.metrics)}")
            directory = recommend.models_directory(workdir)
            bundle.save(directory / "eval.npz")
            recommend.make_current(directory, "eval")
            scored = {}
            for new_only, test in tests.items():
                started = time.perf_counter()
                scored[new_only] = _served_scores(
                    url, workdir, test, ids, PROTOCOLS[new_only], limit=limit
                )
                took = time.perf_counter() - started
                figures = _rounded(scored[new_only].metrics)
                log(f"  {'rapport':14} {PROTOCOLS[new_only]} -> {figures} ({took:.0f} s)")
    return Served(scored, train_s, peak, bundle.metrics)


def _served_scores(
    url: str,
    workdir: Path,
    test: Split,
    ids: dict[str, str],
    placement: str,
    *,
    limit: int | None,
) -> Scored:
    item_of = {sku: i for i, sku in enumerate(test.train.items)}
    discounts = 1.0 / np.log2(np.arange(2, 12))
    each = np.zeros(len(test.users), dtype=np.float64)
    at10 = np.zeros(len(test.users), dtype=np.float64)
    ndcg = np.zeros(len(test.users), dtype=np.float64)
    shown: set[int] = set()
    count = len(test.users) if limit is None else min(limit, len(test.users))
    with open_session(url) as db:
        for row in range(count):
            customer = test.train.users[int(test.users[row])]
            answer = recommend.recommend(
                db,
                request=recommend.Request(placement=placement, customer_id=ids[customer], limit=20),
                data_dir=workdir,
            )
            # Items the test split never saw cannot be targets; -1 never matches one.
            ranked = np.asarray([item_of.get(i.sku, -(10**9)) for i in answer.items], np.int64)
            target = test.targets[row]
            found = np.isin(ranked, target)
            each[row] = found[:20].sum() / len(target)
            at10[row] = found[:10].sum() / len(target)
            ideal = discounts[: min(len(target), 10)].sum()
            ndcg[row] = float((found[:10] * discounts[: len(found[:10])]).sum() / ideal)
            shown.update(int(i) for i in ranked[:10] if i >= 0)
            db.rollback()
    return Scored(
        {
            "recall@10": float(at10[:count].mean()),
            "recall@20": float(each[:count].mean()),
            "ndcg@10": float(ndcg[:count].mean()),
            "coverage@10": len(shown) / max(test.train.shape[1], 1),
            "train_s": 0.0,
        },
        each[:count],
    )


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items()}


# The bars: Recall@20 at least this much above the best baseline.
GOALS = {False: 0.03, True: 0.10}


def _verdict(results: dict[str, Scored], new_only: bool, bound: float) -> dict[str, Any]:
    from rapport.recommend.evaluation import paired_interval

    served = results["rapport"]
    baselines = {k: v for k, v in results.items() if k != "rapport"}
    best = max(baselines, key=lambda k: baselines[k].metrics["recall@20"])
    n = len(served.each)
    mean, low, high = paired_interval(served.each, baselines[best].each[:n])
    reference = float(baselines[best].each[:n].mean())
    lift = mean / reference if reference else 0.0
    return {
        "best_baseline": best,
        "best_baseline_recall@20": round(baselines[best].metrics["recall@20"], 4),
        "rapport_recall@20": round(served.metrics["recall@20"], 4),
        "lift": round(lift, 4),
        "difference": round(mean, 4),
        "difference_95": [round(low, 4), round(high, 4)],
        "goal_lift": GOALS[new_only],
        "goal_met": lift >= GOALS[new_only],
        "customers": n,
        "weighing_bound_recall@20": round(bound, 4),
        "weighing_bound_lift": round(bound / baselines[best].metrics["recall@20"] - 1, 4),
    }


def _table(title: str, results: dict[str, Scored], verdict: dict[str, Any]) -> str:
    lines = [
        f"### {title}",
        "",
        "| model | Recall@10 | Recall@20 | NDCG@10 | coverage@10 | train s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, scored in results.items():
        m = scored.metrics
        lines.append(
            f"| {name} | {m['recall@10']:.4f} | {m['recall@20']:.4f} | {m['ndcg@10']:.4f} "
            f"| {m['coverage@10']:.3f} | {m['train_s']:.1f} |"
        )
    low, high = verdict["difference_95"]
    lines += [
        "",
        f"rapport against the best baseline ({verdict['best_baseline']}, Recall@20 "
        f"{verdict['best_baseline_recall@20']:.4f}) on the same {verdict['customers']:,} "
        f"customers: {verdict['lift']:+.1%} (difference {verdict['difference']:+.4f}, paired 95% "
        f"interval {low:+.4f} to {high:+.4f}); goal {verdict['goal_lift']:+.0%}: "
        f"{'met' if verdict['goal_met'] else 'NOT met'}.",
        "",
        f"The best weights a search finds for the blend's parts on these test customers "
        f"themselves: Recall@20 {verdict['weighing_bound_recall@20']:.4f} "
        f"({verdict['weighing_bound_lift']:+.1%} against {verdict['best_baseline']}).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="serve only the first 1,000 test customers (baselines still score all of them)",
    )
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"no real data at {DATA}: this benchmark needs ../shared/data beside the checkout")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    headline: dict[str, Any] = {"verdict": {}, "train_s": {}, "training_peak_rss_mib": {}}
    tables = []
    for name in args.datasets.split(","):
        dataset = DATASETS[name]
        started = time.perf_counter()
        purchases = dataset.load()
        log(
            f"{name}: {len(purchases.days):,} purchase lines read "
            f"in {time.perf_counter() - started:.1f}s"
        )
        tests: dict[bool, Split] = {}
        baselines: dict[bool, dict[str, Scored]] = {}
        for new_only in (False, True):
            tests[new_only], baselines[new_only] = run_baselines(
                dataset, purchases, new_only=new_only, log=log
            )
        bound = weighing_bound(dataset, tests[False], log=log)
        served = run_served(dataset, purchases, tests, log=log, limit=1000 if args.quick else None)
        headline["train_s"][name] = round(served.train_s, 1)
        headline["training_peak_rss_mib"][name] = round(served.peak_rss_mib)
        for new_only in (False, True):
            key = f"{name}/new-items" if new_only else name
            results = {**baselines[new_only], "rapport": served.scored[new_only]}
            results["rapport"].metrics["train_s"] = served.train_s
            verdict = _verdict(results, new_only, bound[new_only])
            headline[key] = {model: _rounded(s.metrics) for model, s in results.items()}
            headline["verdict"][key] = verdict
            title = f"{name}, {'only items new to the customer' if new_only else 'repeats allowed'}"
            tables.append(_table(title, results, verdict))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\n".join(tables))
    print(f"Peak memory (whole run): {peak_mib:,.0f} MiB\n")
    print(json.dumps({**headline, "peak_rss_mib": round(peak_mib)}))


if __name__ == "__main__":
    main()
