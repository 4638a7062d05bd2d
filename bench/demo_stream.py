"""Demo generator at scale: streams N customers' histories with bounded memory, and loads
customers into a fresh embedded database through the services.

    .venv/bin/python bench/demo_stream.py --customers 1000000 --load 100000

Prints a Markdown table, then one JSON line with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from rapport.demo.generator import DemoRetailer
from rapport.demo.loader import load_demo
from rapport.platform.db import open_session
from rapport.platform.migrations_runner import upgrade


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream(customers: int, seed: int) -> dict[str, float]:
    retailer = DemoRetailer(seed=seed, customers=customers)
    started = time.perf_counter()
    orders = lines = late = shipped = 0
    rss_at: dict[int, float] = {}
    checkpoints = {customers // 10, customers // 2, customers}
    for index, history in enumerate(retailer.histories(), start=1):
        orders += len(history.orders)
        for order in history.orders:
            lines += len(order.lines)
            if order.promised_delivery is not None:
                shipped += 1
                late += order.delivered_late
        if index in checkpoints:
            rss_at[index] = peak_rss_mib()
    elapsed = time.perf_counter() - started
    return {
        "customers": customers,
        "orders": orders,
        "order_lines": lines,
        "late_share": late / shipped if shipped else 0.0,
        "seconds": elapsed,
        "histories_per_second": customers / elapsed,
        "rss_mib_at_10pct": rss_at[customers // 10],
        "rss_mib_at_100pct": rss_at[customers],
    }


def load(customers: int, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        upgrade(url)
        started = time.perf_counter()
        with open_session(url) as db:
            summary = load_demo(db, retailer=DemoRetailer(seed=seed, customers=customers))
        elapsed = time.perf_counter() - started
    return {
        "customers": summary.customers,
        "seconds": elapsed,
        "customers_loaded_per_second": summary.customers / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--load", type=int, default=100_000, help="customers to load into SQLite")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    streamed = stream(args.customers, args.seed)
    loaded = load(args.load, args.seed)

    print("| measure | value |")
    print("| --- | ---: |")
    print(f"| customers streamed | {streamed['customers']:,} |")
    print(f"| orders / order lines | {streamed['orders']:,} / {streamed['order_lines']:,} |")
    print(f"| late share of shipped orders | {streamed['late_share']:.3f} |")
    print(f"| histories per second (1 core) | {streamed['histories_per_second']:,.0f} |")
    rss = f"{streamed['rss_mib_at_10pct']:.0f} / {streamed['rss_mib_at_100pct']:.0f}"
    print(f"| peak RSS after 10% / 100% (MiB) | {rss} |")
    print(f"| customers loaded into SQLite | {loaded['customers']:,} |")
    print(f"| customers loaded per second | {loaded['customers_loaded_per_second']:,.0f} |")
    print(
        json.dumps(
            {
                "customers_streamed": streamed["customers"],
                "histories_per_second": round(streamed["histories_per_second"]),
                "peak_rss_mib_at_10pct": round(streamed["rss_mib_at_10pct"]),
                "peak_rss_mib_at_100pct": round(streamed["rss_mib_at_100pct"]),
                "customers_loaded_per_second": round(loaded["customers_loaded_per_second"]),
            }
        )
    )


if __name__ == "__main__":
    main()
