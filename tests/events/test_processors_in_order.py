"""A processor whose events must apply in their order per customer or order (the profile
processor's consent and traits, points, tracked orders) holds a held event's later events of
the same customer behind it, and ``rapport events retry`` applies them after it, in their
order, so that an old statement never lands over a newer one. The other customers' events go
on meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from rapport.cli import app as cli
from rapport.customers import service as customers
from rapport.events import processors
from rapport.events.models import Event, HeldEvent
from rapport.events.processors import Processor, retry_held, run_processors
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.customers.factories import track
from tests.events.factories import BrokenOn
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in

START = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture
def frozen() -> clock.FrozenClock:
    at = clock.FrozenClock(START)
    clock.set_clock(at)
    return at


@pytest.fixture
def broken(committed_url: str, monkeypatch: pytest.MonkeyPatch) -> BrokenOn:
    handler = BrokenOn()
    real = processors._processors["customers.profile"]
    assert real.in_order_by is not None  # the profile processor applies in order
    monkeypatch.setattr(
        processors,
        "_processors",
        {
            "customers.profile": Processor(
                name="customers.profile", handle=handler, in_order_by=real.in_order_by
            )
        },
    )
    return handler


def _consent(url: str, user_id: str, granted: bool, minute: int) -> Event:
    with open_session(url) as db:
        event = track(
            db,
            "consent_changed",
            user_id=user_id,
            at=START + timedelta(minutes=minute),
            properties={"purpose": "marketing_email", "granted": granted},
        )
        db.commit()
        return event


def _identify(url: str, user_id: str, email: str) -> None:
    with open_session(url) as db:
        track(db, "identified", user_id=user_id, at=START, properties={"traits": {"email": email}})
        db.commit()


def _emailable(url: str, user_id: str) -> bool:
    with open_session(url) as db:
        customer = customers.find_customer(db, kind="external_id", value=user_id)
        assert customer is not None
        return customers.has_consent(
            db, customer_id=customer.customer_id, purpose="marketing_email"
        )


def _history(url: str, user_id: str) -> list[bool]:
    with open_session(url) as db:
        customer = customers.find_customer(db, kind="external_id", value=user_id)
        assert customer is not None
        return [c.granted for c in customers.consent_history(db, customer_id=customer.customer_id)]


def _held(url: str) -> dict[str, int | None]:
    """Each held event's id, and the log position of the one it waits behind."""
    with open_session(url) as db:
        rows = db.execute(
            select(Event.event_id, HeldEvent.behind)
            .join(Event, Event.position == HeldEvent.position)
            .where(HeldEvent.held_at.is_not(None))
        ).all()
        return {row.event_id: row.behind for row in rows}


def _hold(url: str, frozen: clock.FrozenClock) -> None:
    for _ in range(3):
        run_processors(database_url=url)
        frozen.advance(timedelta(seconds=40))


def test_a_withdrawn_consent_is_not_undone_by_retrying_the_held_grant_before_it(
    committed_url: str, broken: BrokenOn, frozen: clock.FrozenClock
) -> None:
    # given Ana, known, and Ben
    _identify(committed_url, "C-ana", "ana@example.com")
    _identify(committed_url, "C-ben", "ben@example.com")
    run_processors(database_url=committed_url)
    # Ana grants marketing email from a kiosk the deploy cannot read, then withdraws it
    grant = _consent(committed_url, "C-ana", True, minute=1)
    broken.poisoned.add(grant.event_id)
    withdrawal = _consent(committed_url, "C-ana", False, minute=5)
    # and Ben grants it
    _consent(committed_url, "C-ben", True, minute=6)

    # when the grant is held
    _hold(committed_url, frozen)

    # then her withdrawal waits behind it, untried, while Ben's grant applied
    assert _held(committed_url) == {grant.event_id: None, withdrawal.event_id: grant.position}
    assert _history(committed_url, "C-ana") == []
    assert _emailable(committed_url, "C-ben")

    # a retry before the cause is mended leaves both held, in their order
    outcome = retry_held(database_url=committed_url)
    assert (outcome.applied, outcome.still_failing, outcome.still_waiting) == (0, 1, 1)
    assert _history(committed_url, "C-ana") == []

    # her next statement waits behind them too, the processor going on
    later = _consent(committed_url, "C-ana", True, minute=9)
    run_processors(database_url=committed_url)
    assert _held(committed_url)[later.event_id] == grant.position

    # once mended, the retry applies all three in their order: she last granted it
    broken.poisoned.clear()
    outcome = retry_held(database_url=committed_url)
    assert (outcome.applied, outcome.still_failing, outcome.still_waiting) == (3, 0, 0)
    assert _history(committed_url, "C-ana") == [True, False, True]
    assert _emailable(committed_url, "C-ana")
    assert _held(committed_url) == {}


def test_the_last_word_stands_when_the_held_one_is_retried(
    committed_url: str, broken: BrokenOn, frozen: clock.FrozenClock
) -> None:
    _identify(committed_url, "C-ana", "ana@example.com")
    grant = _consent(committed_url, "C-ana", True, minute=1)
    broken.poisoned.add(grant.event_id)
    _consent(committed_url, "C-ana", False, minute=5)
    _hold(committed_url, frozen)

    broken.poisoned.clear()
    retry_held(database_url=committed_url)

    # the grant was applied before the withdrawal that followed it, never over it
    assert _history(committed_url, "C-ana") == [True, False]
    assert not _emailable(committed_url, "C-ana")


def test_an_event_held_behind_another_that_fails_on_its_own_holds_its_customer_in_turn(
    committed_url: str, broken: BrokenOn, frozen: clock.FrozenClock
) -> None:
    _identify(committed_url, "C-ana", "ana@example.com")
    grant = _consent(committed_url, "C-ana", True, minute=1)
    withdrawal = _consent(committed_url, "C-ana", False, minute=5)
    last = _consent(committed_url, "C-ana", True, minute=9)
    broken.poisoned.add(grant.event_id)
    _hold(committed_url, frozen)
    assert set(_held(committed_url)) == {grant.event_id, withdrawal.event_id, last.event_id}

    # the first is mended, the second is not: it is tried, fails and holds the third
    broken.poisoned = {withdrawal.event_id}
    outcome = retry_held(database_url=committed_url)
    assert (outcome.applied, outcome.still_failing, outcome.still_waiting) == (1, 1, 1)
    assert _held(committed_url) == {withdrawal.event_id: None, last.event_id: withdrawal.position}
    assert _history(committed_url, "C-ana") == [True]


def test_the_command_says_which_event_one_waits_behind(
    committed_url: str,
    broken: BrokenOn,
    frozen: clock.FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _identify(committed_url, "C-ana", "ana@example.com")
    grant = _consent(committed_url, "C-ana", True, minute=1)
    broken.poisoned.add(grant.event_id)
    withdrawal = _consent(committed_url, "C-ana", False, minute=5)
    _hold(committed_url, frozen)

    monkeypatch.setenv("RAPPORT_DATABASE_URL", committed_url)
    from rapport.platform.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.setattr("rapport.domains.load_tasks", lambda: None)  # keep the test's one
    try:
        listed = CliRunner().invoke(cli, ["events", "held"])
        assert listed.exit_code == 0, listed.output
        said = " ".join(listed.output.split())  # as read, whatever the terminal's width
        assert f"customers.profile holds event {withdrawal.event_id}" in said
        assert f"behind held event {grant.event_id} of the same customer or order" in said
        assert "2 held (1 behind an earlier held event of the same customer or order)" in said

        retried = CliRunner().invoke(cli, ["events", "retry"])
        assert retried.exit_code == 0, retried.output
        said = " ".join(retried.output.split())
        assert "0 applied and released; 1 still failing; 1 still waiting behind it." in said
    finally:
        get_settings.cache_clear()


def test_the_event_processing_page_says_which_event_one_waits_behind(
    client: TestClient, db: Session
) -> None:
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    grant = track(db, "consent_changed", user_id="C-ana", properties={"granted": True})
    withdrawal = track(db, "consent_changed", user_id="C-ana", properties={"granted": False})
    for event, behind in ((grant, None), (withdrawal, grant.position)):
        db.add(
            HeldEvent(
                processor="customers.profile",
                position=event.position,
                attempts=0 if behind else 3,
                error="ValueError: unknown source 'kiosk'",
                first_failed_at=START,
                last_failed_at=START,
                held_at=START + timedelta(minutes=1),
                behind=behind,
            )
        )
    db.commit()
    assert sign_in(client).status_code == 303

    page = client.get("/admin/settings/processing").text

    assert "2</strong> events are held" in page
    assert "1 of them waits, untried, behind an earlier held event" in page
    assert f"Waits behind <code>{grant.event_id}</code>" in page
    assert "unknown source &#39;kiosk&#39;" in page


def test_a_held_event_that_cannot_be_mended_is_skipped_and_those_behind_it_apply(
    committed_url: str,
    broken: BrokenOn,
    frozen: clock.FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a grant nobody can read, held, with her withdrawal behind it
    _identify(committed_url, "C-ana", "ana@example.com")
    grant = _consent(committed_url, "C-ana", True, minute=1)
    broken.poisoned.add(grant.event_id)
    withdrawal = _consent(committed_url, "C-ana", False, minute=5)
    _hold(committed_url, frozen)

    monkeypatch.setenv("RAPPORT_DATABASE_URL", committed_url)
    from rapport.platform.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.setattr("rapport.domains.load_tasks", lambda: None)  # keep the test's one
    try:
        # an event nobody holds is refused, naming it, and changes nothing
        unknown = CliRunner().invoke(cli, ["events", "skip", "evt_nobody"])
        assert unknown.exit_code == 2
        assert "No processor holds event 'evt_nobody'" in " ".join(unknown.output.split())
        assert len(_held(committed_url)) == 2

        # when the operator gives up on the grant
        skipped = CliRunner().invoke(cli, ["events", "skip", grant.event_id])
        assert skipped.exit_code == 0, skipped.output
        said = " ".join(skipped.output.split())
        assert f"Event {grant.event_id} skipped by customers.profile" in said
        retried = CliRunner().invoke(cli, ["events", "retry"])
        assert retried.exit_code == 0, retried.output
    finally:
        get_settings.cache_clear()

    # then the withdrawal behind it applies, and the grant never does
    assert " ".join(retried.output.split()).startswith("1 applied and released; 0 still failing.")
    assert _held(committed_url) == {}
    assert _history(committed_url, "C-ana") == [False]
    assert withdrawal.event_id not in _held(committed_url)
