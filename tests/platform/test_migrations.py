"""Migrations run from empty on SQLite and PostgreSQL and match the models exactly."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from rapport.platform.db import Base, create_db_engine
from rapport.platform.migrations_runner import alembic_config, pending_migrations, upgrade
from tests.conftest import make_database_url


def test_upgrade_from_empty_creates_every_table(backend: str, tmp_path: Path) -> None:
    # given an empty database
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            assert len(pending_migrations(connection)) >= 1
        # when
        upgrade(url)
        # then every model table exists and nothing is pending
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            assert set(Base.metadata.tables) <= tables
            assert pending_migrations(connection) == []
    finally:
        engine.dispose()
        remove()


def test_migrations_match_models(engine) -> None:  # type: ignore[no-untyped-def]
    # given the session database migrated to head
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        # when alembic compares the live schema with the models
        differences = compare_metadata(context, Base.metadata)
    # then there is nothing a new migration would have to add
    assert differences == []


def test_downgrade_to_base_and_up_again(backend: str, tmp_path: Path) -> None:
    from alembic import command

    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    try:
        upgrade(url)
        command.downgrade(alembic_config(url), "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        upgrade(url)
        with engine.connect() as connection:
            assert pending_migrations(connection) == []
    finally:
        engine.dispose()
        remove()


def test_ids_of_deleted_rows_stay_unused_after_upgrading_an_existing_sqlite_database(
    tmp_path: Path,
) -> None:
    """An existing SQLite database gets AUTOINCREMENT on the tables whose rows users delete,
    keeping its rows, checks and indexes."""
    from alembic import command
    from sqlalchemy import text

    url, remove = make_database_url("sqlite", tmp_path)
    engine = create_db_engine(url)
    rule = (
        "INSERT INTO recommend_rules (id, name, action, sku, active, created_by, created_at, "
        "updated_by, updated_at) VALUES (:id, :name, 'exclude', 'W-1', 1, 'ann', "
        "'2026-12-01 00:00:00', 'ann', '2026-12-01 00:00:00')"
    )
    try:
        command.upgrade(alembic_config(url), "c18000000001")
        with engine.begin() as connection:
            connection.execute(text(rule), {"id": 1, "name": "kept"})
            connection.execute(text(rule), {"id": 2, "name": "deleted before the upgrade"})
            connection.execute(text("DELETE FROM recommend_rules WHERE id = 2"))
        upgrade(url)
        with engine.begin() as connection:
            assert connection.execute(text("SELECT name FROM recommend_rules")).all() == [("kept",)]
            connection.execute(text(rule), {"id": None, "name": "new"})
            connection.execute(text("DELETE FROM recommend_rules WHERE name = 'new'"))
            connection.execute(text(rule), {"id": None, "name": "newer"})
            ids = connection.execute(text("SELECT id FROM recommend_rules ORDER BY id")).all()
        assert [row.id for row in ids] == [1, 3]
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            checks = inspect(connection).get_check_constraints("recommend_rules")
            assert {c["name"] for c in checks} >= {"ck_recommend_rules_known_action"}
    finally:
        engine.dispose()
        remove()
