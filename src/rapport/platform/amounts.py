"""Amounts as import files write them: a point or, as spreadsheets set to a European locale
export them, a comma before the decimals."""

from __future__ import annotations

import re
from decimal import Decimal

# What the products and the transactions imports read as an amount, once a decimal comma is
# read as a point: ASCII digits, starting with one, then at most one decimal point followed
# by at least one digit, and an optional leading minus (each import says what it makes of a
# negative amount). Not 1_000, 1e3, .5, 5., +5, nor full-width or Arabic-Indic digits, all
# of which Python's own int() and Decimal() would read.
AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# An amount in minor units (cents): the same, without decimals.
WHOLE = re.compile(r"-?[0-9]+")


class NotAnAmount(ValueError):
    """The text is not written as :data:`AMOUNT` (the caller says how to write one)."""


def example(digits: int, mark: str = ".") -> str:
    """An amount written with ``digits`` decimals: 12.50 (2), 1.250 (3), 1250 (0)."""
    text = str(1250 if digits == 0 else 1250 * 10 ** (digits - 2)).rjust(digits + 1, "0")
    return f"{text[:-digits]}{mark}{text[-digits:]}" if digits else text


def decimal_point(text: str, digits: int) -> str:
    """``text``, stripped, with a decimal comma read as a point: ``"12,50"`` → ``"12.50"``.

    A comma is the decimal mark only where it cannot be read as a thousands separator: one
    comma, no point, and at most ``digits`` (the currency's decimals) digits after it. Any
    other comma raises :class:`ValueError` saying how to write the amount: ``"1.234,50"`` and
    ``"1,234.50"`` (thousands separated) and, in a currency of two decimals, ``"1,234"``."""
    text = text.strip()
    if "," not in text:
        return text
    whole, _, fraction = text.partition(",")
    if "." in text or "," in fraction or len(fraction) > digits:
        decimals = (
            f"or {example(digits, ',')}, with at most {digits} decimals"
            if digits
            else "(the currency has no decimals)"
        )
        raise ValueError(
            f"write amounts without thousands separators, like {example(digits)} {decimals}"
        )
    return f"{whole}.{fraction}"


def read(text: str, digits: int) -> Decimal:
    """``text``, stripped, as an amount (:data:`AMOUNT`, a decimal comma read as by
    :func:`decimal_point`); raises :class:`NotAnAmount` for anything else, and
    :class:`ValueError` saying how to write it for a comma that may separate thousands."""
    point = decimal_point(text, digits)
    if not AMOUNT.fullmatch(point):
        raise NotAnAmount(text)
    return Decimal(point)
