"""What a GET's read-only session costs, and what it saves: on SQLite (a file in WAL mode) and
PostgreSQL (a throw-away cluster with fsync on, bench/postgres.py; ``--database-url`` measures
an existing server), sessions that each read one row of a migrated database, ordinary ones
(SQLite: ``BEGIN IMMEDIATE`` through the writers' queue) against reading ones
(``open_session(reading=True)``, as every GET request gets: SQLite ``BEGIN`` with
``query_only``, PostgreSQL ``BEGIN READ ONLY``), in alternating rounds; then, on SQLite, one read
of each kind while another connection holds the write lock for a second.

    .venv/bin/python bench/read_sessions.py [--sessions 3000] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import text

from rapport.platform.db import open_session
from rapport.platform.migrations_runner import upgrade

# isort: split
# Started as a script, this folder is on sys.path: reuse the benches' PostgreSQL helpers.
from ingest import postgres_database
from postgres import add_database_url_option, postgres_server

QUICK = {"sessions": 300, "rounds": 1}
HOLD_S = 1.0
READ = text("SELECT count(*) FROM api_keys")


def per_session_us(url: str, *, reading: bool, sessions: int) -> float:
    """Mean microseconds of one session that opens, reads one row and commits."""
    started = time.perf_counter()
    for _ in range(sessions):
        with open_session(url, reading=reading) as db:
            db.execute(READ).scalar()
            db.commit()
    return (time.perf_counter() - started) / sessions * 1e6


def medians(url: str, sessions: int, rounds: int) -> dict[bool, float]:
    """Each kind's median over ``rounds``, the kinds alternating which goes first."""
    measured: dict[bool, list[float]] = {False: [], True: []}
    for number in range(rounds):
        for reading in (False, True) if number % 2 == 0 else (True, False):
            measured[reading].append(per_session_us(url, reading=reading, sessions=sessions))
    return {reading: statistics.median(values) for reading, values in measured.items()}


def read_ms_while_locked(url: str, path: Path, *, reading: bool) -> float:
    """Milliseconds one read takes while another connection holds SQLite's write lock for
    HOLD_S seconds (a paused import, as another process would)."""
    holding = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        holding.set()
        time.sleep(HOLD_S)
        connection.execute("ROLLBACK")
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    started = time.perf_counter()
    with open_session(url, reading=reading) as db:
        db.execute(READ).scalar()
        db.commit()
    took = (time.perf_counter() - started) * 1000
    holder.join()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=3000, help="sessions per round and kind")
    parser.add_argument("--rounds", type=int, default=3)
    add_database_url_option(parser)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 300 sessions, 1 round")
    if "--quick" in sys.argv[1:]:
        parser.set_defaults(**QUICK)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as directory:
        path = Path(directory) / "rapport.db"
        sqlite_url = f"sqlite:///{path}"
        upgrade(sqlite_url)
        sqlite = medians(sqlite_url, args.sessions, args.rounds)
        locked = {
            reading: read_ms_while_locked(sqlite_url, path, reading=reading)
            for reading in (False, True)
        }
        with (
            postgres_server(args.database_url) as server,
            postgres_database(server.url, "reads") as postgres_url,
        ):
            postgres = medians(postgres_url, args.sessions, args.rounds)
            server_rows = server.table_rows()

    rows = [
        (
            "one session reading one row (µs, median of rounds)",
            f"{sqlite[False]:.0f} / {sqlite[True]:.0f}",
            f"{postgres[False]:.0f} / {postgres[True]:.0f}",
        ),
        (
            f"one read while another connection holds the write lock for {HOLD_S:.0f} s (ms)",
            f"{locked[False]:.0f} / {locked[True]:.1f}",
            "(readers never wait)",
        ),
    ]
    print(f"{args.sessions:,} sessions per round and kind, {args.rounds} round(s)\n")
    print("| measure: ordinary / reading session | SQLite | PostgreSQL |")
    print("| --- | ---: | ---: |")
    for measure, on_sqlite, on_postgres in rows:
        print(f"| {measure} | {on_sqlite} | {on_postgres} |")
    for measure, value in server_rows:
        print(f"| {measure} | | {value} |")
    print(
        json.dumps(
            {
                "sqlite_ordinary_us": round(sqlite[False]),
                "sqlite_reading_us": round(sqlite[True]),
                "postgresql_ordinary_us": round(postgres[False]),
                "postgresql_reading_us": round(postgres[True]),
                "sqlite_read_while_locked_ms": {
                    "ordinary": round(locked[False]),
                    "reading": round(locked[True], 1),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
