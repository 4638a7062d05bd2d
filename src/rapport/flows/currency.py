"""The currency the admin pages show money in: the admin shell formats money with it (the
composition root installs this verb), and domains below loyalty compare their own with it (an
order import in pounds into a shop still showing euros)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty


def shown_currency(db: Session) -> str:
    """The loyalty program's currency: every admin page shows money in it."""
    return loyalty.get_program(db).currency
