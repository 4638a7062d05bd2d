"""Migration c25000000003: contact emails stored with capitals (sign-up, tracking) read as
their email identities do, lower-cased, on SQLite and PostgreSQL; two profiles that so come to
show one address stay two, the identity with the one that held it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from rapport.platform.db import create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import make_database_url

BEFORE = "c25000000002"
EMAILS = {
    "cus_capitals": ("Ana.Lopez@Example.COM", "ana.lopez@example.com"),
    "cus_accented": ("Élodie@Exemple.fr", "élodie@exemple.fr"),
    "cus_plain": ("bo@example.com", "bo@example.com"),
    # one person's address twice: both profiles keep it, the identity stays with the first
    "cus_first": ("Cy@Example.com", "cy@example.com"),
    "cus_second": ("cy@example.com", "cy@example.com"),
    "cus_none": (None, None),
}


def test_contact_emails_read_as_their_identities(backend: str, tmp_path: Path) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    try:
        # given profiles whose emails were stored as typed, before the migration
        command.upgrade(alembic_config(url), BEFORE)
        with engine.begin() as connection:
            for customer_id, (email, _) in EMAILS.items():
                connection.execute(
                    text(
                        "INSERT INTO customers (customer_id, email, locale, attributes,"
                        " is_anonymous, status, created_at, updated_at) VALUES (:id, :email,"
                        " 'en', '{}', false, 'active', '2026-12-01 00:00:00',"
                        " '2026-12-01 00:00:00')"
                    ),
                    {"id": customer_id, "email": email},
                )
            connection.execute(
                text(
                    "INSERT INTO identities (customer_id, kind, value, is_unique, source,"
                    " created_at) VALUES ('cus_first', 'email', 'cy@example.com', true,"
                    " 'signup', '2026-12-01 00:00:00')"
                )
            )

        # when the database is migrated
        upgrade(url)

        # then each address reads as its identity would, and the identity has not moved
        with engine.connect() as connection:
            emails = dict(
                connection.execute(text("SELECT customer_id, email FROM customers")).all()
            )
            holders = connection.execute(
                text("SELECT customer_id, value FROM identities WHERE kind = 'email'")
            ).all()
        assert emails == {customer_id: after for customer_id, (_, after) in EMAILS.items()}
        assert [tuple(row) for row in holders] == [("cus_first", "cy@example.com")]
    finally:
        engine.dispose()
        remove()
