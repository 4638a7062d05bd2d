"""`rapport fit-customer-value` on the command line: the tiers' values in the shop's currency."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from rapport.loyalty import service as loyalty
from rapport.orders import service
from rapport.orders.cli import fit_customer_value_command
from rapport.platform import clock
from rapport.platform.db import get_engine, open_session
from rapport.platform.formatting import money
from rapport.platform.settings import get_settings
from tests.orders.customer_value.factories import NOW, add_customer_with_orders

runner = CliRunner()


@pytest.fixture
def database(committed_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", committed_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield committed_url
    get_engine.cache_clear()
    get_settings.cache_clear()


def test_the_tiers_predicted_values_are_money_in_the_shops_currency(database: str) -> None:
    # given a shop in yen whose customers bought ¥25,000 at a time
    clock.set_clock(lambda: NOW)
    with open_session() as db:
        loyalty.configure_program(db, currency="JPY")
        db.commit()
        add_customer_with_orders(
            db, name="yen-regular", days_ago=[3, 40, 80, 120], total_minor=25_000
        )
        for i in range(5):
            add_customer_with_orders(
                db, name=f"yen-other{i}", days_ago=[300 + i, 200], total_minor=25_000
            )
    app = typer.Typer()
    app.command()(fit_customer_value_command)
    # when the values are fitted on the command line
    result = runner.invoke(app, [])
    assert result.exit_code == 0, result.output
    # then each tier's value is said in yen, as the fit holds it (¥12,345 is no 123.45)
    with open_session() as db:
        tiers = service.value_tier_summary(db)
    assert tiers
    for tier in tiers:
        said = f"{tier.customers} customers, {money(tier.predicted_value_minor, 'JPY')}"
        assert said in result.output, result.output
