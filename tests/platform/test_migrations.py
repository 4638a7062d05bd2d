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
