"""Migration c25000000002: contact phones stored as typed (sign-up, CRM imports, tracking)
read as their phone identities do, on SQLite and PostgreSQL; a number that names no country
stays as it was, and the digest of no number leaves the suppression list."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from rapport.platform.db import create_db_engine
from rapport.platform.identity import identity_digest
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import make_database_url

BEFORE = "c24000000003"
PHONES = {
    "cus_spaced": ("+33 6 12 34 56 78", "+33612345678"),
    "cus_prefixed": ("0033 6 12 34 56 79", "+33612345679"),
    "cus_dashed": ("+33 (6) 12-34-56-70", "+33612345670"),
    "cus_plain": ("+33612345671", "+33612345671"),
    # one person's number twice: both profiles keep it, the identity stays with the first
    "cus_first": ("+44 20 7946 0958", "+442079460958"),
    "cus_second": ("+442079460958", "+442079460958"),
    "cus_national": ("06 12 34 56 78", "06 12 34 56 78"),
    "cus_old_national": ("+0612345678", "+0612345678"),
    "cus_no_number": ("ask reception", "ask reception"),
    "cus_none": (None, None),
}


def test_contact_phones_read_as_their_identities(backend: str, tmp_path: Path) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    erased_number = identity_digest("phone", "+33699887766")
    try:
        # given profiles whose phones were stored as typed, before the migration
        command.upgrade(alembic_config(url), BEFORE)
        with engine.begin() as connection:
            for customer_id, (phone, _) in PHONES.items():
                connection.execute(
                    text(
                        "INSERT INTO customers (customer_id, phone, locale, attributes,"
                        " is_anonymous, status, created_at, updated_at) VALUES (:id, :phone,"
                        " 'en', '{}', false, 'active', '2026-12-01 00:00:00',"
                        " '2026-12-01 00:00:00')"
                    ),
                    {"id": customer_id, "phone": phone},
                )
            connection.execute(
                text(
                    "INSERT INTO identities (customer_id, kind, value, is_unique, source,"
                    " created_at) VALUES ('cus_first', 'phone', '+442079460958', true, 'signup',"
                    " '2026-12-01 00:00:00')"
                )
            )
            for digest in (identity_digest("phone", "06 12 34 56 77"), erased_number):
                connection.execute(
                    text(
                        "INSERT INTO suppressed_identities (digest, suppressed_at)"
                        " VALUES (:digest, '2026-12-01 00:00:00')"
                    ),
                    {"digest": digest},
                )

        # when the database is migrated
        upgrade(url)

        # then each number reads as its identity would, and one with no country stays
        with engine.connect() as connection:
            phones = dict(
                connection.execute(text("SELECT customer_id, phone FROM customers")).all()
            )
            holders = connection.execute(
                text("SELECT customer_id, value FROM identities WHERE kind = 'phone'")
            ).all()
            suppressed = connection.execute(text("SELECT digest FROM suppressed_identities")).all()
        assert phones == {customer_id: after for customer_id, (_, after) in PHONES.items()}
        assert [tuple(row) for row in holders] == [("cus_first", "+442079460958")]
        # and the digest of no number is gone, a real erased number's stays
        assert [row.digest for row in suppressed] == [erased_number]
    finally:
        engine.dispose()
        remove()
