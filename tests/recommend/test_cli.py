"""``rapport recommend``: what the command line says about a trained model."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform.console import console
from rapport.platform.db import open_session
from rapport.platform.settings import get_settings
from rapport.recommend import service
from rapport.recommend.cli import measured_lines, recommend_app
from tests.conftest import migrated_sqlite
from tests.loyalty.factories import make_customer
from tests.orders.factories import order_body, seed_catalog

from .test_admin import MEASURED


def test_training_reports_each_protocol_and_the_best_part_in_the_admin_pages_words() -> None:
    # given a version whose best parts alone were UP-CF@r ("upcf") and EASE
    version = service.ModelVersion(version="v1", metrics=MEASURED)
    # then the command line names them as the admin page does, never by the model's codes
    assert measured_lines(version) == [
        "Last 28 days, repeats allowed: served Recall@20 0.316"
        " (best part alone, Customers like them: 0.303)",
        "Last 28 days, new items only: served Recall@20 0.132 (best part alone, EASE: 0.125)",
    ]


def test_a_tiny_shops_figures_say_they_are_too_few_to_tell() -> None:
    # given a version measured on 40 validation customers
    tiny = {**MEASURED, "repeat": {**MEASURED["repeat"], "users": 40}}
    version = service.ModelVersion(version="v1", metrics=tiny)
    # then its line gives the figures and says they tell nothing of which does better
    assert measured_lines(version)[0] == (
        "Last 28 days, repeats allowed: served Recall@20 0.316"
        " (best part alone, Customers like them: 0.303); on only 40 customers, those the"
        " weights were chosen on: too few to tell which does better (that takes 500)"
    )


def test_a_version_training_could_not_measure_says_why() -> None:
    metrics = {"measured": False, "reason": "only 12 customers bought both in the last 28 days"}
    version = service.ModelVersion(version="v1", metrics=metrics)
    assert measured_lines(version) == [
        "Not measured on the history's last weeks: only 12 customers bought both in the last"
        " 28 days; the default weights serve."
    ]


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = migrated_sqlite(tmp_path / "cli.db")
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.mark.parametrize("width", [80, 60])
def test_versions_show_each_id_whole_on_a_narrow_terminal(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    # given two versions trained the same day, whose ids differ only at the end
    names = ["20261207-160328-e185", "20261207-160330-a1b2"]
    with open_session(database_url) as db:
        for minute, name in enumerate(names):
            db.add(
                service.ModelVersion(
                    version=name,
                    trained_at=datetime(2026, 12, 7, 16, minute, tzinfo=UTC),
                    file_name=f"{name}.npz",
                    customers=123_456,
                    items=34_000,
                    purchases=230_000,
                    train_seconds=12.5,
                    params={},
                    metrics=MEASURED,
                    trained_by="test",
                )
            )
        db.commit()
    directory = service.models_directory(tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    service.make_current(directory, names[1])
    # when they are listed at 80 columns (a table) or 60 (a line each)
    monkeypatch.setattr(console, "width", width)
    listed = CliRunner().invoke(recommend_app, ["versions"])
    # then every id is there whole, so that they can be told apart
    assert listed.exit_code == 0, listed.output
    assert "…" not in listed.output
    assert re.findall(r"2026\d{4}-\d{6}-[0-9a-f]{4}", listed.output) == names[::-1]
    lines = listed.output.splitlines()
    if width == 80:  # a table that fits
        assert all(len(line) <= width for line in lines)
    else:  # a line per version, the id first: the terminal wraps the rest
        assert [line.split()[0] for line in lines if line.startswith("2026")] == names[::-1]
    serving = next(line for line in lines if names[1] in line)
    assert serving.rstrip().endswith(("yes", "serving"))
    assert "0.316" in serving
    assert "0.132" in serving


def test_a_version_of_one_customer_is_not_said_in_the_plural(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_session(database_url) as db:
        db.add(
            service.ModelVersion(
                version="20261207-160328-e185",
                trained_at=datetime(2026, 12, 7, 16, tzinfo=UTC),
                file_name="v.npz",
                customers=1,
                items=1,
                purchases=1,
                train_seconds=0.1,
                params={},
                metrics={"measured": False, "reason": "there are no purchases yet"},
                trained_by="test",
            )
        )
        db.commit()
    monkeypatch.setattr(console, "width", 60)  # a line per version
    listed = CliRunner().invoke(recommend_app, ["versions"])
    assert "1 customer  1 item" in listed.output
    assert "customers" not in listed.output.split("R@20")[0]


def test_training_before_any_order_trains_nothing_and_says_so(
    database_url: str, tmp_path: Path
) -> None:
    trained = CliRunner().invoke(recommend_app, ["train"])
    assert trained.exit_code == 0, trained.output
    assert "No orders to learn from yet: nothing trained." in trained.output
    with open_session(database_url) as db:
        assert service.list_versions(db) == []
    assert service.active_version(tmp_path) is None


def test_training_a_shop_whose_orders_are_all_cancelled_trains_nothing_and_says_so(
    database_url: str, tmp_path: Path
) -> None:
    with open_session(database_url) as db:
        seed_catalog(db, stock=50)
        order = orders.place_order(
            db, order=OrderIn.model_validate(order_body(customer_id=make_customer(db)))
        )
        orders.cancel_order(db, order_id=order.order_id)
    trained = CliRunner().invoke(recommend_app, ["train"])
    assert trained.exit_code == 0, trained.output
    assert "No purchases to learn from: every order is cancelled or returned." in " ".join(
        trained.output.split()
    )
    with open_session(database_url) as db:
        assert service.list_versions(db) == []
    assert service.active_version(tmp_path) is None
