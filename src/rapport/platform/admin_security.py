"""Admin sign-in safety kept in the database, so every server process sees the same state:
server-side sessions (signing out ends them for good) and limits on wrong passwords per
account and per client address (backoff, then a lockout)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from rapport.platform import clock
from rapport.platform.db import insert_for
from rapport.platform.models import AdminLoginFailures, AdminSession, AdminUser

# ------------------------------------------------------------------------------ sessions


def _digest(token: str) -> str:
    # Only a digest is stored: a copy of the table cannot be replayed as cookies.
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: Session, *, user: AdminUser, max_age_seconds: int) -> str:
    """A new session for ``user``; returns the secret the cookie carries. Sessions past
    their expiry are swept out on the way."""
    now = clock.now()
    db.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    db.add(
        AdminSession(
            id_hash=_digest(token),
            admin_user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=max_age_seconds),
        )
    )
    db.commit()
    return token


def session_user(db: Session, token: str) -> AdminUser | None:
    """The admin signed in with ``token``, if that session exists and has not expired."""
    found = db.get(AdminSession, _digest(token))
    if found is None or clock.as_utc(found.expires_at) <= clock.now():
        return None
    return db.get(AdminUser, found.admin_user_id)


def end_session(db: Session, token: str) -> None:
    db.execute(delete(AdminSession).where(AdminSession.id_hash == _digest(token)))
    db.commit()


def end_sessions_of(db: Session, user_id: str) -> None:
    """Sign ``user_id`` out everywhere (a new password); the caller commits."""
    db.execute(delete(AdminSession).where(AdminSession.admin_user_id == user_id))


# ------------------------------------------------------------------------------ login limits


@dataclass(frozen=True)
class LoginLimit:
    """``free_tries`` wrong passwords in a row are let through; the next one refuses
    attempts for ``first_wait``, each further one for twice as long, up to ``lockout``. A
    run of failures is forgotten ``forget_after`` its last one, or at a successful sign-in."""

    free_tries: int
    first_wait: timedelta = timedelta(seconds=30)
    lockout: timedelta = timedelta(hours=1)
    forget_after: timedelta = timedelta(hours=24)

    def wait_after(self, failures: int) -> timedelta | None:
        extra = failures - self.free_tries
        if extra <= 0:
            return None
        # Capped before it is raised, so a long run cannot overflow.
        wait: timedelta = self.first_wait * 2 ** min(extra - 1, 20)
        return min(wait, self.lockout)


# Per account: a person mistypes a few times; a guesser needs thousands of tries.
ACCOUNT_LIMIT = LoginLimit(free_tries=5)
# Per address: several people may share one (an office), so more tries before the waits.
ADDRESS_LIMIT = LoginLimit(free_tries=20)


def _account(email: str) -> str:
    return f"account:{email.strip().lower()[:320]}"


def _address(address: str) -> str:
    return f"address:{address.strip()[:64]}"


# Past this a counter's run of failures is forgotten: the row then only says which email was
# typed from which address, so it is deleted (at each wrong password and by the hourly job
# ``platform.prune_login_failures``) rather than kept.
FORGOTTEN_AFTER = max(ACCOUNT_LIMIT.forget_after, ADDRESS_LIMIT.forget_after)


def prune_login_failures(db: Session, now: datetime | None = None) -> int:
    """Delete the counters whose last wrong password is ``FORGOTTEN_AFTER`` ago or more and
    that hold no lock in force; how many. The caller commits."""
    now = now or clock.now()
    pruned = db.execute(
        delete(AdminLoginFailures).where(
            AdminLoginFailures.last_failure_at <= now - FORGOTTEN_AFTER,
            or_(
                AdminLoginFailures.locked_until.is_(None),
                AdminLoginFailures.locked_until <= now,
            ),
        )
    )
    return int(cast(Any, pruned).rowcount or 0)


def login_subjects(email: str, address: str) -> dict[str, LoginLimit]:
    """The counters a sign-in attempt counts against, with their limits."""
    return {_account(email): ACCOUNT_LIMIT, _address(address): ADDRESS_LIMIT}


def locked_until(db: Session, subjects: dict[str, LoginLimit]) -> datetime | None:
    """When the latest lock on any of ``subjects`` ends, if one is in force now."""
    latest = db.scalar(
        select(func.max(AdminLoginFailures.locked_until)).where(
            AdminLoginFailures.subject.in_(list(subjects))
        )
    )
    if latest is None:
        return None
    latest = clock.as_utc(latest)
    return latest if latest > clock.now() else None


def record_failure(db: Session, subjects: dict[str, LoginLimit]) -> datetime | None:
    """Count one wrong password against each subject (atomically, so racing attempts on
    other processes are all counted) and lock those past their free tries; counters long
    forgotten are deleted on the way. Returns when the latest lock it set ends, if any.
    Commits."""
    now = clock.now()
    prune_login_failures(db, now)
    table: Any = AdminLoginFailures.__table__
    insert = insert_for(db)
    latest: datetime | None = None
    for subject, limit in subjects.items():
        statement = insert(table).values(
            subject=subject, failures=1, last_failure_at=now, locked_until=None
        )
        forgotten = table.c.last_failure_at <= now - limit.forget_after
        statement = statement.on_conflict_do_update(
            index_elements=["subject"],
            set_={
                "failures": case((forgotten, 1), else_=table.c.failures + 1),
                "last_failure_at": now,
            },
        ).returning(table.c.failures)
        failures = int(db.execute(statement).scalar_one())
        wait = limit.wait_after(failures)
        if wait is not None:
            until = now + wait
            db.execute(update(table).where(table.c.subject == subject).values(locked_until=until))
            latest = until if latest is None or until > latest else latest
    db.commit()
    return latest


def clear_failures(db: Session, subjects: Iterable[str]) -> int:
    """Start the counters afresh (a successful sign-in, or an operator lifting a lock); how
    many there were. Commits."""
    wanted = list(subjects)
    cleared = db.execute(delete(AdminLoginFailures).where(AdminLoginFailures.subject.in_(wanted)))
    db.commit()
    return int(cast(Any, cleared).rowcount or 0)


def lift_lock(db: Session, *, email: str | None = None, address: str | None = None) -> int:
    """Forget the wrong passwords counted against an account and/or a client address, so
    they may sign in at once; how many counters were cleared. Commits."""
    subjects = [*([_account(email)] if email else []), *([_address(address)] if address else [])]
    return clear_failures(db, subjects)


def wait_message(until: datetime) -> str:
    """'Try again in 4 minutes (at 14:05 UTC).'"""
    seconds = max(1, int((until - clock.now()).total_seconds() + 0.999))
    if seconds < 90:
        amount = f"{seconds} seconds"
    elif seconds < 90 * 60:
        amount = f"{round(seconds / 60)} minutes"
    else:
        amount = f"{round(seconds / 3600)} hours"
    at = clock.as_utc(until).strftime("%H:%M:%S" if seconds < 90 else "%H:%M")
    return f"Too many wrong passwords. Try again in {amount} (at {at} UTC)."
