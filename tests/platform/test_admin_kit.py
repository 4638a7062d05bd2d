"""The admin kit: money and numbers in the operator's locale, paging, charts and their tables."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from rapport.platform import formatting
from rapport.platform.admin import NAV, NavItem, nav_sections
from rapport.platform.charts import Chart, Series
from rapport.platform.paging import PageRequest
from rapport.platform.settings import Settings


def test_money_is_shown_in_the_locale_and_currency_never_as_cents() -> None:
    assert formatting.money(1_234_550, "EUR", "en_GB") == "€12,345.50"
    assert formatting.money(1_234_550, "EUR", "de_DE") == "12.345,50\xa0€"
    # Yen have no minor unit: 1234 is ¥1,234, not ¥12.34.
    assert formatting.money(1234, "JPY", "en_GB") == "JP¥1,234"
    assert formatting.money(None, "EUR") == formatting.NOTHING


def test_the_currencies_a_shop_may_price_in_are_those_in_use_today() -> None:
    assert {"EUR", "GBP", "USD", "JPY", "CHF"} <= formatting.currencies()
    assert not {"DEM", "FRF", "XXX", "XTS"} & formatting.currencies()
    choices = formatting.currency_choices("en_GB")
    assert [code for code, _ in choices] == sorted(formatting.currencies())
    assert ("GBP", "GBP \u2013 British Pound") in choices
    assert ("EUR", "EUR \u2013 Euro") in formatting.currency_choices("de_DE")


def test_a_typed_amount_becomes_minor_units_and_too_many_decimals_are_refused() -> None:
    assert formatting.major_to_minor("12.34", "EUR") == 1234
    assert formatting.major_to_minor("100", "EUR") == 10_000
    assert formatting.major_to_minor("500", "JPY") == 500
    with pytest.raises(ValueError, match="more decimals than EUR allows"):
        formatting.major_to_minor("1.234", "EUR")


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_minor_units_survive_the_round_trip_through_the_major_unit(minor: int) -> None:
    assert formatting.major_to_minor(formatting.minor_to_major(minor, "EUR"), "EUR") == minor


def test_numbers_and_shares_follow_the_locale() -> None:
    assert formatting.number(1234567, "en_GB") == "1,234,567"
    assert formatting.number(1234567, "de_DE") == "1.234.567"
    assert formatting.number(Decimal("8.26"), "en_GB", digits=1) == "8.3"
    assert formatting.share(0.1234, "en_GB") == "12.3%"


def test_an_unknown_locale_is_refused_naming_the_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="RAPPORT_LOCALE"):
        Settings(locale="xx_NOPE", data_dir=tmp_path)
    assert Settings(locale="de-DE", data_dir=tmp_path).locale == "de_DE"


def test_a_page_request_past_the_end_shows_the_last_page() -> None:
    paging = PageRequest(page=9, per_page=50).of(120)
    assert (paging.page, paging.pages, paging.first_row, paging.last_row) == (3, 3, 101, 120)
    assert paging.has_previous
    assert not paging.has_next
    empty = PageRequest().of(0)
    assert (empty.page, empty.first_row, empty.last_row) == (1, 0, 0)


def test_a_chart_plots_money_in_the_major_unit_and_tabulates_the_same_rows() -> None:
    chart = Chart(
        id="revenue",
        kind="bar",
        labels=["Jan", "Feb"],
        series=[Series("members", [125_050, None]), Series("others", [99, 1000])],
        unit="money",
        currency="EUR",
    )
    datasets = chart.config()["data"]["datasets"]
    assert [d["data"] for d in datasets] == [[1250.5, None], [0.99, 10.0]]
    assert chart.rows() == [("Jan", [125_050, 99]), ("Feb", [None, 1000])]
    with pytest.raises(ValueError, match="has 1 values for 2 labels"):
        Chart(id="bad", kind="line", labels=["a", "b"], series=[Series("x", [1])])


def test_navigation_groups_pages_by_section_in_a_fixed_order() -> None:
    saved = list(NAV)
    try:
        NAV[:] = [
            NavItem("Overview", "/admin", "Overview"),
            NavItem("Webhook endpoints", "/admin/webhooks", "Settings"),
            NavItem("Program", "/admin/loyalty/program", "Loyalty"),
            NavItem("Customers", "/admin/customers", "Customers"),
            NavItem("Members", "/admin/loyalty", "Loyalty"),
        ]
        sections = nav_sections()
        assert [s.label for s in sections] == ["Overview", "Customers", "Loyalty", "Settings"]
        assert [i.label for i in sections[2].items] == ["Program", "Members"]
    finally:
        NAV[:] = saved
