"""Platform tables: API keys, admin users, background jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rapport.platform.db import Base, JsonDocument, UTCDateTime


class ApiKey(Base):
    """A key for the HTTP API. Only a SHA-256 digest of the secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # This key's own request limit ("100/second;5000/hour"); the setting
    # RAPPORT_API_RATE_LIMIT applies when None.
    rate_limit: Mapped[str | None] = mapped_column(String(100), default=None)
    # Segment e-commerce events this key sends ("Order Completed", "Order Refunded") become
    # orders and returns; off for a shop that posts its orders to /v1/orders (counted once).
    orders_from_tracking: Mapped[bool] = mapped_column(Boolean, default=True)


class AdminUser(Base):
    """A person who signs in to the admin pages. Passwords are argon2id hashes."""

    __tablename__ = "admin_users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class AdminSession(Base):
    """A signed-in admin session. The cookie carries the session's secret; only its SHA-256
    digest is stored, and signing out (or a new password) deletes the row, so a copied cookie
    stops working at once."""

    __tablename__ = "admin_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin_user_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("admin_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AdminLoginFailures(Base):
    """Wrong admin passwords in a row, per account (``account:EMAIL``) or per client address
    (``address:IP``), and until when further attempts are refused. Kept in the database so
    every server process applies the same limits."""

    __tablename__ = "admin_login_failures"

    subject: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Job(Base):
    """A unit of background work. Scheduled runs carry a dedupe key so that several workers
    ticking at once still queue each run only once."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status_known"),
        Index("ix_jobs_status_run_at", "status", "run_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # While running: the worker's id (host:pid:random) and when it last said it still runs
    # the job (platform.jobs: a job whose heartbeat is stale is queued again).
    locked_by: Mapped[str | None] = mapped_column(String(100), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class IdempotencyRecord(Base):
    """A command's Idempotency-Key, its request fingerprint and (once done) its answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (CheckConstraint("status IN ('running', 'done')", name="status_known"),)

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_body: Mapped[Any | None] = mapped_column(JsonDocument, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # While running: who runs the command ("host pid process-token claim-token") and until
    # when the claim holds unless renewed (see platform.idempotency).
    holder: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
