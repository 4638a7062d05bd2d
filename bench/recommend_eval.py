"""Recommendation quality on real retail data: Rapport's blend against the usual baselines.

    .venv/bin/python bench/recommend_eval.py [--datasets ta-feng,online-retail]

For each dataset in ../shared/data that has customer and item ids (Ta-Feng, Online Retail) it
trains on the past and predicts each customer's distinct items of the next period, under two
protocols: repeats allowed, and only items new to the customer. Every model, the baselines
included, is lightly tuned on a validation window carved from the end of the training period
(same length as the test window), then refitted on the whole training period and scored once on
the test period. Prints one Markdown table per dataset and protocol, then one JSON line:
``{"<dataset>": {"<model>": {"recall@10", "recall@20", "ndcg@10", "coverage@10", "train_s"}}}``
(dataset keys carry the protocol: ``ta-feng`` and ``ta-feng/new-items``).
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
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rapport.recommend.algorithms import ALS, EASE, Blend, ItemKNN, PersonalFrequency, Popularity
from rapport.recommend.base import Recommender
from rapport.recommend.evaluation import (
    Purchases,
    Split,
    evaluate,
    grid,
    split,
    tune,
    tune_weights,
)

try:
    from rapport.recommend.interactions import Interactions
except ImportError:  # the code before issue 15 (bench/before_after.py measures it too)
    from rapport.recommend.data import Interactions  # type: ignore[import-not-found,no-redef]

# The shared data sets live beside the checkout (../shared/data); RAPPORT_BENCH_DATA names
# another place (a clone elsewhere).
DATA = Path(
    os.environ.get("RAPPORT_BENCH_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
DAY = 86_400.0


def _day(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() / DAY


def load_ta_feng() -> Purchases:
    customers, items, days = [], [], []
    with zipfile.ZipFile(DATA / "ta-feng" / "ta_feng.csv.zip") as archive:
        name = archive.namelist()[0]
        with archive.open(name) as raw:
            reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig"))
            next(reader)
            cache: dict[str, float] = {}
            for row in reader:
                stamp = row[0]
                if stamp not in cache:
                    cache[stamp] = _day(datetime.strptime(stamp, "%m/%d/%Y"))  # noqa: DTZ007
                customers.append(row[1])
                items.append(row[5])
                days.append(cache[stamp])
    return Purchases(np.asarray(customers), np.asarray(items), np.asarray(days))


def load_online_retail() -> Purchases:
    customers, items, days = [], [], []
    with gzip.open(DATA / "online-retail" / "online_retail.csv.gz", "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            # Purchases by known customers of real products: no cancellations, no postage,
            # discount or manual lines.
            if not row["CustomerID"] or row["InvoiceNo"].startswith("C"):
                continue
            if int(row["Quantity"]) <= 0 or not any(c.isdigit() for c in row["StockCode"]):
                continue
            moment = datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007
            customers.append(row["CustomerID"])
            items.append(row["StockCode"])
            days.append(_day(moment))
    return Purchases(np.asarray(customers), np.asarray(items), np.asarray(days))


@dataclass(frozen=True)
class Dataset:
    name: str
    load: Callable[[], Purchases]
    cutoff: datetime
    stop: datetime

    @property
    def window(self) -> float:
        return _day(self.stop) - _day(self.cutoff)


DATASETS = {
    # The protocol: train before 2001-02-01, test on February.
    "ta-feng": Dataset(
        "ta-feng", load_ta_feng, datetime(2001, 2, 1, tzinfo=UTC), datetime(2001, 3, 1, tzinfo=UTC)
    ),
    # The last three months (to 2011-12-09) against the nine before.
    "online-retail": Dataset(
        "online-retail",
        load_online_retail,
        datetime(2011, 9, 10, tzinfo=UTC),
        datetime(2011, 12, 10, tzinfo=UTC),
    ),
}


def _model_grids(
    new_only: bool,
) -> dict[str, tuple[Callable[..., Recommender], list[dict[str, Any]]]]:
    """Light tuning: a handful of values per model's main knobs."""
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
        "ease": (EASE, grid(l2=[100.0, 500.0, 2000.0])),
    }
    if not new_only:
        grids["top_frequency"] = (
            PersonalFrequency,
            grid(half_life_days=[14.0, 60.0, 1e6], repeat_power=[0.0]),
        )
    return grids


def _blend_start(
    new_only: bool, best: dict[str, dict[str, Any]], validation: dict[str, float]
) -> Blend:
    """The blend reuses the tuned baselines' settings for its parts and starts as the best of
    them on validation (so tuning can only add to it); then only how much each part counts is
    tuned (one fit, many weighings)."""
    knn, ease, als = best["item_knn"], best["ease"], best["als"]
    start = max(("knn", "ease", "als"), key=lambda part: validation[_BASELINE_OF[part]])
    weights = {part: 1.0 if part == start else 0.0 for part in ("knn", "ease", "als")}
    if not new_only:
        weights = dict.fromkeys(weights, 0.0)
    model = Blend(
        own=0.0 if new_only else 1.0,
        popular=0.0,
        neighbours=knn["neighbours"],
        shrink=knn["shrink"],
        neighbour_half_life_days=knn["half_life_days"],
        l2=ease["l2"],
        factors=als["factors"],
        regularization=als["regularization"],
        alpha=als["alpha"],
        half_life_days=best.get("top_frequency", {}).get("half_life_days", 60.0),
        # Every part is fitted once; the weights below decide how much each counts.
        knn=1.0,
        ease=1.0,
        als=1.0,
    )
    model.params.update(weights)
    return model


_BASELINE_OF = {"knn": "item_knn", "ease": "ease", "als": "als"}


BLEND_AXES: dict[str, list[float]] = {
    "knn": [0.0, 0.1, 0.25, 0.5, 1.0],
    "ease": [0.0, 0.1, 0.25, 0.5, 1.0],
    "als": [0.0, 0.1, 0.25, 0.5],
    "popular": [0.0, 0.05, 0.1, 0.3],
}


def run_protocol(
    dataset: Dataset, purchases: Purchases, *, new_only: bool, log: Callable[[str], None]
) -> dict[str, dict[str, float]]:
    cutoff, stop = _day(dataset.cutoff), _day(dataset.stop)
    validation = split(
        purchases.before(cutoff), cutoff=cutoff - dataset.window, stop=cutoff, new_only=new_only
    )
    test = split(purchases, cutoff=cutoff, stop=stop, new_only=new_only)
    log(
        f"{dataset.name}{' new items' if new_only else ''}: {len(test.users):,} test customers, "
        f"{test.train.shape[1]:,} items, {len(test.train.user):,} training purchases"
    )
    results: dict[str, dict[str, float]] = {}
    tuned_params: dict[str, dict[str, Any]] = {}
    validation_recall: dict[str, float] = {}
    for name, (build, candidates) in _model_grids(new_only).items():
        tuned = tune(build, candidates, validation)
        tuned_params[name] = tuned.params
        validation_recall[name] = tuned.validation["recall@20"]
        results[name] = _final(build(**tuned.params), test)
        log(f"  {name:14} {tuned.params} -> {results[name]}")
    axes: dict[str, Sequence[Any]] = dict(BLEND_AXES)
    if not new_only:
        axes["repeat_power"] = [0.0, 0.5, 1.0]
    start = _blend_start(new_only, tuned_params, validation_recall)
    blend = tune_weights(_fitted(start, validation.train), axes, validation, sample=6000, rounds=3)
    final = Blend(**blend.params)
    results["rapport"] = _final(final, test)
    log(f"  {'rapport':14} {blend.params} -> {results['rapport']}")
    return results


def _fitted(model: Blend, data: Interactions) -> Blend:
    weights = {part: model.params[part] for part in ("knn", "ease", "als")}
    model.params.update(knn=1.0, ease=1.0, als=1.0)
    model.fit(data)
    model.params.update(weights)
    return model


def _final(model: Recommender, test: Split) -> dict[str, float]:
    started = time.perf_counter()
    model.fit(test.train)
    train_s = time.perf_counter() - started
    return {**evaluate(model, test), "train_s": train_s}


def _table(title: str, results: dict[str, dict[str, float]]) -> str:
    best_baseline = max(v["recall@20"] for k, v in results.items() if k != "rapport")
    lines = [
        f"### {title}",
        "",
        "| model | Recall@10 | Recall@20 | NDCG@10 | coverage@10 | train s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in results.items():
        lines.append(
            f"| {name} | {m['recall@10']:.4f} | {m['recall@20']:.4f} | {m['ndcg@10']:.4f} "
            f"| {m['coverage@10']:.3f} | {m['train_s']:.1f} |"
        )
    verdict = "beats" if results["rapport"]["recall@20"] > best_baseline else "does NOT beat"
    lines += ["", f"rapport {verdict} the best baseline on Recall@20 ({best_baseline:.4f}).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"no real data at {DATA}: this benchmark needs ../shared/data beside the checkout")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    headline: dict[str, dict[str, dict[str, float]]] = {}
    tables = []
    for name in args.datasets.split(","):
        dataset = DATASETS[name]
        started = time.perf_counter()
        purchases = dataset.load()
        log(
            f"{name}: {len(purchases.days):,} purchase lines read "
            f"in {time.perf_counter() - started:.1f}s"
        )
        for new_only in (False, True):
            key = f"{name}/new-items" if new_only else name
            headline[key] = run_protocol(dataset, purchases, new_only=new_only, log=log)
            title = f"{name}, {'only items new to the customer' if new_only else 'repeats allowed'}"
            tables.append(_table(title, headline[key]))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\n".join(tables))
    print(f"Peak memory (whole run): {peak_mib:,.0f} MiB\n")
    rounded = {
        d: {m: {k: round(v, 4) for k, v in metrics.items()} for m, metrics in models.items()}
        for d, models in headline.items()
    }
    print(json.dumps({**rounded, "peak_rss_mib": round(peak_mib)}))


if __name__ == "__main__":
    main()
