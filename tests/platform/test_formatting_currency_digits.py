"""A currency's decimals are ISO 4217's minor unit everywhere in Rapport: the admin pages'
money (``platform.formatting``), the transactions import (``minor_digits``), tracking
(``currency_exponent``), the products import and the segment forms all read
``formatting.minor_unit_digits``, so an amount one of them stores is the amount another
shows. CLDR (Babel) only decides how an amount looks: for IQD, RSD and ten others it shows no
decimals where ISO 4217 has them, and the minor units are ISO 4217's all the same."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rapport.orders.importing.mapping import minor_digits
from rapport.orders.tracked import mapping as tracked
from rapport.platform import formatting


@pytest.mark.parametrize(
    ("currency", "digits"),
    [
        ("EUR", 2),
        ("JPY", 0),
        ("KWD", 3),
        ("IQD", 3),  # CLDR: 0
        ("RSD", 2),  # CLDR: 0
        ("AFN", 2),  # CLDR: 0
        ("CLF", 4),
        ("QQQ", formatting.UNKNOWN_CURRENCY_DIGITS),  # no currency
    ],
)
def test_a_currencys_digits_are_its_iso_4217_minor_unit(currency: str, digits: int) -> None:
    assert formatting.minor_unit_digits(currency) == digits
    assert minor_digits(currency) == digits


@pytest.mark.parametrize("currency", sorted(formatting.currencies()))
def test_every_reader_of_money_agrees_on_a_currencys_decimals(currency: str) -> None:
    digits = formatting.minor_unit_digits(currency)
    # given one major unit and the smallest amount, as each part of Rapport reads them
    one, smallest = 10**digits, Decimal(1).scaleb(-digits)
    # then the imports, tracking and the admin pages count the same minor units
    assert currency in formatting.MINOR_UNITS
    assert tracked.currency_exponent(currency) == digits
    assert minor_digits(currency) == digits
    assert formatting.major_to_minor(1, currency) == one
    assert formatting.minor_to_major(1, currency) == smallest
    assert formatting.parse_money(formatting.money_example(currency), currency) == (
        formatting.major_to_minor(Decimal("1234.5"), currency) if digits else 1234
    )
    # and the pages show exactly the currency's decimals, and read back what they show
    shown = formatting.money_input(1, currency)
    assert shown == (f"0.{'1'.rjust(digits, '0')}" if digits else "1")
    for amount in (1, -1234, 123_456_789):
        assert formatting.parse_money(formatting.money(amount, currency), currency) == amount


@pytest.mark.parametrize(
    ("minor", "currency", "locale", "shown"),
    [
        (1234, "IQD", "en_GB", "IQD1.234"),
        (1234, "IQD", "de_DE", "1,234\xa0IQD"),
        (1234, "RSD", "en_GB", "RSD12.34"),
        (1234, "KWD", "en_GB", "KWD1.234"),
        (1234, "JPY", "en_GB", "JP¥1,234"),
        (1234, "EUR", "en_GB", "€12.34"),
        (-123_456, "EUR", "de_DE", "-1.234,56\xa0€"),
    ],
)
def test_money_is_shown_with_exactly_the_iso_4217_decimals(
    minor: int, currency: str, locale: str, shown: str
) -> None:
    assert formatting.money(minor, currency, locale) == shown


def test_a_typed_amount_of_a_currency_cldr_shows_without_decimals_keeps_them() -> None:
    assert formatting.parse_money("1.234", "IQD") == 1234
    assert formatting.money_input(1234, "IQD") == "1.234"
    assert formatting.money_example("IQD") == "1,234.500"
    with pytest.raises(formatting.MoneyUnreadable, match="at most 3 decimals"):
        formatting.parse_money("1.2345", "IQD")
