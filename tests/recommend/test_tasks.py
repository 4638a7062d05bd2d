"""The nightly training job: once a day, and not again on a day whose model is trained."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from rapport.platform import clock, jobs
from rapport.platform.settings import Settings
from rapport.recommend import service, tasks

from .factories import NOW, seed_shop


@pytest.fixture
def shop(db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> clock.FrozenClock:
    frozen = clock.FrozenClock(NOW)
    clock.set_clock(frozen)
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    seed_shop(db)
    return frozen


def _versions(db: Session) -> list[str]:
    return [v.trained_by for v in reversed(service.list_versions(db))]


def test_the_nightly_run_leaves_out_a_day_already_trained_but_not_the_next(
    db: Session, settings: Settings, shop: clock.FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    # given a model trained today (as `rapport init --demo` does before the first serve)
    service.train_model(db, data_dir=settings.data_dir, trained_by="init")

    # when the worker's nightly run comes the same day, it trains nothing, and says why
    with caplog.at_level(logging.INFO, logger="rapport.recommend.tasks"):
        tasks.train(db, {})
    assert _versions(db) == ["init"]
    assert "nightly training left out: a model was already trained since" in caplog.text

    # when someone asks for training, it runs whatever the day
    shop.advance(timedelta(minutes=5))
    tasks.train(db, {"by": "admin"})
    assert _versions(db) == ["init", "admin"]

    # when the next day's nightly run comes, it trains
    shop.advance(timedelta(days=1))
    tasks.train(db, {})
    assert _versions(db) == ["init", "admin", "schedule"]


def test_a_day_starts_at_midnight_utc_as_the_schedule_counts_it(shop: clock.FrozenClock) -> None:
    start = jobs.period_start(tasks.NIGHTLY)
    assert start == NOW.replace(hour=0, minute=0, second=0, microsecond=0)
