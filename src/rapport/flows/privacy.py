"""Privacy rights across every domain: export and erasure as one workflow.

Every domain listed in :data:`rapport.platform.domains.DOMAINS` joins it through its
``service`` module, which must define:

- ``export_customer_data(db, *, subject) -> dict``: the domain's sections of the export;
- ``erase_customer_data(db, *, subject) -> None``: erase or pseudonymise the person's data in
  the domain's tables, in the caller's transaction (no commit);
- ``PRIVACY_TABLES``: the domain's tables those two cover.

The workflow finds them for every listed domain and refuses to run when one is missing, so a
new domain cannot be forgotten; ``tests/flows/test_privacy.py`` checks that every table with
a column naming a customer is covered by its domain's ``PRIVACY_TABLES``.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.models import PrivacyRequest
from rapport.events import service as events
from rapport.platform import clock
from rapport.platform.db import BUSY_TIMEOUT_MS
from rapport.platform.domains import DOMAINS

log = logging.getLogger(__name__)

# How long the checkpoint after an erasure waits for readers before leaving the WAL to the
# server's periodic checkpoints (see ``_truncate_wal``).
CHECKPOINT_WAIT_MS = 5_000


@dataclass(frozen=True)
class PrivacyHandlers:
    domain: str
    export: Callable[..., dict[str, Any]]
    erase: Callable[..., None]
    tables: tuple[str, ...]


def privacy_handlers() -> list[PrivacyHandlers]:
    """Every domain's handlers, in :data:`DOMAINS` order; an error naming the domain when
    one lacks them."""
    found = []
    for domain in DOMAINS:
        try:
            service = importlib.import_module(f"rapport.{domain}.service")
        except ModuleNotFoundError as error:
            if error.name != f"rapport.{domain}.service":
                raise
            service = None
        export = getattr(service, "export_customer_data", None)
        erase = getattr(service, "erase_customer_data", None)
        tables = getattr(service, "PRIVACY_TABLES", None)
        if not callable(export) or not callable(erase) or tables is None:
            raise RuntimeError(
                f"rapport.{domain}.service must define export_customer_data, "
                "erase_customer_data and PRIVACY_TABLES to take part in privacy requests"
            )
        found.append(PrivacyHandlers(domain, export, erase, tuple(tables)))
    return found


def export_customer(db: Session, *, customer_id: str, requested_by: str) -> dict[str, Any]:
    """Everything Rapport holds on a customer, from every domain, as one JSON-ready document
    (right of access); the request is recorded."""
    subject = customers.privacy_subject(db, customer_id=customer_id)
    document: dict[str, Any] = {
        "exported_at": clock.now().isoformat(),
        "customer_id": subject.customer_id,
        "domains": [],
    }
    for handlers in privacy_handlers():
        sections = handlers.export(db, subject=subject)
        clash = set(sections) & set(document)
        assert not clash, f"{handlers.domain} exports sections already taken: {sorted(clash)}"
        document.update(sections)
        document["domains"].append(handlers.domain)
    customers.record_privacy_request(
        db, customer_id=subject.customer_id, kind="export", requested_by=requested_by
    )
    db.commit()
    return document


def erase_customer(
    db: Session, *, customer_id: str, requested_by: str, reason: str | None = None
) -> PrivacyRequest:
    """Right to erasure, in every domain and one transaction: each domain's handler erases or
    pseudonymises what it holds (docs/customers.md says what each keeps); the profile is
    marked erased, its identities suppressed, and the request recorded. On SQLite the WAL is
    then checkpointed and truncated, so no copy of the erased rows stays in it."""
    subject = customers.privacy_subject(db, customer_id=customer_id)
    sqlite = db.get_bind().dialect.name == "sqlite"
    if sqlite:
        # Zero what the erasure frees in the database pages, rather than leave it there.
        db.connection().exec_driver_sql("PRAGMA secure_delete=ON")
    for handlers in privacy_handlers():
        handlers.erase(db, subject=subject)
    request = customers.record_privacy_request(
        db,
        customer_id=subject.customer_id,
        kind="erasure",
        requested_by=requested_by,
        reason=reason,
    )
    events.append_event(
        db, type="customer_erased", channel="web", customer_id=subject.customer_id, properties={}
    )
    db.flush()
    if sqlite:
        db.connection().exec_driver_sql("PRAGMA secure_delete=OFF")
    db.commit()
    _truncate_wal(db)
    return request


def _truncate_wal(db: Session) -> None:
    """Copy the WAL into the database and empty it (SQLite), so the erased values' old row
    versions do not stay in the WAL file until later checkpoints overwrite them. Skipped when
    the session runs inside a transaction its caller owns (the tests' rolled-back sessions)."""
    bind = db.get_bind()
    if not isinstance(bind, Engine) or bind.dialect.name != "sqlite":
        return
    connection = bind.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
        # A checkpoint the server's checkpointer thread is running answers busy at once,
        # without waiting: try again until the deadline.
        deadline = time.monotonic() + CHECKPOINT_WAIT_MS / 1000
        while cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
            if time.monotonic() > deadline:
                log.warning("the WAL could not be truncated after an erasure: readers held it")
                break
            time.sleep(0.05)
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    finally:
        connection.close()
