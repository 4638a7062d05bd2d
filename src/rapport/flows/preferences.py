"""Preferences a customer shares, checked against the catalogue: a preferred store must be one
of its stores (customers and catalog do not know each other)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.platform.errors import InvalidInput


def share_preferences(
    db: Session,
    *,
    customer_id: str,
    values: dict[str, Any],
    source: str,
    cleared: Iterable[str] = (),
    channel: str = "web",
) -> list[customers.Preference]:
    """Store the customer's preferences (``customers.set_preferences``) once a preferred store
    is known to be a store of the catalogue: else ``422`` naming ``preferred_store_id`` and
    nothing stored."""
    store_id = values.get("preferred_store_id")
    if store_id is not None and catalog.get_store(db, store_id=str(store_id)) is None:
        raise InvalidInput(
            f"No store {store_id!r} in the catalogue; use the id of one of its stores",
            field="preferred_store_id",
        )
    return customers.set_preferences(
        db,
        customer_id=customer_id,
        values=values,
        source=source,
        channel=channel,
        cleared=cleared,
    )
