"""Serving recommendations through the HTTP API with the model for the largest real dataset.

    .venv/bin/python bench/recommend_serve.py [--rate 300] [--seconds 30] [--processes 2]
    .venv/bin/python bench/recommend_serve.py --quick     # 500 customers, 5 s at 100/s

Loads Ta-Feng (817,741 lines, about 32,000 customers and 23,800 products) into a throw-away
SQLite database (customers consenting to personalisation, products with their subclass as the
category, one store with stock, 10% of products out of stock there), trains the model bundle
from its purchases, starts ``rapport serve --no-worker`` as a real subprocess on loopback (the
worker's nightly training would replace the model with one from the database's orders), then
sends GET
/v1/recommendations open-loop at ``--rate`` requests/s over 32 keep-alive connections: 50%
personal home pages, 20% similar items, 15% complements, 10% carts of three items, 5% store-bound
home pages. Latency counts from each request's scheduled time. ``--customers N`` keeps a sample
of N customers with their purchases and products (a smaller model, for smoke runs). Needs the
shared data sets (``../shared/data`` beside the checkout, or ``RAPPORT_BENCH_DATA``); SQLite only,
no PostgreSQL. Prints a Markdown table, then one JSON line: ``{"p99_ms", "requests_per_s", ...}``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import uvloop

# Started as a script, this folder is on sys.path: reuse the ingestion bench's helpers and the
# evaluation bench's Ta-Feng reader.
from ingest import open_loop, percentile, serve, sqlite_database
from recommend_eval import DATA, import_shop, load_ta_feng, ta_feng_products

from rapport.catalog import service as catalog
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.recommend import service as recommend

try:
    from rapport.recommend.trained_model import Purchase, build
except ImportError:  # the code before issue 15, which bench/before_after.py measures too
    from rapport.recommend.bundle import (  # type: ignore[import-not-found,no-redef]
        Purchase,
        build,
    )

STORE = "tafeng-1"
# --quick: a sample of the shop, a short run.
QUICK = {"customers": 500, "rate": 100.0, "seconds": 5.0}
MIX = (
    ("home", 0.50),
    ("product_similar", 0.20),
    ("product_complements", 0.15),
    ("cart", 0.10),
    ("home_store", 0.05),
)


def load_shop(
    database_url: str, workdir: Path, log: Callable[[str], None], sample: int | None = None
) -> tuple[list[str], list[str], float]:
    """Ta-Feng as a Rapport retailer, and its trained model as the one served. Returns the
    customer ids and SKUs to ask about. With ``sample``, only that many customers (drawn with
    a fixed seed), their purchases and the products they bought."""

    started = time.perf_counter()
    products = {p.sku: p for p in ta_feng_products()}
    purchases = load_ta_feng()
    external_ids = sorted(set(purchases.customers.tolist()))
    if sample is not None and sample < len(external_ids):
        external_ids = sorted(random.Random(3).sample(external_ids, sample))
        keep = np.isin(purchases.customers, external_ids)
        purchases = type(purchases)(
            purchases.customers[keep], purchases.items[keep], purchases.days[keep]
        )
        bought = set(purchases.items.tolist())
        products = {sku: facts for sku, facts in products.items() if sku in bought}
    facts = list(products.values())
    by_dataset_id = import_shop(database_url, facts, external_ids)
    with open_session(database_url) as db:
        catalog.upsert_stores(
            db,
            stores=[
                catalog.StoreUpsert(
                    store_id=STORE,
                    name="Ta-Feng warehouse",
                    city="Taipei",
                    address="Taipei",
                    country="TW",
                    latitude=25.03,
                    longitude=121.56,
                )
            ],
        )
        rng = random.Random(5)
        catalog.load_stock(
            db, levels=[(p.sku, STORE, 0 if rng.random() < 0.1 else 20) for p in facts]
        )
        db.commit()
    ids = {f"tafeng-{c}": customer_id for c, customer_id in by_dataset_id.items()}
    log(f"catalogue and {len(ids):,} customers loaded in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    lines = [
        Purchase(
            basket=f"{customer}-{int(day)}",
            customer_id=ids[f"tafeng-{customer}"],
            sku=str(sku),
            at=datetime.fromtimestamp(day * 86_400.0, tz=UTC),
            store_id=STORE,
            channel="store",
        )
        for customer, sku, day in zip(
            purchases.customers.tolist(),
            purchases.items.tolist(),
            purchases.days.tolist(),
            strict=True,
        )
    ]
    end = datetime.fromtimestamp(float(purchases.days.max()) * 86_400.0 + 86_400.0, tz=UTC)
    bundle = build(lines, facts, version="tafeng", now=end, blend_params=recommend.DEFAULT_BLEND)
    directory = recommend.models_directory(workdir)
    bundle.save(directory / "tafeng.npz")
    recommend.make_current(directory, "tafeng")
    train_s = time.perf_counter() - started
    size_mib = (directory / "tafeng.npz").stat().st_size / 2**20
    log(f"model trained in {train_s:.0f} s ({size_mib:.0f} MiB file)")
    return sorted(ids.values()), [p.sku for p in facts], train_s


def requests_for(
    customer_ids: list[str], skus: list[str], total: int, key: str, port: int
) -> list[bytes]:
    rng = random.Random(17)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    raw = []
    popular = skus
    for _ in range(total):
        kind = rng.choices(kinds, weights)[0]
        query: list[tuple[str, str]] = []
        if kind in ("home", "home_store"):
            query = [("placement", "home"), ("customer_id", rng.choice(customer_ids))]
            if kind == "home_store":
                query.append(("store_id", STORE))
        elif kind in ("product_similar", "product_complements"):
            query = [("placement", kind), ("item_id", rng.choice(popular))]
        else:
            query = [("placement", "cart"), *[("cart", rng.choice(popular)) for _ in range(3)]]
            query.append(("customer_id", rng.choice(customer_ids)))
        path = f"/v1/recommendations?{urlencode(query)}&limit=10"
        raw.append(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {key}\r\n\r\n"
            ).encode()
        )
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--customers", type=int, default=None, help="a sample of this many customers (all)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: " + ", ".join(f"--{key} {value}" for key, value in QUICK.items()),
    )
    if "--quick" in sys.argv[1:]:
        # Options given explicitly still win over the quick settings.
        parser.set_defaults(**QUICK)
    args = parser.parse_args()
    if not (DATA / "ta-feng").exists():
        sys.exit(
            f"no Ta-Feng data at {DATA / 'ta-feng'}: this benchmark needs ../shared/data "
            "(or RAPPORT_BENCH_DATA naming the data folder)"
        )

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="rapport-recommend-") as tmp:
        workdir = Path(tmp)
        with sqlite_database(workdir, "serve") as url:
            customer_ids, skus, train_s = load_shop(url, workdir, log, args.customers)
            train_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            with open_session(url) as db:
                key = platform.create_api_key(
                    db, name="bench read", scopes=[platform.Scope.READ]
                ).secret
            # No job worker: its nightly training (due at start) would retrain from this
            # database's orders (none: the model comes from the dataset) and replace the model.
            with serve(
                url, workdir, extra=["--processes", str(args.processes), "--no-worker"]
            ) as server:
                port = int(server.base_url.rsplit(":", 1)[1])
                warm = requests_for(customer_ids, skus, 200, key, port)
                total = int(args.rate * args.seconds)
                raw = requests_for(customer_ids, skus, total, key, port)
                try:
                    uvloop.run(open_loop("127.0.0.1", port, warm, 50.0))
                    latencies, statuses, elapsed = uvloop.run(
                        open_loop("127.0.0.1", port, raw, args.rate)
                    )
                except ConnectionError as error:
                    tail = server.log.read_text()[-12000:] if server.log else ""
                    sys.exit(f"the server dropped a connection ({error}); its log ends:\n{tail}")
                rss = server.peak_rss_mb()
    failures = [s for s in statuses if s != 200]
    figures = {
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
        "requests_per_s": len(latencies) / elapsed,
        "errors": len(failures),
        "server_rss_mib": rss,
        "train_s": train_s,
        "train_peak_rss_mib": train_rss,
    }
    print("| figure | value |\n|---|---:|")
    print(f"| requests sent | {len(latencies):,} at {args.rate:.0f}/s over {args.seconds:.0f} s |")
    print(f"| answered per second | {figures['requests_per_s']:.0f} |")
    print(f"| p50 | {figures['p50_ms']:.1f} ms |")
    print(f"| p99 | {figures['p99_ms']:.1f} ms |")
    print(f"| max | {figures['max_ms']:.1f} ms |")
    print(f"| non-200 answers | {len(failures)} |")
    print(f"| server peak RSS ({args.processes} processes) | {rss:.0f} MiB |")
    print(
        f"| training on Ta-Feng (bench process peak RSS) | {train_s:.0f} s ({train_rss:.0f} MiB) |"
    )
    print(f"| request mix | {', '.join(f'{k} {w:.0%}' for k, w in MIX)} |")
    print(f"| customers / products in the shop | {len(customer_ids):,} / {len(skus):,} |")
    print("| database | SQLite, a throw-away file (no PostgreSQL) |")
    print()
    print(json.dumps({k: round(v, 2) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
