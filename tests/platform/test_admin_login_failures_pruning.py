"""Wrong-password counters keep the email typed (anyone's, a customer's too) and the client
address: they are deleted once the limits forget them, 24 hours after the last failure, by the
hourly job ``platform.prune_login_failures`` and at each wrong password, where they stayed for
ever (only their count was reset)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.platform import admin_security, clock, jobs
from rapport.platform.models import AdminLoginFailures

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _subjects(db: Session) -> set[str]:
    return set(db.scalars(select(AdminLoginFailures.subject)))


def test_the_hourly_job_deletes_counters_forgotten_24_hours_after_their_last_failure(
    db: Session,
) -> None:
    # given wrong passwords for a customer's email from one address, and later another's
    moment = clock.FrozenClock(START)
    clock.set_clock(moment)
    admin_security.record_failure(
        db, admin_security.login_subjects("Ann@Example.org", "203.0.113.7")
    )
    moment.advance(timedelta(hours=20))
    admin_security.record_failure(
        db, admin_security.login_subjects("bo@example.org", "198.51.100.2")
    )
    assert any(s.kind == "platform.prune_login_failures" for s in jobs.registered_schedules())
    # when the job runs just before the first run is forgotten, nothing goes
    moment.advance(timedelta(hours=4) - timedelta(seconds=1))
    jobs.prune_login_failures(db, {})
    assert _subjects(db) == {
        "account:ann@example.org",
        "address:203.0.113.7",
        "account:bo@example.org",
        "address:198.51.100.2",
    }
    # then once 24 hours have passed since its last failure, the first email and address go
    moment.advance(timedelta(seconds=1))
    jobs.prune_login_failures(db, {})
    assert _subjects(db) == {"account:bo@example.org", "address:198.51.100.2"}
    moment.advance(timedelta(hours=20))
    jobs.prune_login_failures(db, {})
    assert _subjects(db) == set()


def test_a_wrong_password_deletes_the_forgotten_counters_on_the_way(db: Session) -> None:
    # given a counter whose last failure was a day ago, with the lock it once had long over
    moment = clock.FrozenClock(START)
    clock.set_clock(moment)
    old = admin_security.login_subjects("ann@example.org", "203.0.113.7")
    for _ in range(6):
        admin_security.record_failure(db, old)
    moment.advance(timedelta(hours=24))
    # when someone else types a wrong password
    admin_security.record_failure(db, admin_security.login_subjects("bo@example.org", "10.0.0.9"))
    # then only the new counters are kept
    assert _subjects(db) == {"account:bo@example.org", "address:10.0.0.9"}
