"""Return risk on UCI Online Retail: the calibrated model against the customer's own history.

    .venv/bin/python bench/return_risk_eval.py

A basket is one non-cancelled invoice with a customer id (non-product codes such as POST,
postage, manual, discount and bank charges left out). It counts as returned when a cancellation
(invoice starting with "C") of the same customer, dated within 30 days after it, names one of
its products; the first such cancellation is when it came back (``returned_at``: from then
on, and not before, later baskets know of that return). Baskets placed before 2011-09-01
train; baskets from 2011-09-01 up to (not including) 2011-11-09 test, so every test label
window closes before the data ends on 2011-12-09. Features for every basket come from one
streaming history over all baskets in time order, so each sees only earlier baskets, only
returns made before it, and only labels (kept or returned) whose window had closed.

The data has no categories; the last word of a product's first description ("HOLDER", "BAG",
"MUG") stands in for one. Then the product's own path on the same file: imported by the
product's importer, trained by the nightly job's function as of the test window's start, and
the same test baskets scored with the product's labels; then ``rapport serve`` on that shop,
timing the first ``POST /v1/orders/return-risk`` (right after the start, while the server
reads the order history, and after it had time to), later ones, and the server's memory
(``--skip-served`` leaves this part out). Prints Markdown tables, then one JSON line of
headline figures.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import gzip
import json
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rapport.orders.return_risk import (
    Basket,
    BasketFeatures,
    BasketLine,
    HistoryBaseline,
    HistoryConfig,
    LabelledBasket,
    ReturnHistory,
    ReturnRiskModel,
)

DATA = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "online-retail"
    / "online_retail.csv.gz"
)
TEST_START = datetime(2011, 9, 1, tzinfo=UTC)
TEST_END = datetime(2011, 11, 9, tzinfo=UTC)
WINDOW = timedelta(days=30)
# Stock codes that are charges, fees or adjustments rather than goods.
NOT_PRODUCTS = frozenset(
    {"POST", "DOT", "M", "m", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"}
)


@dataclass
class Data:
    labelled: list[LabelledBasket]
    returned_units: dict[str, int]
    customers: int


def load(path: Path) -> Data:
    """Baskets with their 30-day return labels, and returned units per customer."""
    purchases: dict[str, list[tuple[str, int, int, datetime, str]]] = defaultdict(list)
    cancelled: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    returned_units: dict[str, int] = defaultdict(int)
    names: dict[str, str] = {}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            sku, customer = row["StockCode"], row["CustomerID"]
            if row["Description"].strip():
                names.setdefault(sku, row["Description"])
            if not customer or sku in NOT_PRODUCTS:
                continue
            placed = datetime.fromisoformat(row["InvoiceDate"]).replace(tzinfo=UTC)
            quantity = int(row["Quantity"])
            if row["InvoiceNo"].startswith("C"):
                cancelled[(customer, sku)].append(placed)
                returned_units[customer] += -quantity
                continue
            price = Decimal(row["UnitPrice"])
            if quantity <= 0 or price < 0:
                continue
            minor = int((price * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
            purchases[row["InvoiceNo"]].append((sku, quantity, minor, placed, customer))
    for times in cancelled.values():
        times.sort()

    labelled = []
    for invoice, lines in purchases.items():
        customer, placed = lines[0][4], min(line[3] for line in lines)
        basket = Basket(
            basket_id=invoice,
            customer_id=customer,
            placed_at=placed,
            lines=tuple(
                BasketLine(sku, category(names.get(sku, "")), quantity, minor)
                for sku, quantity, minor, _, _ in lines
            ),
            channel="web",
            currency="GBP",
        )
        when = {
            line.sku: found
            for line in basket.lines
            if (found := cancelled_within(cancelled, customer, line.sku, placed)) is not None
        }
        came_back = frozenset(when)
        labelled.append(
            LabelledBasket(basket, bool(came_back), came_back, min(when.values()) if when else None)
        )
    customers = len({item.basket.customer_id for item in labelled})
    return Data(labelled, dict(returned_units), customers)


def category(description: str) -> str:
    words = [word for word in description.upper().split() if word.isalpha() and len(word) > 2]
    return words[-1] if words else "OTHER"


def cancelled_within(
    cancelled: dict[tuple[str, str], list[datetime]], customer: str, sku: str, placed: datetime
) -> datetime | None:
    """When the customer first cancelled this SKU within 30 days of ``placed``, if they did."""
    times = cancelled.get((customer, sku))
    if not times:
        return None
    first = bisect.bisect_left(times, placed)
    if first < len(times) and times[first] <= placed + WINDOW:
        return times[first]
    return None


def served_on_imported_shop(path: Path, *, seed: int) -> dict[str, Any]:
    """The product's own path on the same file: imported as `rapport import transactions
    --preset online-retail` does (its return matching: each cancellation goes to the
    customer's latest purchase of the item in the 90 days before it), trained by the nightly
    job's function with the clock at the test window's start, and each test basket scored by
    that model from what was known before it. Labels are the product's: a return recorded
    against the order within 30 days."""
    # Imported here: the rest of this bench needs neither a database nor the importer.
    from ingest import sqlite_database

    from rapport.orders.importing import PRESETS, import_transactions_file
    from rapport.orders.return_risk import serving
    from rapport.platform import clock
    from rapport.platform.db import open_session

    with tempfile.TemporaryDirectory(prefix="rapport-return-risk-") as tmp:
        workdir = Path(tmp)
        with sqlite_database(workdir, "shop") as url:
            started = time.perf_counter()
            with open_session(url) as db:
                import_transactions_file(db, path, PRESETS["online-retail"])
            imported = time.perf_counter()
            clock.set_clock(lambda: TEST_START)
            try:
                with open_session(url) as db:
                    model_path = serving.train_return_risk(db, data_dir=workdir, seed=seed)
                    baskets = [
                        b for b in serving.labelled_baskets(db) if b.basket.placed_at < TEST_END
                    ]
            finally:
                clock.reset_clock()
            trained = time.perf_counter()
            if model_path is None:
                raise SystemExit("the imported shop had too little history to train on")
            model = ReturnRiskModel.load(model_path)
            first_test = next(b.basket for b in baskets if b.basket.placed_at >= TEST_START)
            serving_figures = served_over_http(url, workdir, first_test)
    rows = ReturnHistory.stream(baskets, model.history_config)
    test = [i for i, b in enumerate(baskets) if b.basket.placed_at >= TEST_START]
    closed = [i for i, b in enumerate(baskets) if b.basket.placed_at <= TEST_START - WINDOW]
    labels = np.array([baskets[i].returned for i in test], dtype=np.int64)
    scores = model.predict_features([rows[i] for i in test])
    baseline = HistoryBaseline().fit_features(
        [rows[i] for i in closed], [baskets[i].returned for i in closed]
    )
    report = model.report
    return {
        "model": metrics(labels, scores),
        "history_baseline": metrics(labels, baseline.predict_features([rows[i] for i in test])),
        "model_chosen": model.kind,
        "validation_pr_auc": round(report.candidate_pr_auc[model.kind], 4) if report else None,
        "test_baskets": len(test),
        "test_base_rate": round(float(labels.mean()), 4),
        "train_baskets": report.rows if report else 0,
        "train_base_rate": round(report.positives / report.rows, 4) if report else None,
        "import_s": round(imported - started, 1),
        "train_s": round(trained - imported, 1),
        "serving": serving_figures,
    }


SERVED_REQUESTS = 50
SETTLE_S = 10.0  # how long the second server is left to start before it is asked


def served_over_http(url: str, workdir: Path, basket: Basket) -> dict[str, float]:
    """``rapport serve`` on the imported shop (one process, no job worker), asked to score one
    test basket ``SERVED_REQUESTS`` times, twice: as soon as the server says it has started
    (the first request waits for the order history the process is reading), and on a new
    server left ``SETTLE_S`` seconds first (as a restart behind a load balancer would be). The
    server's resident memory is read before the first request and after the last (VmRSS,
    summed over its processes)."""
    import httpx
    from ingest import process_tree, serve

    from rapport.platform import service as platform
    from rapport.platform.db import open_session

    with open_session(url) as db:
        key = platform.create_api_key(db, name="bench", scopes=[platform.Scope.READ]).secret
    body = {
        "customer_id": basket.customer_id,
        "currency": basket.currency,
        "channel": basket.channel,
        "lines": [
            {"sku": line.sku, "quantity": line.quantity, "unit_price_minor": line.unit_price_minor}
            for line in basket.lines
        ],
    }

    def resident_mib(pid: int) -> float:
        total = 0
        for each in process_tree(pid):
            status = Path(f"/proc/{each}/status").read_text()
            total += int(next(r for r in status.splitlines() if r.startswith("VmRSS:")).split()[1])
        return total / 1024

    def asked(settle: float) -> tuple[list[float], float, float, float]:
        with serve(url, workdir, extra=["--processes", "1", "--no-worker"]) as server:
            time.sleep(settle)
            before = resident_mib(server.process.pid)
            seconds = []
            with httpx.Client(base_url=server.base_url, timeout=120) as client:
                for _ in range(SERVED_REQUESTS):
                    started = time.perf_counter()
                    answer = client.post(
                        "/v1/orders/return-risk",
                        json=body,
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    seconds.append(time.perf_counter() - started)
                    if answer.status_code != 200:
                        raise SystemExit(
                            f"return risk answered {answer.status_code}: {answer.text}"
                        )
            return seconds, before, resident_mib(server.process.pid), server.peak_rss_mb()

    at_once, before, after, peak = asked(0.0)
    settled, *_ = asked(SETTLE_S)
    later = np.array(at_once[1:]) * 1000
    return {
        "first_request_s": round(at_once[0], 2),
        "first_request_after_settling_s": round(settled[0], 3),
        "later_p50_ms": round(float(np.percentile(later, 50)), 1),
        "later_max_ms": round(float(later.max()), 1),
        "server_rss_before_mib": round(before),
        "server_rss_after_mib": round(after),
        "server_peak_rss_mib": round(peak),
    }


def metrics(labels: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]) -> dict[str, float]:
    return {
        "pr_auc": round(float(average_precision_score(labels, scores)), 4),
        "roc_auc": round(float(roc_auc_score(labels, scores)), 4),
        "brier": round(float(brier_score_loss(labels, scores)), 4),
    }


def logistic(train: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> Any:
    """Calibrated logistic regression on log-scaled features, for comparison."""
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    folds = StratifiedKFold(n_splits=5, shuffle=False)
    return CalibratedClassifierCV(pipeline, method="sigmoid", cv=folds).fit(train, labels)


def linear_matrix(rows: list[BasketFeatures]) -> np.ndarray[Any, Any]:
    matrix = np.array([row.vector() for row in rows], dtype=np.float64)
    # Every feature is a non-negative count, amount or rate: log1p tames the wholesalers.
    return np.log1p(np.nan_to_num(matrix, nan=0.0))


def customer_bootstrap(
    labels: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    customers: list[str],
    *,
    resamples: int = 200,
    seed: int = 0,
) -> np.ndarray[Any, Any]:
    """PR AUC on resamples of the test window that draw whole customers with replacement.

    Returns are concentrated in a few customers, so how much the figure would move on another
    window of the same shop is a question of which customers it holds, not which baskets.
    """
    names, owner = np.unique(np.asarray(customers), return_inverse=True)
    baskets = [np.flatnonzero(owner == number) for number in range(len(names))]
    generator = np.random.default_rng(seed)
    found = []
    for _ in range(resamples):
        drawn = np.concatenate([baskets[i] for i in generator.integers(0, len(names), len(names))])
        found.append(average_precision_score(labels[drawn], scores[drawn]))
    return np.asarray(found)


def deciles(
    labels: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]
) -> list[tuple[float, float]]:
    order = np.argsort(scores, kind="stable")
    return [
        (float(scores[part].mean()), float(labels[part].mean()))
        for part in np.array_split(order, 10)
    ]


def concentration(data: Data) -> dict[str, float]:
    """Share of returned baskets and returned units from the top 1% / 5% of customers."""
    per_customer: dict[str, int] = defaultdict(int)
    for item in data.labelled:
        per_customer[item.basket.customer_id] += item.returned
    baskets = sorted(per_customer.values(), reverse=True)
    units = sorted(data.returned_units.values(), reverse=True)
    total_baskets, total_units = sum(baskets), sum(units)
    found = {}
    for share in (0.01, 0.05):
        top = max(1, round(data.customers * share))
        found[f"baskets_top_{share:.0%}"] = sum(baskets[:top]) / total_baskets
        found[f"units_top_{share:.0%}"] = sum(units[:top]) / total_units
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--estimate-prior",
        action="store_true",
        help="estimate the SKU, family and category prior strengths (empirical Bayes) "
        "rather than use 10 pseudo-baskets",
    )
    parser.add_argument(
        "--skip-served",
        action="store_true",
        help="leave out the product's own path (import, nightly training, serving: about 40 s)",
    )
    arguments = parser.parse_args()

    started = time.perf_counter()
    data = load(arguments.data)
    in_scope = sorted(
        (item for item in data.labelled if item.basket.placed_at < TEST_END),
        key=lambda item: (item.basket.placed_at, item.basket.basket_id),
    )
    loaded = time.perf_counter()
    # What ReturnHistory.stream does, kept in the open to report the history's prior strengths.
    config = HistoryConfig(item_prior_strength=None) if arguments.estimate_prior else None
    history = ReturnHistory(config)
    rows = []
    for item in in_scope:
        rows.append(history.features(item.basket))
        history.record(item)
    streamed = time.perf_counter()

    train = [i for i, item in enumerate(in_scope) if item.basket.placed_at < TEST_START]
    test = [i for i, item in enumerate(in_scope) if item.basket.placed_at >= TEST_START]
    y = np.array([item.returned for item in in_scope], dtype=np.int64)
    train_rows, test_rows = [rows[i] for i in train], [rows[i] for i in test]
    y_train, y_test = y[train], y[test]

    model = ReturnRiskModel(history_config=config).fit_features(
        train_rows, y_train.tolist(), seed=arguments.seed
    )
    fitted = time.perf_counter()
    model_scores = model.predict_features(test_rows)
    scored = time.perf_counter()
    baseline = HistoryBaseline().fit_features(train_rows, y_train.tolist())
    baseline_scores = baseline.predict_features(test_rows)
    linear = logistic(linear_matrix(train_rows), y_train)
    linear_scores = linear.predict_proba(linear_matrix(test_rows))[:, 1]
    finished = time.perf_counter()

    results = {
        "model": metrics(y_test, model_scores),
        "history_baseline": metrics(y_test, baseline_scores),
        "logistic_regression": metrics(y_test, linear_scores),
    }
    lines = sum(len(item.basket.lines) for item in in_scope)
    print("## Return risk on UCI Online Retail\n")
    print(
        f"baskets: {len(in_scope):,} ({lines:,} lines); train {len(train):,} placed before "
        f"{TEST_START:%Y-%m-%d}; test {len(test):,} placed {TEST_START:%Y-%m-%d} to "
        f"{TEST_END - timedelta(days=1):%Y-%m-%d}"
    )
    print(f"base rate: train {y_train.mean():.3f}, test {y_test.mean():.3f}\n")
    print("| scorer | PR AUC | ROC AUC | Brier |")
    print("| --- | ---: | ---: | ---: |")
    report = model.report
    assert report is not None
    for name, label in (
        ("model", f"served model: {model.kind_label}, calibrated (ReturnRiskModel)"),
        ("history_baseline", "history baseline (HistoryBaseline)"),
        ("logistic_regression", "logistic regression, calibrated"),
    ):
        found = results[name]
        print(
            f"| {label} | {found['pr_auc']:.3f} | {found['roc_auc']:.3f} | {found['brier']:.4f} |"
        )
    print(
        f"| base rate (always predict it) | {y_test.mean():.3f} | 0.500 | "
        f"{float(y_test.mean() * (1 - y_test.mean())):.4f} |"
    )
    owners = [row.customer_id for row in test_rows]
    spread = customer_bootstrap(y_test, model_scores, owners, seed=arguments.seed)
    low, high = np.quantile(spread, [0.05, 0.95])
    print(
        "\nserved model's test PR AUC over 200 resamples of whole customers: "
        f"sd {spread.std():.3f}, 90% of resamples within {low:.3f} to {high:.3f}"
    )

    print(
        f"\nvalidation window from {report.validation_start} ({report.validation_rows:,} "
        f"baskets, {report.validation_positives:,} returned); calibrated candidates:"
    )
    print("\n| candidate | validation PR AUC | validation Brier |")
    print("| --- | ---: | ---: |")
    for name, value in report.candidate_pr_auc.items():
        chosen = " (chosen)" if name == report.model_chosen else ""
        print(f"| {name}{chosen} | {value:.3f} | {report.candidate_brier[name]:.4f} |")
    print("\nboosted trees, PR AUC by setting:")
    for key, value in report.validation_pr_auc.items():
        print(f"- {key}: {value:.3f}")
    brier = ", ".join(f"{name} {value:.4f}" for name, value in report.validation_brier.items())
    print(f"calibration by validation Brier: {brier} -> {report.calibration}")
    print(f"baseline prior strength: {baseline.prior_strength}")
    strengths = ", ".join(f"{name} {value:.1f}" for name, value in history.item_strengths.items())
    how = "estimated, as at the end of the test window" if arguments.estimate_prior else "fixed"
    print(f"item prior strengths ({how}): {strengths}")

    print("\n| decile | model predicted | observed | baseline predicted | observed |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for number, (ours, theirs) in enumerate(
        zip(deciles(y_test, model_scores), deciles(y_test, baseline_scores), strict=True), start=1
    ):
        print(f"| {number} | {ours[0]:.3f} | {ours[1]:.3f} | {theirs[0]:.3f} | {theirs[1]:.3f} |")

    print("\nreasons for the three riskiest test baskets:")
    for index in np.argsort(-model_scores, kind="stable")[:3]:
        row = test_rows[int(index)]
        reasons = "; ".join(model.explain_features(row))
        print(f"- {row.basket_id} ({model_scores[index]:.2f}): {reasons}")

    shares = concentration(Data(in_scope, data.returned_units, data.customers))
    print("\n| returns concentration | top 1% of customers | top 5% |")
    print("| --- | ---: | ---: |")
    print(f"| returned baskets | {shares['baskets_top_1%']:.3f} | {shares['baskets_top_5%']:.3f} |")
    print(f"| returned units | {shares['units_top_1%']:.3f} | {shares['units_top_5%']:.3f} |")

    print("\n| stage | seconds |")
    print("| --- | ---: |")
    print(f"| load CSV and label | {loaded - started:.1f} |")
    print(f"| stream features ({lines:,} lines) | {streamed - loaded:.1f} |")
    print(f"| fit model (tuning, calibration, refit) | {fitted - streamed:.1f} |")
    print(f"| score test baskets | {scored - fitted:.2f} |")
    print(f"| total | {finished - started:.1f} |\n")

    served = (
        None
        if arguments.skip_served
        else served_on_imported_shop(arguments.data, seed=arguments.seed)
    )
    if served is not None:
        print("### The same test window as the product serves it\n")
        print(
            "Imported by the product's importer (`--preset online-retail`; its return matching, "
            "not this bench's), trained by the nightly job's function as of "
            f"{TEST_START:%Y-%m-%d} ({served['train_baskets']:,} baskets, "
            f"{served['train_base_rate']:.1%} returned; {served['model_chosen']} chosen, "
            f"validation PR AUC {served['validation_pr_auc']:.3f}), each test basket scored "
            f"from what was known before it ({served['test_baskets']:,} baskets, "
            f"{served['test_base_rate']:.1%} returned). Import {served['import_s']:.0f} s, "
            f"training {served['train_s']:.0f} s.\n"
        )
        print("| scorer | PR AUC | ROC AUC | Brier |")
        print("| --- | ---: | ---: | ---: |")
        for name, label in (("model", "served model"), ("history_baseline", "history baseline")):
            found = served[name]
            print(
                f"| {label} | {found['pr_auc']:.3f} | {found['roc_auc']:.3f} | "
                f"{found['brier']:.4f} |"
            )
        http = served["serving"]
        print(
            f"\nServed over HTTP (`rapport serve --processes 1 --no-worker` on that shop, one test "
            f"basket posted to `/v1/orders/return-risk` {SERVED_REQUESTS} times):\n"
        )
        print("| figure | value |\n| --- | ---: |")
        print(
            "| first request, as soon as the server has started (waits for the history it is "
            f"reading) | {http['first_request_s']:.2f} s |"
        )
        print(
            f"| first request, {SETTLE_S:.0f} s after another server started | "
            f"{http['first_request_after_settling_s'] * 1000:.0f} ms |"
        )
        print(
            f"| later requests, median / slowest | {http['later_p50_ms']:.1f} / "
            f"{http['later_max_ms']:.1f} ms |"
        )
        print(
            f"| server resident memory before / after | {http['server_rss_before_mib']} / "
            f"{http['server_rss_after_mib']} MiB (peak {http['server_peak_rss_mib']}) |"
        )
        print()

    headline: dict[str, Any] = {key: results[key] for key in ("model", "history_baseline")}
    headline["logistic_regression"] = results["logistic_regression"]
    headline["model_chosen"] = report.model_chosen
    headline["pr_auc"] = results["model"]["pr_auc"]
    headline["pr_auc_customer_bootstrap_sd"] = round(float(spread.std()), 4)
    headline["validation_pr_auc"] = {
        name: round(value, 4) for name, value in report.candidate_pr_auc.items()
    }
    if served is not None:
        headline["served"] = served
    print(json.dumps({"online-retail": headline}))


if __name__ == "__main__":
    main()
