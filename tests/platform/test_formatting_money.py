"""The admin's one reading of typed money (``formatting.parse_money``, behind every money field
through ``platform.admin.typed_money``): an amount written any of the documented ways in the
operator's locale reads back as that amount, what the pages themselves show included ("-€5.00",
en_IN's "€12,34,567.50"); text that could mean another amount is refused saying how to type
it, never read as a different amount. The loyalty forms' own cases:
tests/loyalty/test_admin_money_fields.py."""

from __future__ import annotations

import re

import pytest
from babel.numbers import get_decimal_symbol
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from rapport.loyalty.membership import plans as membership_plans
from rapport.platform import formatting
from tests.platform.admin_forms import page_form, post_form, typed

LOCALES = ("en_GB", "en_US", "de_DE", "fr_FR", "de_CH", "en_IN", "nl_NL", "he_IL", "ar_EG")
# IQD and RSD: ISO 4217 gives them decimals (3, 2), CLDR shows them without
CURRENCIES = ("EUR", "GBP", "USD", "CHF", "JPY", "INR", "KWD", "IQD", "RSD")
HOW = "type it like 1,234.50, with a comma between thousands and a point before the decimals"
amounts = st.integers(min_value=-(10**13), max_value=10**13)


@pytest.mark.parametrize(
    ("text", "locale", "minor"),
    [
        ("1,000.50", "en_GB", 100_050),
        ("0.5", "en_GB", 50),
        ("\u22125", "en_GB", -500),  # a Unicode minus
        ("€12", "en_GB", 1200),
        ("12 €", "en_GB", 1200),
        ("-€1,234.56", "en_GB", -123_456),  # as the pages show a negative amount
        ("€-5", "en_GB", -500),
        ("eur 12", "en_GB", 1200),
        ("1000,50", "de_DE", 100_050),
        ("1.000,50", "de_DE", 100_050),
        ("12,5", "de_DE", 1250),
        ("1 000,50", "fr_FR", 100_050),
        ("€12", "de_CH", 1200),  # de_CH writes EUR; "€" is the euro all the same
        ("1'234.50", "de_CH", 123_450),  # the keyboard's apostrophe for de_CH's U+2019
        ("€12,34,567.50", "en_IN", 123_456_750),  # en_IN's own grouping, as its pages show
        ("€1,234,567.50", "en_IN", 123_456_750),
        ("\u200f-1,234.50\xa0€", "ar_EG", -123_450),  # right-to-left marks are not the amount
    ],
)
def test_money_typed_the_documented_ways_reads_as_that_amount(
    text: str, locale: str, minor: int
) -> None:
    assert formatting.parse_money(text, "EUR", locale) == minor


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("1000,50", "en_GB"),
        ("1 000,50", "en_GB"),
        ("1.000,50", "en_GB"),
        ("12,5", "en_GB"),
        ("1e3", "en_GB"),
        ("$1,234.56", "en_GB"),  # another currency's amount
        ("--5", "en_GB"),
        ("0.5", "de_DE"),
        ("1,000.50", "de_DE"),
        ("1 000,50", "de_DE"),
    ],
)
def test_money_that_could_be_another_amount_is_refused_saying_how(text: str, locale: str) -> None:
    example = formatting.money_example("EUR", locale)
    with pytest.raises(formatting.MoneyUnreadable, match=re.escape(f"type it like {example}")):
        formatting.parse_money(text, "EUR", locale)


@given(
    minor=amounts,
    locale=st.sampled_from(LOCALES),
    currency=st.sampled_from(CURRENCIES),
)
def test_what_the_pages_write_reads_back_as_the_same_amount(
    minor: int, locale: str, currency: str
) -> None:
    assert formatting.parse_money(formatting.money(minor, currency, locale), currency, locale) == (
        minor
    )
    shown = formatting.money_input(minor, currency, locale)
    assert formatting.parse_money(shown, currency, locale) == minor


@given(
    minor=amounts,
    locale=st.sampled_from(LOCALES),
    currency=st.sampled_from(CURRENCIES),
    code_after=st.booleans(),
    minus=st.sampled_from(("-", "\u2212")),
    data=st.data(),
)
def test_an_amount_typed_plainly_reads_back_as_the_same_amount(
    minor: int,
    locale: str,
    currency: str,
    code_after: bool,
    minus: str,
    data: st.DataObject,
) -> None:
    # digits without grouping, the locale's decimal mark, as few decimals as the amount needs,
    # the currency's code on either side, a minus of either kind
    digits = formatting.minor_unit_digits(currency)
    whole, fraction = divmod(abs(minor), 10**digits)
    decimals = f"{fraction:0{digits}d}".rstrip("0") if digits else ""
    number = str(whole) + (get_decimal_symbol(locale) + decimals if decimals else "")
    code = data.draw(st.sampled_from((currency, currency.lower(), "")))
    text = f"{number} {code}" if code_after else f"{code} {number}"
    text = f"{minus}{text.strip()}" if minor < 0 else text
    assert formatting.parse_money(text, currency, locale) == minor


@given(
    minor=amounts,
    locale=st.sampled_from(LOCALES),
    written_in=st.sampled_from(LOCALES),
    currency=st.sampled_from(("EUR", "GBP", "JPY", "CHF")),
)
def test_an_amount_written_in_another_locale_is_refused_or_read_right(
    minor: int, locale: str, written_in: str, currency: str
) -> None:
    # "1.234,50" typed where "1,234.50" is the way: refused, never read as 1.23
    text = formatting.money_input(minor, currency, written_in)
    try:
        read = formatting.parse_money(text, currency, locale)
    except formatting.MoneyUnreadable:
        return
    assert read == minor


def test_a_plan_fee_typed_with_the_code_in_lower_case_is_saved_as_typed(
    admin: TestClient, db: Session
) -> None:
    page = admin.get("/admin/loyalty/plans").text
    fields = page_form(page, action="/admin/loyalty/plans")
    for name, value in (("plan_id", "big"), ("name", "Big"), ("fee", "eur 1,000.50")):
        fields = typed(fields, name, value)
    assert post_form(admin, "/admin/loyalty/plans", fields).status_code == 303
    plan = membership_plans.get_plan(db, plan_id="big")
    assert plan is not None
    assert plan.fee_minor == 100_050


def test_a_plan_fee_in_another_currency_is_refused_beside_it(
    admin: TestClient, db: Session
) -> None:
    page = admin.get("/admin/loyalty/plans").text
    fields = page_form(page, action="/admin/loyalty/plans")
    for name, value in (("plan_id", "big"), ("name", "Big"), ("fee", "$1,234.56")):
        fields = typed(fields, name, value)
    response = post_form(admin, "/admin/loyalty/plans", fields)
    assert response.status_code == 422
    assert f'data-field-error="fee">Fee: an amount in EUR; {HOW}<' in response.text
    assert membership_plans.list_plans(db) == []
