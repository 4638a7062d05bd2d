"""An event a processor's handler raises on stops that processor only there, and not for
good: the events before it are applied, the processors beside it go on, the event is tried
again on the next ticks and then held (set aside, shown, retried by an operator). A failure
that says nothing about the event (the database busy) is never counted against it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from rapport.cli import app as cli
from rapport.events import processors
from rapport.events.models import Event, HeldEvent, ProcessorCursor
from rapport.events.processors import Processor, retry_held, run_processors
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.events.factories import tracked
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in

START = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture
def frozen() -> clock.FrozenClock:
    at = clock.FrozenClock(START)
    clock.set_clock(at)
    return at


def _log(url: str, *paths: str) -> None:
    with open_session(url) as db:
        for path in paths:
            tracked(db, type="page_viewed", channel="web", properties={"path": path})
        db.commit()


class Recorder:
    """A handler that applies each event by writing a row (in the processor's transaction,
    so what a failed batch wrote goes with it), and raises on ``/poison`` until mended."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.mended = False

    def __call__(self, db: Session, events: list[Event]) -> None:
        for event in events:
            path = str((event.properties or {}).get("path"))
            if path == "/poison" and not self.mended:
                raise ValueError(f"cannot apply {path}: price 1e308 is out of range")
            db.add(ProcessorCursor(name=f"applied {path}", position=0, updated_at=clock.now()))
            db.flush()  # a second apply of the same event would break the primary key

    @property
    def applied(self) -> set[str]:
        with open_session(self.url) as db:
            names = db.scalars(
                select(ProcessorCursor.name).where(ProcessorCursor.name.like("applied %"))
            )
            return {name.removeprefix("applied ") for name in names}


@pytest.fixture
def recorder(committed_url: str, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    handler = Recorder(committed_url)
    seen: list[str] = []

    def counting(db: Session, events: list[Event]) -> None:
        seen.extend(str((e.properties or {}).get("path")) for e in events)

    monkeypatch.setattr(
        processors,
        "_processors",
        {
            "test.picky": Processor(name="test.picky", handle=handler),
            "test.counting": Processor(name="test.counting", handle=counting),
        },
    )
    handler.beside = seen  # type: ignore[attr-defined]
    return handler


def _cursor(url: str, name: str) -> int:
    with open_session(url) as db:
        return db.scalar(select(ProcessorCursor.position).where(ProcessorCursor.name == name)) or 0


def _tries(url: str) -> list[HeldEvent]:
    with open_session(url) as db:
        return list(db.scalars(select(HeldEvent)))


def _positions(url: str) -> dict[str, int]:
    with open_session(url) as db:
        return {
            str((e.properties or {}).get("path")): e.position
            for e in db.scalars(select(Event).order_by(Event.position))
        }


def test_a_failing_event_stops_its_processor_there_and_holds_up_no_other(
    committed_url: str, recorder: Recorder, frozen: clock.FrozenClock
) -> None:
    # given three events, the second of which the first processor cannot apply
    _log(committed_url, "/a", "/poison", "/c")
    at = _positions(committed_url)

    # when the processors are advanced: no error escapes, the worker's tick goes on
    run_processors(database_url=committed_url)

    # then the picky one applied what came before the event and waits at it, with one try
    # counted; the other read all three
    assert recorder.applied == {"/a"}
    assert _cursor(committed_url, "test.picky") == at["/a"]
    assert recorder.beside == ["/a", "/poison", "/c"]  # type: ignore[attr-defined]
    [entry] = _tries(committed_url)
    assert (entry.position, entry.attempts, entry.held_at) == (at["/poison"], 1, None)
    assert entry.error == "ValueError: cannot apply /poison: price 1e308 is out of range"


def test_an_event_is_held_after_three_tries_over_a_minute_and_the_processor_goes_on(
    committed_url: str, recorder: Recorder, frozen: clock.FrozenClock
) -> None:
    _log(committed_url, "/a", "/poison", "/c")
    at = _positions(committed_url)

    # three ticks within the minute: tried each time, never passed over
    for _ in range(3):
        run_processors(database_url=committed_url)
        frozen.advance(timedelta(seconds=10))
    [entry] = _tries(committed_url)
    assert (entry.attempts, entry.held_at) == (3, None)
    assert _cursor(committed_url, "test.picky") == at["/a"]

    # once a minute has passed since the first try, the next failure holds it
    frozen.advance(timedelta(seconds=31))
    run_processors(database_url=committed_url)
    [entry] = _tries(committed_url)
    assert entry.attempts == 4
    assert entry.held_at == START + timedelta(seconds=61)
    assert recorder.applied == {"/a", "/c"}
    assert _cursor(committed_url, "test.picky") == at["/c"]

    # and it is listed for the operator, with what the handler met
    with open_session(committed_url) as db:
        total, held = processors.held_events(db)
    assert total == 1
    assert (held[0].processor, held[0].event_type, held[0].attempts) == (
        "test.picky",
        "page_viewed",
        4,
    )


def test_a_try_that_succeeds_later_leaves_no_trace(
    committed_url: str, recorder: Recorder, frozen: clock.FrozenClock
) -> None:
    _log(committed_url, "/poison", "/b")
    run_processors(database_url=committed_url)
    assert len(_tries(committed_url)) == 1

    # the cause passes (a row another writer had not committed yet, say)
    recorder.mended = True
    run_processors(database_url=committed_url)

    assert recorder.applied == {"/poison", "/b"}
    assert _tries(committed_url) == []


def test_a_busy_database_is_never_counted_against_the_event(
    committed_url: str, monkeypatch: pytest.MonkeyPatch, frozen: clock.FrozenClock
) -> None:
    def busy(db: Session, events: list[Event]) -> None:
        raise OperationalError("UPDATE points", {}, Exception("database is locked"))

    monkeypatch.setattr(
        processors, "_processors", {"test.busy": Processor(name="test.busy", handle=busy)}
    )
    _log(committed_url, "/a")

    for _ in range(5):
        with pytest.raises(OperationalError):
            run_processors(database_url=committed_url)
        frozen.advance(timedelta(minutes=1))

    assert _tries(committed_url) == []
    assert _cursor(committed_url, "test.busy") == 0


def _hold_poison(url: str, frozen: clock.FrozenClock) -> None:
    for _ in range(3):
        run_processors(database_url=url)
        frozen.advance(timedelta(seconds=40))
    assert [t.held_at is not None for t in _tries(url)] == [True]


def test_a_held_event_is_applied_by_a_retry_once_mended(
    committed_url: str, recorder: Recorder, frozen: clock.FrozenClock
) -> None:
    _log(committed_url, "/a", "/poison", "/c")
    _hold_poison(committed_url, frozen)

    # a retry before the cause is mended counts one more try and keeps it
    outcome = retry_held(database_url=committed_url)
    assert (outcome.applied, outcome.still_failing) == (0, 1)
    assert [t.attempts for t in _tries(committed_url)] == [4]

    # mended, the retry applies it once and releases it
    recorder.mended = True
    outcome = retry_held(database_url=committed_url)
    assert (outcome.applied, outcome.still_failing) == (1, 0)
    assert recorder.applied == {"/a", "/c", "/poison"}
    assert _tries(committed_url) == []
    assert retry_held(database_url=committed_url).applied == 0


def test_the_command_line_lists_and_retries_held_events(
    committed_url: str,
    recorder: Recorder,
    frozen: clock.FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", committed_url)
    from rapport.platform.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.setattr("rapport.domains.load_tasks", lambda: None)  # keep the test's two
    runner = CliRunner()
    try:
        assert "No event is held" in runner.invoke(cli, ["events", "held"]).output
        _log(committed_url, "/poison")
        _hold_poison(committed_url, frozen)

        listed = runner.invoke(cli, ["events", "held"])
        assert listed.exit_code == 0, listed.output
        said = " ".join(listed.output.split())  # as read, whatever the terminal's width
        assert "test.picky held event" in said
        assert "price 1e308 is out of range" in said
        assert "1 held." in said
        assert "then run: rapport events retry" in said

        unknown = runner.invoke(cli, ["events", "retry", "--processor", "test.nobody"])
        assert unknown.exit_code == 2
        assert "There is no processor 'test.nobody'" in unknown.output
        assert "test.picky" in unknown.output

        recorder.mended = True
        retried = runner.invoke(cli, ["events", "retry", "--processor", "test.picky"])
        assert retried.exit_code == 0, retried.output
        assert "1 applied and released; 0 still failing." in retried.output
        assert _tries(committed_url) == []
    finally:
        get_settings.cache_clear()


def test_the_event_processing_page_shows_held_events(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    event = tracked(db, type="order_completed", channel="web", properties={})
    db.flush()
    db.add(
        HeldEvent(
            processor="loyalty.earning",
            position=event.position,
            attempts=3,
            error="ValueError: total 1e308 is out of range",
            first_failed_at=START,
            last_failed_at=START + timedelta(minutes=1),
            held_at=START + timedelta(minutes=1),
        )
    )
    db.commit()
    assert sign_in(client).status_code == 303

    page = client.get("/admin/settings/processing").text

    assert "1</strong> event is held" in page
    assert event.event_id in page
    assert "total 1e308 is out of range" in page
    assert "rapport events retry" in page


def _deterministic_operational_error(db: Session) -> None:
    """A statement every try meets again, which the driver reports as an OperationalError:
    a table that does not exist on SQLite, a function called with more arguments than
    PostgreSQL allows (SQLSTATE 54023; its missing table is a ProgrammingError)."""
    if db.get_bind().dialect.name == "sqlite":
        db.execute(text("SELECT points FROM loyalty_points_before_the_migration"))
    else:
        db.execute(text(f"SELECT concat({', '.join(['1'] * 101)})"))


def test_an_operational_error_every_try_meets_again_is_counted_and_held(
    committed_url: str, monkeypatch: pytest.MonkeyPatch, frozen: clock.FrozenClock
) -> None:
    def broken(db: Session, events: list[Event]) -> None:
        for event in events:
            if (event.properties or {}).get("path") == "/poison":
                _deterministic_operational_error(db)
            db.add(
                ProcessorCursor(
                    name=f"applied {event.position}", position=0, updated_at=clock.now()
                )
            )

    monkeypatch.setattr(
        processors, "_processors", {"test.broken": Processor(name="test.broken", handle=broken)}
    )
    _log(committed_url, "/a", "/poison", "/c")
    at = _positions(committed_url)

    # the first tick counts a try, where it raised and counted none, every tick, for good
    run_processors(database_url=committed_url)
    [entry] = _tries(committed_url)
    assert (entry.position, entry.attempts, entry.held_at) == (at["/poison"], 1, None)
    assert entry.error.startswith("OperationalError: ")
    assert _cursor(committed_url, "test.broken") == at["/a"]

    # and after three tries over a minute it is held and the processor goes on past it
    _hold_poison(committed_url, frozen)
    assert _cursor(committed_url, "test.broken") == at["/c"]


def test_a_passing_database_error_from_the_driver_is_still_not_counted(
    committed_url: str, monkeypatch: pytest.MonkeyPatch, frozen: clock.FrozenClock
) -> None:
    """The errors that pass, as each driver reports them: SQLite's busy database, a
    PostgreSQL serialization failure, deadlock, statement timeout and lost connection."""
    import sqlite3

    import psycopg.errors

    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    passing = [
        busy,
        sqlite3.OperationalError("database is locked"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.OperationalError("connection failed: Connection refused"),
    ]
    for orig in passing:
        assert processors._passing(OperationalError("UPDATE points", {}, orig)), orig
    deterministic = [
        sqlite3.OperationalError("too many SQL variables"),
        sqlite3.OperationalError("no such column: points"),
        psycopg.errors.TooManyArguments("cannot pass more than 100 arguments to a function"),
        psycopg.errors.ProgramLimitExceeded("index row size exceeds maximum"),
    ]
    for orig in deterministic:
        assert not processors._passing(OperationalError("UPDATE points", {}, orig)), orig
