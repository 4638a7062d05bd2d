"""Privacy rights across every domain: export and erasure as one workflow.

Every domain listed in :data:`rapport.domains.DOMAINS` joins it through its
``service`` module (its face, imported here by name), which must define:

- ``export_customer_data(db, *, subject) -> dict``: the domain's sections of the export;
- ``erase_customer_data(db, *, subject) -> None``: erase or pseudonymise the person's data in
  the domain's tables, in the caller's transaction (no commit);
- ``PRIVACY_TABLES``: the domain's tables those two cover.

The workflow finds them for every listed domain and refuses to run when one is missing, so a
new domain cannot be forgotten; ``tests/flows/test_privacy.py`` checks that every table with
a column naming a customer is covered by its domain's ``PRIVACY_TABLES``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from rapport.campaigns import service as campaigns
from rapport.catalog import service as catalog
from rapport.customers import events as customers_events
from rapport.customers import service as customers
from rapport.customers.service import PrivacyRequest
from rapport.domains import DOMAINS
from rapport.events import service as events
from rapport.feedback import service as feedback
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform import clock, jobs
from rapport.platform import service as platform
from rapport.platform.db import BUSY_TIMEOUT_MS, run_again_on_conflict
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.identity import identity_digest
from rapport.platform.models import Job
from rapport.platform.privacy import PrivacySubject
from rapport.recommend import service as recommend

log = logging.getLogger(__name__)

# How long the checkpoint after an erasure waits for readers before leaving the WAL to the
# server's periodic checkpoints (see ``_truncate_wal``).
CHECKPOINT_WAIT_MS = 5_000
# An erasure that meets a deadlock or serialization failure (PostgreSQL) runs again, from
# the start, this many times in all before the error goes to the caller.
ERASE_ATTEMPTS = 5
# The job that sweeps the log, after an erasure, for other profiles' events naming the person
# (``sweep_erased_contacts``), one page of ``events.SWEEP_PAGE`` events a run.
SWEEP_JOB = "privacy.sweep_erased_contacts"


# Each domain's face, by the name DOMAINS lists it under: a domain listed there and missing
# here has no handlers, and the workflow refuses to run.
_FACES: dict[str, ModuleType] = {
    "platform": platform,
    "events": events,
    "customers": customers,
    "catalog": catalog,
    "orders": orders,
    "loyalty": loyalty,
    "recommend": recommend,
    "feedback": feedback,
    "campaigns": campaigns,
}


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
        service = _FACES.get(domain)
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


def export_customer(
    db: Session, *, customer_id: str, requested_by: str, record: bool = True
) -> dict[str, Any]:
    """Everything Rapport holds on a customer, from every domain, as one JSON-ready document
    (right of access); the request is recorded, unless ``record`` is false (a ``HEAD``, which
    writes nothing)."""
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
    if record:
        customers.record_privacy_request(
            db, customer_id=subject.customer_id, kind="export", requested_by=requested_by
        )
        db.commit()
    return document


def erase_customer(
    db: Session,
    *,
    customer_id: str,
    requested_by: str,
    reason: str | None = None,
    before_commit: BeforeCommit | None = None,
) -> PrivacyRequest:
    """Right to erasure, in every domain and one transaction: each domain's handler erases or
    pseudonymises what it holds (docs/customers.md says what each keeps); the profile is
    marked erased, its identities and its own customer ids suppressed, the request recorded
    and ``customer_erased`` logged once for each of its customer ids (the survivor's and every
    merged-away profile's, so webhook subscribers hear of each id). On SQLite the WAL is
    then checkpointed and truncated, so no copy of the erased rows stays in it. A deadlock or
    serialization failure (PostgreSQL) rolls back and runs the erasure again, up to
    ``ERASE_ATTEMPTS`` times. ``before_commit`` runs last in the erasure's transaction (the
    API stores its answer there)."""
    request = run_again_on_conflict(
        db,
        lambda: _erase_once(
            db,
            customer_id=customer_id,
            requested_by=requested_by,
            reason=reason,
            before_commit=before_commit,
        ),
        attempts=ERASE_ATTEMPTS,
        what="an erasure",
    )
    _truncate_wal(db)
    return request


def _erase_once(
    db: Session,
    *,
    customer_id: str,
    requested_by: str,
    reason: str | None,
    before_commit: BeforeCommit | None,
) -> PrivacyRequest:
    subject = _lock_subject(db, customer_id=customer_id)
    if db.get_bind().dialect.name != "sqlite":
        request = _erase_subject(db, subject, requested_by=requested_by, reason=reason)
    else:
        # Zero what the erasure frees, free-list pages included (connections zero only what
        # is freed inside pages); the connection's own setting comes back before the commit.
        connection = db.connection()
        usual = int(connection.exec_driver_sql("PRAGMA secure_delete").scalar() or 0)
        connection.exec_driver_sql("PRAGMA secure_delete=ON")
        try:
            request = _erase_subject(db, subject, requested_by=requested_by, reason=reason)
        finally:
            connection.exec_driver_sql(f"PRAGMA secure_delete={usual}")
    if before_commit is not None:
        before_commit(db, request)
    db.commit()
    return request


def _erase_subject(
    db: Session, subject: PrivacySubject, *, requested_by: str, reason: str | None
) -> PrivacyRequest:
    for handlers in privacy_handlers():
        handlers.erase(db, subject=subject)
    # Their Rapport ids are suppressed too: ingestion checks a sender's user id as an
    # external id, so events naming an erased profile's own id are refused from now on.
    events.suppress_identities(
        db, digests=[identity_digest("external_id", cid) for cid in subject.customer_ids]
    )
    request = customers.record_privacy_request(
        db,
        customer_id=subject.customer_id,
        kind="erasure",
        requested_by=requested_by,
        reason=reason,
    )
    db.flush()  # the request's id names the sweep
    _enqueue_sweep(
        db,
        {
            "request_id": request.id,
            "digests": events.sweep_digests(subject),
            "customer_ids": list(subject.customer_ids),
            "after": 0,
            "up_to": events.head_position(db),
        },
    )
    # One notice per Rapport id the person had (the survivor first, then every profile merged
    # into it): a webhook subscriber knows a merged-away profile only by its own id, and
    # erases the person by erasing every id it is told about.
    for erased_id in subject.customer_ids:
        events.append_event(
            db, customers_events.CustomerErased(), channel="web", customer_id=erased_id
        )
    db.flush()
    return request


def _enqueue_sweep(db: Session, payload: dict[str, Any]) -> None:
    """Queue the next step of the sweep, once (a run that the worker repeats after a crash
    queues nothing twice)."""
    key = f"{SWEEP_JOB}:{payload['request_id']}:{payload.get('step', 0)}"
    if db.scalar(select(Job.id).where(Job.dedupe_key == key)) is None:
        jobs.enqueue(db, kind=SWEEP_JOB, payload=payload, dedupe_key=key)


# An email address in free text ("write to me at ana@example.com."), as ingestion would read it.
_EMAIL_IN_TEXT = re.compile(r"[^\s@<>()\[\],;:\"'/]+@[^\s@<>()\[\],;:\"'/]+\.[a-z]{2,}", re.I)


@jobs.job(SWEEP_JOB)
def sweep_erased_contacts(db: Session, payload: dict[str, Any]) -> None:
    """One step of an erasure's sweep for the person's data under other profiles: first the
    log, a page at a time (``after`` of ``up_to``): events naming their email, phone or
    customer number are scrubbed as theirs were and the profiles they belong to lose the name,
    email and phone those events gave them; then feedback's free text (``feedback``, each
    table's cursor): a ticket, review or survey answer of someone else quoting their email loses
    its text. Each step queues the next (``step`` counts them)."""
    if db.get_bind().dialect.name == "postgresql":
        # The erasure's lock order: no processor batch applies an event this step scrubs, or
        # writes a profile it clears, while it runs.
        events.lock_processor_cursors(db)
    digests = set(payload["digests"])
    following = {**payload, "step": int(payload.get("step", 0)) + 1}
    up_to = int(payload["up_to"])
    if int(payload["after"]) < up_to:
        page = events.sweep_erased_contacts(
            db,
            digests=digests,
            customer_ids=payload["customer_ids"],
            after=int(payload["after"]),
            up_to=up_to,
        )
        if page.profiles:
            customers.forget_erased_details(db, found=page.profiles)
        _enqueue_sweep(db, {**following, "after": page.last_position})
    else:

        def names_person(text: str) -> bool:
            return any(
                identity_digest("email", found.rstrip(".")) in digests
                for found in _EMAIL_IN_TEXT.findall(text)
            )

        cursor = feedback.sweep_free_text(
            db,
            names_person=names_person,
            customer_ids=payload["customer_ids"],
            after=payload.get("feedback") or {},
        )
        if cursor is not None:
            _enqueue_sweep(db, {**following, "feedback": cursor})
    db.commit()


def _lock_subject(db: Session, *, customer_id: str) -> PrivacySubject:
    """The person to erase, read while nothing else can change them.

    On PostgreSQL every writer involved takes its locks in one order, so an erasure and the
    work it races cannot deadlock: first the event processors' cursors (by name; a processor
    batch holds its own for the whole batch, so an erasure waits for running batches and no
    batch starts until it commits), then the profiles' rows (by id; identity resolution locks
    a profile before it links identities to it), then everything else. SQLite needs none of
    this: every writing transaction holds the database's single write lock from its start."""
    if db.get_bind().dialect.name != "postgresql":
        return customers.privacy_subject(db, customer_id=customer_id)
    events.lock_processor_cursors(db)
    locked: set[str] = set()
    while True:
        db.expire_all()  # read the profiles as they are now, not as this session saw them
        subject = customers.privacy_subject(db, customer_id=customer_id)
        missing = sorted(set(subject.customer_ids) - locked)
        if not missing:
            return subject
        # A merge may have moved the profile, or another into it, before the lock: lock
        # those too and read again.
        customers.lock_profiles(db, missing)
        locked.update(missing)


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
