"""Numbers, money, shares and dates as the admin pages show them: in the operator's locale
(``RAPPORT_LOCALE``, CLDR rules through Babel) and the program's currency.

Money is stored in integer minor units (cents); :func:`money` is the one place that turns it
into "€1,234.50", so no page shows raw cents. How many minor units a major unit has is
ISO 4217's minor unit (:func:`minor_unit_digits`), the same table the API, the imports and
tracking read amounts with; CLDR only decides how an amount looks (symbol, grouping), never
its decimals (CLDR shows IQD and RSD without decimals, ISO 4217 gives them 3 and 2).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_skeleton
from babel.numbers import (
    NumberPattern,
    format_decimal,
    format_percent,
    get_currency_name,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
    get_territory_currencies,
)

DEFAULT_LOCALE = "en_GB"
DEFAULT_CURRENCY = "EUR"
UNKNOWN_CURRENCY_DIGITS = 2  # what an unknown code is read with, as Babel read it

# ISO 4217 currencies (list one, with the fund codes and recently withdrawn ones still sent),
# by their minor unit: the digits after the point. The only table of currency decimals.
_MINOR_UNIT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_MINOR_UNIT_3 = "BHD IQD JOD KWD LYD OMR TND"
_MINOR_UNIT_4 = "CLF UYW"
_MINOR_UNIT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP"
    " BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR"
    " FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW"
    " KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN"
    " NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD"
    " SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU"
    " UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
)
MINOR_UNITS: Mapping[str, int] = MappingProxyType(
    {
        code: digits
        for digits, codes in (
            (0, _MINOR_UNIT_0),
            (2, _MINOR_UNIT_2),
            (3, _MINOR_UNIT_3),
            (4, _MINOR_UNIT_4),
        )
        for code in codes.split()
    }
)
NOTHING = "\u2013"  # an en dash where there is no value


def checked_locale(name: str) -> str:
    """``name`` if Babel knows it (``en_GB``, ``de-DE``), normalised to ``en_GB``; raises
    ValueError naming the setting otherwise."""
    try:
        return str(Locale.parse(name.replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        raise ValueError(
            f"RAPPORT_LOCALE={name!r} is not a locale Rapport knows; use one like en_GB or de_DE"
        ) from None


@functools.cache
def currencies() -> frozenset[str]:
    """ISO 4217 codes of the currencies some country uses as legal tender today (CLDR, through
    Babel): the ones a shop may price in. Withdrawn codes (DEM, FRF) are left out."""
    territories = Locale.parse(DEFAULT_LOCALE).territories
    today = datetime.now(UTC).date()
    return frozenset(
        code
        for territory in territories
        if isinstance(territory, str)
        for code in get_territory_currencies(territory, today, tender=True)
    )


def currency_choices(locale: str = DEFAULT_LOCALE) -> list[tuple[str, str]]:
    """For every :func:`currencies` code, by code: the code and what a form shows for it, the
    code and the currency's name in ``locale`` joined by an en dash ("GBP", "GBP - British
    Pound" with the dash an en dash)."""
    return [
        (code, f"{code} \u2013 {get_currency_name(code, locale=locale)}")
        for code in sorted(currencies())
    ]


def currency_unit(currency: str, locale: str = DEFAULT_LOCALE) -> str:
    """One major unit of ``currency`` named in words in ``locale``, as "1 point per …" says
    it: "euro", "Japanese yen", "Kuwaiti dinar"; the code itself for one CLDR does not name."""
    return get_currency_name(currency, count=1, locale=locale)


def minor_unit_digits(currency: str) -> int:
    """Digits after the point of ``currency``'s minor unit, as ISO 4217 sets them: 2 for EUR
    and RSD, 0 for JPY, 3 for KWD and IQD; 2 for a code ISO 4217 does not list (a code is
    checked against :data:`MINOR_UNITS` where an unknown one must be refused)."""
    return MINOR_UNITS.get(currency, UNKNOWN_CURRENCY_DIGITS)


def minor_to_major(minor: int | float, currency: str) -> Decimal:
    """Minor units as the currency's major unit: 1234 cents → 12.34 (0 decimals for JPY)."""
    return Decimal(str(minor)).scaleb(-minor_unit_digits(currency))


def major_to_minor(major: Decimal | float | str, currency: str) -> int:
    """What a form's "12.34" is in minor units; raises ValueError on more decimals than the
    currency has."""
    amount = Decimal(str(major)).scaleb(minor_unit_digits(currency))
    if amount != amount.to_integral_value():
        raise ValueError(f"{major} {currency} has more decimals than {currency} allows")
    return int(amount)


# Spaces a locale may group thousands with (fr_FR: a narrow no-break space); a person types
# any of them, or a plain space.
_SPACES = " \u00a0\u202f"
# de_CH groups with a right single quotation mark; a keyboard types the straight one.
_APOSTROPHES = "\u2019'"
_MARKS = {",": "a comma", ".": "a point", "\u2019": "an apostrophe", "'": "an apostrophe"}
_MARKS.update(dict.fromkeys(_SPACES, "a space"))
# Marks that set the direction of right-to-left text (ar_EG, he_IL and fa_IR amounts carry
# them around the sign and the symbol): they are not part of the amount.
_DIRECTION_MARKS = dict.fromkeys(map(ord, "\u200e\u200f\u061c"))
_MINUS = ("-", "\u2212")


class MoneyUnreadable(ValueError):
    """Typed money that cannot be read one way only; the message ("an amount in EUR; type it
    like 1,234.50, ...") says how to type it, and a form puts the field's label before it."""


def money_input(minor: int | None, currency: str, locale: str = DEFAULT_LOCALE) -> str:
    """Minor units as a form's money field shows them, the way the pages show amounts but
    without the symbol: ``123456, "EUR"`` → "1,234.56" (en_GB), "1.234,56" (de_DE);
    ``1234, "JPY"`` → "1,234". :func:`parse_money` reads it back."""
    if minor is None:
        return ""
    digits = minor_unit_digits(currency)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(minor_to_major(minor, currency), format=pattern, locale=locale)


def money_example(currency: str, locale: str = DEFAULT_LOCALE) -> str:
    """How to type an amount of ``currency``, for a message: "1,234.50" (EUR), "1,234" (JPY),
    "1,234.500" (KWD)."""
    digits = minor_unit_digits(currency)
    minor = int(Decimal("1234.5").scaleb(digits)) if digits else 1234
    return money_input(minor, currency, locale)


def _currency_marks(currency: str, locale: str) -> list[str]:
    """What may stand for ``currency`` beside a typed amount, longest first: its code, its
    symbol in ``locale`` and its common symbol ("€" in de_CH, whose own is "EUR")."""
    marks = {currency, get_currency_symbol(currency, locale=locale)}
    marks.add(get_currency_symbol(currency, locale="en"))
    return sorted({mark.translate(_DIRECTION_MARKS) for mark in marks}, key=len, reverse=True)


def _without(shown: str, marks: list[str]) -> str:
    """``shown`` with one of ``marks`` taken off its start or end (codes in any case)."""
    for mark in marks:
        if shown.upper().startswith(mark.upper()):
            return shown[len(mark) :].strip()
        if shown.upper().endswith(mark.upper()):
            return shown[: len(shown) - len(mark)].strip()
    return shown


def _grouped(locale: str, group: str) -> str:
    """A whole number with ``group`` between its groups, as the pages write it: in threes
    (1,234,567), or as the locale groups (en_IN: 12,34,567)."""
    mark = re.escape(group)
    primary, secondary = Locale.parse(locale).decimal_formats[None].grouping
    threes = rf"\d{{1,3}}(?:{mark}\d{{3}})+"
    if (primary, secondary) == (3, 3):
        return threes
    local = rf"\d{{1,{secondary}}}(?:{mark}\d{{{secondary}}})*{mark}\d{{{primary}}}"
    return f"{threes}|{local}"


def parse_money(text: str, currency: str, locale: str = DEFAULT_LOCALE) -> int:
    """What a person typed in a money field, in minor units of ``currency``: read the way the
    pages show amounts in ``locale`` (en_GB: "," between thousands, "." before the decimals),
    so "1,000" is a thousand, "1,234.50" is 123450 cents and "1000.5" is 100050; what
    :func:`money` and :func:`money_input` write, "-€1,234.50" included, reads back as the
    amount. The currency's code (any case) or symbol may stand on either side, and a minus
    (``-`` or U+2212) before or after the symbol; where the locale groups otherwise
    (en_IN: "12,34,567.50") both its grouping and threes are read.

    Text that could mean two amounts is refused rather than guessed: "4,99" (not thousands,
    and "," is not the decimal mark), "1.000" in JPY or "4.990" in EUR (more decimals than the
    currency has, as typed with "." between thousands), "1e3", another currency's symbol.
    Raises :class:`MoneyUnreadable` saying how to type it."""
    group, point = get_group_symbol(locale), get_decimal_symbol(locale)
    digits = minor_unit_digits(currency)
    example = money_example(currency, locale)
    between = _MARKS.get(group, group)
    after = f"{_MARKS.get(point, point)} before the decimals" if digits else "no decimals"
    how = f"type it like {example}, with {between} between thousands and {after}"
    shown = text.translate(_DIRECTION_MARKS).strip()
    negative = shown.startswith(_MINUS)
    if negative:
        shown = shown[1:].strip()
    shown = _without(shown, _currency_marks(currency, locale))
    if not negative and shown.startswith(_MINUS):
        negative, shown = True, shown[1:].strip()
    if group in _SPACES:
        shown = re.sub(f"[{_SPACES}]", group, shown)
    elif group in _APOSTROPHES:
        shown = re.sub(f"[{_APOSTROPHES}]", group, shown)
    found = re.fullmatch(rf"({_grouped(locale, group)}|\d+)(?:{re.escape(point)}(\d+))?", shown)
    if found is None:
        raise MoneyUnreadable(f"an amount in {currency}; {how}")
    whole, fraction = found.group(1).replace(group, ""), found.group(2) or ""
    if len(fraction) > digits:
        taken = f"at most {digits} decimals" if digits else "no decimals"
        raise MoneyUnreadable(
            f"an amount in {currency}, which takes {taken}; type it like {example}"
        )
    minor = int(whole + fraction.ljust(digits, "0"))
    return -minor if negative else minor


def money(minor: int | float | None, currency: str, locale: str = DEFAULT_LOCALE) -> str:
    """``1234, "EUR"`` → "€12.34", ``1234, "IQD"`` → "IQD1.234"; ``None`` → an en dash. The
    locale's currency pattern (symbol, grouping) with exactly the ISO 4217 decimals."""
    if minor is None:
        return NOTHING
    digits = minor_unit_digits(currency)
    shown: str = _currency_pattern(locale, digits).apply(
        minor_to_major(minor, currency),
        Locale.parse(locale),
        currency=currency,
        currency_digits=False,
    )
    return shown


@functools.cache
def _currency_pattern(locale: str, digits: int) -> NumberPattern:
    """``locale``'s standard currency pattern with ``digits`` decimals, neither more nor less."""
    pattern: NumberPattern = copy.copy(Locale.parse(locale).currency_formats["standard"])
    pattern.frac_prec = (digits, digits)
    return pattern


def number(
    value: int | float | Decimal | None, locale: str = DEFAULT_LOCALE, digits: int = 0
) -> str:
    """Grouped digits: 1234567 → "1,234,567"; ``digits`` fixes the decimals shown."""
    if value is None:
        return NOTHING
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=locale)


def share(value: float | None, locale: str = DEFAULT_LOCALE, digits: int = 1) -> str:
    """A fraction as a percentage: 0.1234 → "12.3%"."""
    if value is None:
        return NOTHING
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    return format_percent(value, format=pattern, locale=locale)


def day(value: date | datetime | None, locale: str = DEFAULT_LOCALE, width: str = "medium") -> str:
    """A date: "5 Dec 2026"; ``width="long"`` spells the month as a letter to a customer
    does, in ``locale``'s language ("5 December 2026", "5 décembre 2026", "5. Dezember 2026")."""
    if value is None:
        return NOTHING
    return format_date(value, width, locale=locale)


def day_of_month(value: date, locale: str = DEFAULT_LOCALE) -> str:
    """A day and its month, without the year, as ``locale`` writes them to a customer ("14
    December", "14 décembre", "14. Dezember")."""
    return format_skeleton("MMMMd", value, locale=locale)


# The zone every admin time is shown in: times are stored in UTC and there is no shop-wide
# time zone setting (stores and campaigns have their own, for their own work).
SHOWN_ZONE = "UTC"


# An ISO 8601 date and time as JSON carries one (an event's property): "2027-01-26T20:02:32+00:00".
_ISO_MOMENT = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?", re.ASCII
)


def moment(value: datetime | str | None, locale: str = DEFAULT_LOCALE) -> str:
    """A date and time to the minute, saying its zone: "5 Dec 2026, 14:05 UTC". An aware
    time in another zone is moved to UTC first; a naive one is read as UTC. A string that
    is an ISO 8601 date and time (an event's ``benefits_until``) is shown as the time it
    writes; any other string as it is (a property that only may hold a time)."""
    if value is None:
        return NOTHING
    if isinstance(value, str):
        text = value
        if not _ISO_MOMENT.fullmatch(text.strip()):
            return text
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:  # 2026-02-30T10:00: shaped like a time, but none
            return text
    shown = format_datetime(value, "d MMM y, HH:mm", tzinfo=UTC, locale=locale)
    return f"{shown} {SHOWN_ZONE}"
