"""Platform verbs: API keys and admin users. Each write owns its transaction."""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Text, cast, func, or_, select, update
from sqlalchemy.orm import Session

from rapport.platform import clock
from rapport.platform.db import driver_cursor, read_only
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from rapport.platform.idempotency import ERASED_KEY_PREFIX, erased_key
from rapport.platform.ids import new_id
from rapport.platform.models import AdminUser, ApiKey, IdempotencyRecord, Job
from rapport.platform.privacy import PrivacySubject
from rapport.platform.ratelimit import parse_limit

KEY_PREFIX = "rk"
_password_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


class Scope(enum.StrEnum):
    """What an API key may do. ``admin`` implies every other scope."""

    INGEST = "ingest"  # tracking events from site, app and tills
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: an active API key's id and scopes."""

    id: str
    name: str
    scopes: tuple[str, ...]
    # The key's own request limit ("100/second"); None: RAPPORT_API_RATE_LIMIT.
    rate_limit: str | None = None
    # Whether Segment e-commerce events it sends become orders and returns (ApiKey).
    orders_from_tracking: bool = True


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key: ``secret`` is shown once and never stored."""

    key: ApiKey
    secret: str


def _digest(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast digest is safe; passwords use argon2.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    db: Session,
    *,
    name: str,
    scopes: list[Scope],
    rate_limit: str | None = None,
    orders_from_tracking: bool = True,
    before_commit: Callable[[Session, IssuedKey], None] | None = None,
) -> IssuedKey:
    """Create a key with the given scopes (and its own request limit, if given: see
    ``platform.ratelimit``); the returned secret is the only copy. ``orders_from_tracking``:
    whether the Segment e-commerce events it sends become orders and returns.
    ``before_commit`` runs last in the transaction, with the issued key."""
    if not name.strip():
        raise InvalidInput(
            "Give the key a name that says what it is for, e.g. 'Shop front-end'", field="name"
        )
    if not scopes:
        raise InvalidInput("An API key needs at least one scope", field="scopes")
    if rate_limit is not None:
        parse_limit(rate_limit)
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=new_id("key"),
        name=name,
        key_prefix=prefix,
        key_hash=_digest(secret),
        scopes=sorted({scope.value for scope in scopes}),
        created_at=clock.now(),
        rate_limit=rate_limit,
        orders_from_tracking=orders_from_tracking,
    )
    db.add(key)
    issued = IssuedKey(key=key, secret=secret)
    if before_commit is not None:
        db.flush()
        before_commit(db, issued)
    db.commit()
    return issued


def set_api_key_rate_limit(db: Session, *, key_id: str, rate_limit: str | None) -> ApiKey:
    """Give a key its own request limit ("100/second;5000/hour"), or ``None`` for the
    default. Every server process applies it within ``KEY_CACHE_SECONDS``."""
    if rate_limit is not None:
        parse_limit(rate_limit)
    key = db.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id!r}", field="key_id")
    key.rate_limit = rate_limit
    db.commit()
    _recent_keys.clear()
    return key


def set_api_key_orders_from_tracking(db: Session, *, key_id: str, enabled: bool) -> ApiKey:
    """Whether the Segment e-commerce events (Order Completed, Order Refunded...) a key sends
    become orders and returns; off where the shop's own system sends orders already. Every
    server process applies it within ``KEY_CACHE_SECONDS``."""
    key = db.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id!r}", field="key_id")
    key.orders_from_tracking = enabled
    db.commit()
    _recent_keys.clear()
    return key


def list_api_keys(db: Session, *, include_revoked: bool = False) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(db.scalars(query))


def get_api_key(db: Session, *, key_id: str) -> ApiKey:
    """The key ``key_id`` (revoked ones too)."""
    key = db.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id!r}", field="key_id")
    return key


def revoke_api_key(db: Session, *, key_id: str) -> ApiKey:
    """Revoke a key at once; requests using it are refused from now on."""
    key = db.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id!r}", field="key_id")
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        db.commit()
    _recent_keys.clear()
    return key


# Every API request runs this, so it is one driver-level query rather than an ORM load
# (measured: a third of the cost of storing a single tracking event).
_KEY_QUERY = (
    "SELECT id, key_hash, scopes, name, rate_limit, orders_from_tracking FROM api_keys"
    " WHERE key_prefix = {} AND revoked_at IS NULL"
)
_KEY_QUERIES = {"postgresql": _KEY_QUERY.format("%s"), "sqlite": _KEY_QUERY.format("?")}


# Keys that authenticated in the last second, by digest: most requests then need no query at
# all (on SQLite that query would open the request's write transaction). Revoking a key clears
# this process's entries at once; other processes notice within ``KEY_CACHE_SECONDS``.
KEY_CACHE_SECONDS = 1.0
_recent_keys: dict[str, tuple[float, Principal]] = {}


def remembered_api_key(secret: str) -> Principal | None:
    """The key ``secret`` authenticated as in the last second, if it did: checking it again
    needs no query."""
    recent = _recent_keys.get(_digest(secret))
    if recent is not None and time.monotonic() - recent[0] < KEY_CACHE_SECONDS:
        return recent[1]
    return None


def authenticate_api_key(db: Session, *, secret: str) -> Principal | None:
    """The active key matching ``secret``, or ``None``."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    digest = _digest(secret)
    now = time.monotonic()
    recent = _recent_keys.get(digest)
    if recent is not None and now - recent[0] < KEY_CACHE_SECONDS:
        return recent[1]
    # A lookup only reads: on SQLite it must not take (and hold, for the rest of the request)
    # the write lock. The read transaction it opens is ended at once, so that the endpoint's
    # own work begins afresh (a command then takes the lock as usual).
    fresh = not db.in_transaction()
    if fresh:
        read_only(db)
    cursor = driver_cursor(db)
    cursor.execute(_KEY_QUERIES[db.get_bind().dialect.name], (parts[1],))
    row = cursor.fetchone()
    if fresh:
        db.rollback()
    if row is None or not hmac.compare_digest(row[1], digest):
        return None
    scopes: Any = row[2]
    if isinstance(scopes, str):  # SQLite hands JSON back as text
        scopes = orjson.loads(scopes)
    principal = Principal(
        id=row[0],
        name=row[3],
        scopes=tuple(scopes),
        rate_limit=row[4],
        orders_from_tracking=bool(row[5]),
    )
    if len(_recent_keys) > 10_000:
        _recent_keys.clear()
    _recent_keys[digest] = (now, principal)
    return principal


@dataclass(frozen=True, slots=True)
class OrdersFromTracking:
    """What a key's orders-from-tracking switch does with the key's scopes: ``str()`` is how
    ``rapport keys list`` and the admin's API keys page say it ("on", "off", "on, but needs
    ingest scope", "on, but needs write scope", "on, but needs ingest and write scopes")."""

    switched_on: bool
    # The scopes the key lacks for the switch to take effect, in the order named.
    missing: tuple[str, ...]

    @property
    def effective(self) -> bool:
        return self.switched_on and not self.missing

    @property
    def needs(self) -> str:
        """The missing scopes in words: "write scope", "ingest and write scopes"."""
        plural = "s" if len(self.missing) > 1 else ""
        return f"{' and '.join(self.missing)} scope{plural}"

    def __str__(self) -> str:
        if not self.switched_on:
            return "off"
        if not self.missing:
            return "on"
        return f"on, but needs {self.needs}"


def orders_from_tracking_state(
    *, scopes: Sequence[str], orders_from_tracking: bool
) -> OrdersFromTracking:
    """Whether a key's Segment "Order Completed" messages become orders, and if not, why:
    the switch must be on, and the key must both send tracking (``ingest``: without it
    ``/v1/track`` refuses it) and write (an order is a write; a key that may only track is the
    one a shop's pages carry for anyone to read, and a forged order must earn no points).
    ``admin`` holds both."""
    needed = () if Scope.ADMIN.value in scopes else (Scope.INGEST.value, Scope.WRITE.value)
    return OrdersFromTracking(
        switched_on=orders_from_tracking,
        missing=tuple(scope for scope in needed if scope not in scopes),
    )


def key_orders_from_tracking(key: ApiKey) -> OrdersFromTracking:
    """``orders_from_tracking_state`` of a stored key: its switch with its scopes, as
    ``rapport keys`` and the admin's API keys page show it."""
    return orders_from_tracking_state(
        scopes=key.scopes, orders_from_tracking=key.orders_from_tracking
    )


def places_tracked_orders(*, scopes: Sequence[str], orders_from_tracking: bool) -> bool:
    """Whether a key's Segment "Order Completed" messages become orders
    (``orders_from_tracking_state``: switched on, and the key may ingest and write)."""
    return orders_from_tracking_state(
        scopes=scopes, orders_from_tracking=orders_from_tracking
    ).effective


def key_allows(key: Principal, scope: Scope) -> bool:
    return scope.value in key.scopes or Scope.ADMIN.value in key.scopes


JOB_STATUSES = ("queued", "running", "done", "failed")


@dataclass(frozen=True)
class JobPage:
    """A page of background jobs, newest first, and how many match in all."""

    total: int
    jobs: list[Job]


def list_jobs(
    db: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> JobPage:
    """Background jobs, newest first, of one ``status`` and/or ``kind`` if given."""
    if status is not None and status not in JOB_STATUSES:
        raise InvalidInput(f"A job's status is one of {', '.join(JOB_STATUSES)}", field="status")
    conditions = []
    if status is not None:
        conditions.append(Job.status == status)
    if kind is not None:
        conditions.append(Job.kind == kind)
    total = db.scalar(select(func.count()).select_from(Job).where(*conditions)) or 0
    jobs = db.scalars(
        select(Job).where(*conditions).order_by(Job.id.desc()).offset(offset).limit(limit)
    )
    return JobPage(total=int(total), jobs=list(jobs))


def job_kinds(db: Session) -> list[str]:
    """The kinds of job there are (for the jobs page's filter)."""
    return list(db.scalars(select(Job.kind).distinct().order_by(Job.kind)))


def _normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise InvalidInput("Enter an email address such as ops@example.com", field="email")
    return email


def check_new_admin_email(db: Session, email: str) -> str:
    """``email`` as an admin user is created under, refused if it is no email address or
    already an admin user's (so a command can say so before asking for a password)."""
    email = _normalise_email(email)
    if db.scalar(select(AdminUser).where(AdminUser.email == email)) is not None:
        raise Conflict(f"An admin user {email} already exists", field="email")
    return email


def existing_admin_user(db: Session, email: str) -> AdminUser:
    """The admin user ``email`` names, refused (not found) if there is none."""
    user = db.scalar(select(AdminUser).where(AdminUser.email == _normalise_email(email)))
    if user is None:
        raise NotFound(f"No admin user {email}", field="email")
    return user


def create_admin_user(db: Session, *, email: str, password: str) -> AdminUser:
    """Add a person who can sign in to the admin pages."""
    email = _normalise_email(email)
    if len(password) < 12:
        raise InvalidInput("Use a password of at least 12 characters", field="password")
    email = check_new_admin_email(db, email)
    user = AdminUser(
        id=new_id("adm"),
        email=email,
        password_hash=_password_hasher.hash(password),
        created_at=clock.now(),
    )
    db.add(user)
    db.commit()
    return user


def set_admin_password(db: Session, *, email: str, password: str) -> AdminUser:
    if len(password) < 12:
        raise InvalidInput("Use a password of at least 12 characters", field="password")
    user = existing_admin_user(db, email)
    user.password_hash = _password_hasher.hash(password)
    # A new password signs the person out everywhere (a stolen cookie dies with the old one).
    from rapport.platform.admin_security import end_sessions_of

    end_sessions_of(db, user.id)
    db.commit()
    return user


def authenticate_admin(db: Session, *, email: str, password: str) -> AdminUser | None:
    """The admin user if the password matches, else ``None``. Records the sign-in time."""
    user = db.scalar(select(AdminUser).where(AdminUser.email == email.strip().lower()))
    if user is None:
        # Spend the same time as a real check so response times do not reveal which emails exist.
        _password_hasher.hash(password)
        return None
    try:
        _password_hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _password_hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _password_hasher.hash(password)
    user.last_login_at = clock.now()
    db.commit()
    return user


def admin_password_matches(db: Session, *, email: str, password: str) -> bool:
    """Whether ``password`` is the admin user's current one, without signing them in."""
    try:
        email = _normalise_email(email)
    except InvalidInput:
        return False
    user = db.scalar(select(AdminUser).where(AdminUser.email == email))
    if user is None:
        return False
    try:
        return bool(_password_hasher.verify(user.password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def get_admin_user(db: Session, *, user_id: str) -> AdminUser | None:
    return db.get(AdminUser, user_id)


def count_admin_users(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(AdminUser)) or 0


def generate_password() -> str:
    return secrets.token_urlsafe(12)


# ------------------------------------------------------------------------------ privacy
# The platform's part of export and erasure (rapport.flows.privacy): the answers stored under
# Idempotency-Keys copy what the command answered (a customer, an order, a ticket...). Admin
# users and API keys are staff, not customers; jobs carry ids only.

PRIVACY_TABLES = ("idempotency_keys",)
ERASED_ANSWER = {
    "type": "https://rapport.dev/problems/erased",
    "title": "Gone",
    "status": 410,
    "detail": "This request's answer named a person whose data has since been erased",
}


def _stored_answers_naming(subject: PrivacySubject) -> Any:
    """The stored answers that hold one of the person's ids or identity values as a whole
    JSON string (every command answering about a customer names them), or whose scope ends
    with it (loyalty's keys named the member there until 2026-12-07; such records may still
    be stored): a value that merely contains it (an order total holding an external number's
    digits) is not theirs."""
    answer = cast(IdempotencyRecord.response_body, Text)
    return or_(
        *(
            condition
            for value in subject.identifiers
            for condition in (
                # As SQLite's JSON text (ASCII-escaped) and PostgreSQL's jsonb text write it.
                answer.contains(json.dumps(value), autoescape=True),
                answer.contains(json.dumps(value, ensure_ascii=False), autoescape=True),
                IdempotencyRecord.scope.endswith(f":{value}", autoescape=True),
            )
        )
    )


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """Answers stored for retries that name the person."""
    if not subject.identifiers:
        return {"stored_answers": []}
    return {
        "stored_answers": [
            {
                "stored_at": record.completed_at.isoformat() if record.completed_at else None,
                "status": record.response_status,
                "answer": record.response_body,
            }
            for record in db.scalars(
                select(IdempotencyRecord)
                .where(_stored_answers_naming(subject))
                .order_by(IdempotencyRecord.created_at)
            )
        ]
    }


def _keys_naming(db: Session, subject: PrivacySubject) -> set[tuple[str, str]]:
    """The stored (scope, key) pairs whose key holds one of the person's ids or identity
    values as a whole word (``signup-ivy@example.com``, ``earn-C-100-1``; not ``earn-C-1000``)."""
    words = re.compile(
        r"(?<![0-9a-z])(?:"
        + "|".join(re.escape(value) for value in sorted(subject.identifiers))
        + r")(?![0-9a-z])",
        re.IGNORECASE,
    )
    candidates = db.execute(
        select(IdempotencyRecord.scope, IdempotencyRecord.key).where(
            or_(
                *(
                    IdempotencyRecord.key.contains(value, autoescape=True)
                    for value in subject.identifiers
                )
            )
        )
    )
    return {(scope, key) for scope, key in candidates if words.search(key)}


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    """Replace every stored answer that names the person, or whose key does, by ``410
    Gone``, and the key by its digest (``idempotency.erased_key``: the key may spell the
    person out): a retry with the same key still finds it, changes nothing and reveals
    nothing."""
    if not subject.identifiers:
        return
    theirs = {
        (scope, key)
        for scope, key in db.execute(
            select(IdempotencyRecord.scope, IdempotencyRecord.key).where(
                _stored_answers_naming(subject)
            )
        )
    }
    theirs |= _keys_naming(db, subject)
    for scope, key in sorted(theirs):
        record = IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
        digest = key if key.startswith(ERASED_KEY_PREFIX) else erased_key(key)
        db.execute(
            update(IdempotencyRecord)
            .where(*record, IdempotencyRecord.status == "done")
            .values(key=digest, response_status=410, response_body=ERASED_ANSWER)
        )
        # A command still running under such a key (the erasure's own) stores its answer
        # under the digest when it completes.
        db.execute(
            update(IdempotencyRecord)
            .where(*record, IdempotencyRecord.status == "running")
            .values(key=digest)
        )
