"""Create-or-update of products (by SKU) and stores (by id) in one transaction each.

Private to the catalogue: the face (:mod:`rapport.catalog.service`) re-exports these, and the
product-file importer uses them directly so that it need not import the face that re-exports it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from sqlalchemy.orm import Session

from rapport.catalog.models import Product, Store
from rapport.catalog.schemas import ProductUpsert, StoreUpsert
from rapport.platform import clock
from rapport.platform.db import upsert_rows
from rapport.platform.errors import InvalidInput, field_error
from rapport.platform.idempotency import BeforeCommit

K = TypeVar("K", bound=Hashable)

_PRODUCT_FIELDS = [
    "name", "category_path", "brand", "price_minor", "cost_minor", "currency",
    "country_of_origin", "season", "attributes",
]  # fmt: skip
_STORE_FIELDS = [
    "name", "city", "address", "country", "latitude", "longitude", "timezone", "opening_hours",
]  # fmt: skip


def refuse_repeats(
    keys: Sequence[K], *, within: str, field: str, describe: Callable[[K], str]
) -> None:
    """One request sets each thing once: the second of two items with the same key is 422
    naming ``<within>.<index>.<field>`` (``describe`` says what the key is), rather than the
    last one silently winning and both being counted."""
    seen: dict[K, int] = {}
    for index, key in enumerate(keys):
        if key in seen:
            message = f"{describe(key)} is already given by {within}.{seen[key]}: send each once"
            raise InvalidInput(
                f"{within}.{index}.{field}: {message}",
                field=f"{within}.{index}.{field}",
                errors=[field_error(("body", within, index, field), message, "duplicate")],
            )
        seen[key] = index


def upsert_products(
    db: Session, *, products: Sequence[ProductUpsert], before_commit: BeforeCommit | None = None
) -> int:
    """Create or update products by SKU in one transaction. Returns how many were written.
    ``before_commit`` runs last in the transaction, with that count. A SKU given twice is 422
    naming the second (``products.<index>.sku``)."""
    refuse_repeats(
        [p.sku for p in products], within="products", field="sku", describe=lambda k: f"SKU {k!r}"
    )
    now = clock.now()
    rows = [{**product.model_dump(), "created_at": now, "updated_at": now} for product in products]
    upsert_rows(
        db,
        Product.__table__,
        rows,
        key_columns=["sku"],
        update_columns=[*_PRODUCT_FIELDS, "updated_at"],
    )
    if before_commit is not None:
        before_commit(db, len(rows))
    db.commit()
    return len(rows)


def upsert_stores(
    db: Session, *, stores: Sequence[StoreUpsert], before_commit: BeforeCommit | None = None
) -> int:
    """Create or update stores by id in one transaction. ``before_commit`` runs last in the
    transaction, with how many were written. A store given twice is 422 naming the second
    (``stores.<index>.store_id``)."""
    refuse_repeats(
        [s.store_id for s in stores],
        within="stores",
        field="store_id",
        describe=lambda k: f"Store {k!r}",
    )
    now = clock.now()
    rows = [{**store.model_dump(), "created_at": now, "updated_at": now} for store in stores]
    upsert_rows(
        db,
        Store.__table__,
        rows,
        key_columns=["store_id"],
        update_columns=[*_STORE_FIELDS, "updated_at"],
    )
    if before_commit is not None:
        before_commit(db, len(rows))
    db.commit()
    return len(rows)
