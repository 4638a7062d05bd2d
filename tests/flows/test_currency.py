"""The currency the admin pages show money in, as domains below loyalty read it."""

from __future__ import annotations

from rapport.flows.currency import shown_currency
from rapport.loyalty import service as loyalty


def test_the_shown_currency_follows_the_program(db) -> None:
    assert shown_currency(db) == "EUR"  # a new shop, before anyone sets it
    loyalty.configure_program(db, currency="GBP")
    assert shown_currency(db) == "GBP"
