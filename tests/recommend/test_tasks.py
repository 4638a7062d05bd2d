"""The nightly training job: once a day, and not again on a day whose model is trained."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import clock, jobs
from rapport.platform.db import begin_write_now, open_session
from rapport.platform.settings import Settings
from rapport.recommend import service, tasks
from tests.loyalty.factories import make_customer
from tests.orders.factories import order_body, seed_catalog

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


def test_the_nightly_run_reads_the_history_without_holding_up_the_shops_writes(
    committed_url: str, backend: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL locks rows, not the database: a reader never holds writers up")
    # given a shop whose nightly training is due
    clock.set_clock(clock.FrozenClock(NOW))
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    with open_session(committed_url) as db:
        seed_shop(db)
        db.commit()
    writer_free: list[bool] = []
    read_segments = service._segments_of_customers

    def segments_while_reading(db: Session, purchases: object) -> object:
        # (while the training still reads its history) an API request starts to write
        with open_session(committed_url) as other:
            writer_free.append(begin_write_now(other))
            other.rollback()
        return read_segments(db, purchases)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_segments_of_customers", segments_while_reading)

    # when the worker runs it
    with open_session(committed_url) as db:
        tasks.train(db, {})
        trained = _versions(db)

    # then the request could write meanwhile, and the model was trained
    assert writer_free == [True]
    assert trained == ["schedule"]


def _scheduled_run(committed_url: str) -> None:
    """What the worker does at a tick: queue the schedules' runs due, then run what is due."""
    with open_session(committed_url) as db:
        jobs.enqueue_schedules(db)
    jobs.run_due(worker_id="w1", database_url=committed_url)


def test_a_fresh_install_trains_nothing_until_history_arrives_then_within_the_hour(
    committed_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a fresh install, its worker's first tick (the first `rapport serve`)
    frozen = clock.FrozenClock(NOW)
    clock.set_clock(frozen)
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    _scheduled_run(committed_url)

    # then no model is trained: answers keep `model_version: null` and no items
    with open_session(committed_url) as db:
        assert _versions(db) == []
        answer = service.recommend(
            db, request=service.Request(placement="home"), data_dir=settings.data_dir
        )
    assert (answer.model_version, answer.items) == (None, [])
    assert service.active_version(settings.data_dir) is None

    # when history is imported later that same day, the next tick trains a model on it
    with open_session(committed_url) as db:
        seed_shop(db)
        db.commit()
    frozen.advance(tasks.TICK)
    _scheduled_run(committed_url)
    with open_session(committed_url) as db:
        assert _versions(db) == ["schedule"]
        answer = service.recommend(
            db, request=service.Request(placement="home"), data_dir=settings.data_dir
        )
    assert answer.model_version is not None
    assert answer.items

    # and the ticks after it that day train nothing more; the next day's first one does
    frozen.advance(tasks.TICK)
    _scheduled_run(committed_url)
    frozen.advance(timedelta(days=1))
    _scheduled_run(committed_url)
    with open_session(committed_url) as db:
        assert _versions(db) == ["schedule", "schedule"]


def test_training_asked_for_before_any_order_trains_nothing(
    db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    tasks.train(db, {"by": "admin"})
    assert _versions(db) == []
    assert service.active_version(settings.data_dir) is None


def test_a_shop_whose_orders_are_all_cancelled_gets_no_empty_model_at_any_tick(
    committed_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a shop whose only order was cancelled: it has orders, but no purchase
    frozen = clock.FrozenClock(NOW)
    clock.set_clock(frozen)
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    with open_session(committed_url) as db:
        seed_catalog(db, stock=50)
        order = orders.place_order(
            db, order=OrderIn.model_validate(order_body(customer_id=make_customer(db)))
        )
        orders.cancel_order(db, order_id=order.order_id, reason="payment declined")

    # when training is asked for, and the worker's ticks come through the day
    with open_session(committed_url) as db:
        with pytest.raises(service.NothingToLearn):
            service.train_model(db, data_dir=settings.data_dir, trained_by="admin")
        tasks.train(db, {"by": "admin"})
    for _ in range(3):
        _scheduled_run(committed_url)
        frozen.advance(tasks.TICK)

    # then no version is recorded or saved, and answers keep `model_version: null`
    with open_session(committed_url) as db:
        assert _versions(db) == []
        answer = service.recommend(
            db, request=service.Request(placement="home"), data_dir=settings.data_dir
        )
    assert (answer.model_version, answer.items) == (None, [])
    assert service.active_version(settings.data_dir) is None
    assert not list(service.models_directory(settings.data_dir).glob("*.npz"))
