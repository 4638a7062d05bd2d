"""Customer lifetime value on CDNOW: the published BG/NBD and Gamma-Gamma fits, and the holdout.

Fader, Hardie & Lee (2005) fit BG/NBD on the 2,357-customer CDNOW sample (every customer who
first bought in Q1 1997) over weeks 1-39, and report r 0.243, α 4.414, a 0.793, b 2.426
(log-likelihood -9582.4); their Gamma-Gamma fit on the 946 customers with a repeat purchase in
those weeks gives p 6.25, q 3.74, γ 15.44. This script rebuilds the calibration summary from
``CDNOW_sample.txt`` (several purchases on one day count once; the first purchase is not a
repeat), fits both models with ``rapport.orders.customer_value``, cross-checks against the
published summary file, and forecasts each customer's repeat purchases in weeks 40-78 against a
naive forecast (the customer's calibration rate, x / T, carried on).

With ``--scale N`` it also times a fit and the scoring on N simulated customers (BG/NBD data,
integer days), the size of a large retailer.

    python bench/clv_eval.py [--data ../shared/data/cdnow] [--scale 1000000]

Prints Markdown tables, then one JSON line:
``{"bgnbd": {...}, "gamma_gamma": {...}, "holdout_mae": ..., "naive_mae": ...}``.
"""

# ruff: noqa: RUF002, RUF003

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from rapport.orders.customer_value import (
    BgNbdParams,
    GammaGammaParams,
    PurchaseSummary,
    expected_average_spend,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    probability_alive,
    summarise_purchases,
    value_tiers,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow"
START = date(1997, 1, 1)
CALIBRATION_END = date(1997, 9, 30)  # end of week 39
HOLDOUT_END = date(1998, 6, 30)  # end of week 78
PUBLISHED = {
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "ll": -9582.4},
    "gamma_gamma": {"p": 6.25, "q": 3.74, "gamma": 15.44},
}


@dataclass(frozen=True)
class Transactions:
    customer: np.ndarray  # the sample's customer number (1..2357)
    day: np.ndarray  # days since 1997-01-01
    amount: np.ndarray  # dollars


@dataclass(frozen=True)
class Calibration:
    customers: np.ndarray
    summary: PurchaseSummary  # weeks, dollars
    holdout: np.ndarray  # repeat purchase days in weeks 40-78, row for row
    holdout_weeks: float


def _day(text: str) -> int:
    return (date(int(text[:4]), int(text[4:6]), int(text[6:8])) - START).days


def load_sample(data: Path = DATA) -> Transactions:
    """``CDNOW_sample.txt``: original id, sample id, date, CDs, dollars (no header)."""
    customers: list[int] = []
    days: list[int] = []
    amounts: list[float] = []
    with (data / "CDNOW_sample.txt").open() as lines:
        for line in lines:
            fields = line.split()
            if not fields:
                continue
            customers.append(int(fields[1]))
            days.append(_day(fields[2]))
            amounts.append(float(fields[4]))
    return Transactions(np.asarray(customers), np.asarray(days), np.asarray(amounts))


def calibrate(transactions: Transactions) -> Calibration:
    """Weeks 1-39 summarised per customer (weeks, dollars); weeks 40-78 counted."""
    end = (CALIBRATION_END - START).days
    holdout_end = (HOLDOUT_END - START).days
    customers, summary = summarise_purchases(
        transactions.customer,
        transactions.day,
        transactions.amount,
        end_day=float(end),
        unit_days=7.0,
    )
    later = (transactions.day > end) & (transactions.day <= holdout_end)
    # Purchase days in the holdout: distinct (customer, day) pairs.
    pairs = np.unique(np.stack([transactions.customer[later], transactions.day[later]]), axis=1)
    counts = np.bincount(pairs[0], minlength=int(customers.max()) + 1)
    return Calibration(
        customers=customers,
        summary=summary,
        holdout=counts[customers].astype(np.float64),
        holdout_weeks=(holdout_end - end) / 7.0,
    )


def published_summary(data: Path = DATA) -> PurchaseSummary:
    """The calibration summary as published (``cdnow_customers_summary_with_transactions``)."""
    with (data / "cdnow_customers_summary_with_transactions.csv").open() as rows:
        table = list(csv.DictReader(rows))
    column = {key: np.asarray([float(row[key]) for row in table]) for key in table[0]}
    return PurchaseSummary(
        frequency=column["x"], recency=column["t_x"], age=column["T"], monetary=column["zbar"]
    )


def fit(summary: PurchaseSummary) -> tuple[BgNbdParams, GammaGammaParams]:
    return (
        fit_bgnbd(summary.frequency, summary.recency, summary.age),
        fit_gamma_gamma(summary.frequency, summary.monetary),
    )


def holdout_errors(params: BgNbdParams, calibration: Calibration) -> dict[str, float]:
    """Per-customer mean absolute error of the holdout forecasts, and the totals."""
    s = calibration.summary
    model = expected_purchases(params, calibration.holdout_weeks, s.frequency, s.recency, s.age)
    naive = s.frequency / s.age * calibration.holdout_weeks
    actual = calibration.holdout
    return {
        "holdout_mae": float(np.mean(np.abs(model - actual))),
        "naive_mae": float(np.mean(np.abs(naive - actual))),
        "actual_total": float(actual.sum()),
        "model_total": float(model.sum()),
        "naive_total": float(naive.sum()),
        "model_rmse": float(np.sqrt(np.mean((model - actual) ** 2))),
        "naive_rmse": float(np.sqrt(np.mean((naive - actual) ** 2))),
    }


def simulate(n: int, *, seed: int = 7) -> PurchaseSummary:
    """N customers drawn from BG/NBD (r 0.25, α 30 days, a 0.8, b 2.5), first purchases spread
    over three years before today, in whole days; spend Gamma-Gamma (p 6, q 4, γ 3000 minor)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(1, 3 * 365, size=n).astype(np.float64)
    rate = rng.gamma(0.25, 1.0 / 30.0, size=n)
    dropout = rng.beta(0.8, 2.5, size=n)
    arrivals = rng.poisson(rate * age)
    survives = rng.geometric(dropout)  # repeat purchases up to and including the last one
    x = np.minimum(arrivals, survives)
    # The x-th of `arrivals` uniform purchase times on (0, T]: T · Beta(x, arrivals − x + 1).
    safe_x = np.maximum(x, 1)
    recency = np.where(x > 0, age * rng.beta(safe_x, np.maximum(arrivals - safe_x + 1, 1)), 0.0)
    recency = np.minimum(np.ceil(recency), age)
    nu = rng.gamma(4.0, 1.0 / 3000.0, size=n)
    monetary = np.where(x > 0, rng.gamma(6.0 * safe_x, 1.0 / (nu * safe_x)), 0.0)
    return PurchaseSummary(
        frequency=x.astype(np.float64), recency=recency, age=age, monetary=monetary
    )


def scale_check(n: int) -> dict[str, float]:
    summary = simulate(n)
    started = time.perf_counter()
    bgnbd, spend = fit(summary)
    fitted = time.perf_counter()
    x, t_x, age = summary.frequency, summary.recency, summary.age
    year = expected_purchases(bgnbd, 365, x, t_x, age)
    expected_purchases(bgnbd, 90, x, t_x, age)
    probability_alive(bgnbd, x, t_x, age)
    value = year * expected_average_spend(spend, x, summary.monetary)
    value_tiers(value)
    scored = time.perf_counter()
    return {
        "customers": float(n),
        "fit_s": fitted - started,
        "score_s": scored - fitted,
        "r": bgnbd.r,
        "alpha": bgnbd.alpha,
        "a": bgnbd.a,
        "b": bgnbd.b,
        "p": spend.p,
        "q": spend.q,
        "gamma": spend.gamma,
    }


def run(data: Path = DATA) -> dict[str, object]:
    calibration = calibrate(load_sample(data))
    started = time.perf_counter()
    bgnbd, spend = fit(calibration.summary)
    seconds = time.perf_counter() - started
    errors = holdout_errors(bgnbd, calibration)
    cross_bgnbd, cross_spend = fit(published_summary(data))
    return {
        "bgnbd": {
            "r": round(bgnbd.r, 4),
            "alpha": round(bgnbd.alpha, 4),
            "a": round(bgnbd.a, 4),
            "b": round(bgnbd.b, 4),
            "ll": round(bgnbd.log_likelihood, 2),
        },
        "gamma_gamma": {
            "p": round(spend.p, 4),
            "q": round(spend.q, 4),
            "gamma": round(spend.gamma, 4),
        },
        "holdout_mae": round(errors["holdout_mae"], 4),
        "naive_mae": round(errors["naive_mae"], 4),
        "_details": {
            "customers": len(calibration.summary),
            "repeat_customers": int(np.count_nonzero(calibration.summary.frequency > 0)),
            "fit_seconds": seconds,
            "errors": errors,
            "published_summary_fit": {
                "r": cross_bgnbd.r,
                "alpha": cross_bgnbd.alpha,
                "a": cross_bgnbd.a,
                "b": cross_bgnbd.b,
                "ll": cross_bgnbd.log_likelihood,
                "p": cross_spend.p,
                "q": cross_spend.q,
                "gamma": cross_spend.gamma,
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--scale", type=int, default=0, help="also time N simulated customers")
    args = parser.parse_args()
    if not (args.data / "CDNOW_sample.txt").exists():
        print(f"skipped: {args.data} has no CDNOW_sample.txt (needs ../shared/data/cdnow)")
        sys.exit(0)
    result = run(args.data)
    details = result.pop("_details")
    assert isinstance(details, dict)
    ours_b, ours_g = result["bgnbd"], result["gamma_gamma"]
    assert isinstance(ours_b, dict)
    assert isinstance(ours_g, dict)
    cross = details["published_summary_fit"]
    print(
        f"CDNOW sample: {details['customers']:,} customers, {details['repeat_customers']:,} with "
        f"a repeat purchase in weeks 1-39; fit in {details['fit_seconds']:.2f} s\n"
    )
    print("| parameter | published | ours (from transactions) | ours (published summary) |")
    print("| --- | ---: | ---: | ---: |")
    for model, ours in (("bgnbd", ours_b), ("gamma_gamma", ours_g)):
        for key, published in PUBLISHED[model].items():
            print(f"| {model} {key} | {published} | {ours[key]:.3f} | {cross[key]:.3f} |")
    errors = details["errors"]
    print("\n| holdout, weeks 40-78 (per customer) | BG/NBD | naive (calibration rate) |")
    print("| --- | ---: | ---: |")
    print(f"| MAE | {errors['holdout_mae']:.3f} | {errors['naive_mae']:.3f} |")
    print(f"| RMSE | {errors['model_rmse']:.3f} | {errors['naive_rmse']:.3f} |")
    print(
        f"| total repeat purchases (actual {errors['actual_total']:.0f}) | "
        f"{errors['model_total']:.0f} | {errors['naive_total']:.0f} |"
    )
    if args.scale:
        scale = scale_check(args.scale)
        print("\n| simulated customers | fit (s) | score 90/365 days, p_alive, tiers (s) |")
        print("| ---: | ---: | ---: |")
        print(f"| {args.scale:,} | {scale['fit_s']:.1f} | {scale['score_s']:.1f} |")
    print()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
