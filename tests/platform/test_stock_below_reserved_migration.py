"""Migration c25000000015: a migrated database records a stock count below the units reserved
for pick-up (the check ``reserved <= on_hand`` gives way to ``reserved >= 0``), on SQLite and
PostgreSQL; going back counts such a level up to its reservations and restores the check."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.platform.db import create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import make_database_url
from tests.orders.factories import CHIANTI, seed_catalog


def _level(db: Session) -> tuple[int, int]:
    db.expire_all()
    level = catalog.get_stock(db, sku=CHIANTI, store_id="st-par-01")
    assert level is not None
    return level.on_hand, level.reserved


def test_a_count_below_the_reservations_is_kept_after_the_migration(
    backend: str, tmp_path: Path
) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    try:
        # given a migrated database with two of Paris's five Chianti reserved
        upgrade(url)
        with Session(engine) as db:
            seed_catalog(db)
            assert catalog.reserve_stock(db, sku=CHIANTI, store_id="st-par-01", quantity=2)
            db.commit()
            # when one bottle is counted, then it is recorded
            catalog.set_stock(db, levels=[(CHIANTI, "st-par-01", 1)])
            assert _level(db) == (1, 2)
        # when the migration is undone, the level is counted up to its reservations
        command.downgrade(alembic_config(url), "c25000000014")
        with Session(engine) as db:
            assert _level(db) == (2, 2)
            # and the old check holds again
            with pytest.raises(IntegrityError):
                catalog.set_stock(db, levels=[(CHIANTI, "st-par-01", 1)])
    finally:
        engine.dispose()
        remove()
