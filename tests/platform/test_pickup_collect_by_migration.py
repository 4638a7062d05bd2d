"""Migration c25000000018: pick-up orders keep their collection deadline; those placed before it
are given the day the rule gives (the day placed at the order's offset, plus the hold), on
SQLite and PostgreSQL; other orders have none."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from rapport.platform.db import create_db_engine
from rapport.platform.migrations_runner import alembic_config
from tests.conftest import make_database_url

_ORDER = (
    "INSERT INTO orders (order_id, channel, fulfilment, store_id, status, currency,"
    " subtotal_minor, discount_minor, shipping_minor, total_minor, placed_at,"
    " placed_offset_minutes, source, created_at, updated_at) VALUES (:id, 'store', :fulfilment,"
    " 'st-par-01', :status, 'EUR', 100, 0, 0, 100, :placed_at, :offset, 'api', :at, :at)"
)


def test_waiting_pickups_get_the_deadline_they_were_told(backend: str, tmp_path: Path) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    config = alembic_config(url)
    try:
        # given pick-ups placed before the migration: 22:50 UTC on 7 December, once at +02:00
        # (8 December there) and once at UTC, and a shipped order
        command.upgrade(config, "c25000000017")
        placed = datetime(2026, 12, 7, 22, 50, tzinfo=UTC)
        with engine.begin() as db:
            for order_id, fulfilment, status, offset in (
                ("P-ATHENS", "pickup_in_store", "ready_for_pickup", 120),
                ("P-UTC", "pickup_in_store", "collected", None),
                ("S-1", "ship", "placed", None),
            ):
                db.execute(
                    sa.text(_ORDER),
                    {
                        "id": order_id,
                        "fulfilment": fulfilment,
                        "status": status,
                        "placed_at": placed,
                        "offset": offset,
                        "at": placed,
                    },
                )
        # when the migration runs (the default hold of 7 days)
        command.upgrade(config, "c25000000018")
        # then each pick-up keeps the day placed at its offset plus the hold
        with engine.connect() as db:
            kept = dict(db.execute(sa.text("SELECT order_id, collect_by FROM orders")).all())
        assert {key: str(value) if value else None for key, value in kept.items()} == {
            "P-ATHENS": str(date(2026, 12, 15)),
            "P-UTC": str(date(2026, 12, 14)),
            "S-1": None,
        }
        command.downgrade(config, "c25000000017")
    finally:
        engine.dispose()
        remove()
