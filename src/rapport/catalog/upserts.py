"""Create-or-update of products (by SKU) and stores (by id) in one transaction each.

Private to the catalogue: the face (:mod:`rapport.catalog.service`) re-exports these, and the
product-file importer uses them directly so that it need not import the face that re-exports it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from rapport.catalog.models import Product, Store
from rapport.catalog.schemas import ProductUpsert, StoreUpsert
from rapport.platform import clock
from rapport.platform.db import upsert_rows
from rapport.platform.idempotency import BeforeCommit

_PRODUCT_FIELDS = [
    "name", "category_path", "brand", "price_minor", "cost_minor", "currency",
    "country_of_origin", "season", "attributes",
]  # fmt: skip
_STORE_FIELDS = [
    "name", "city", "address", "country", "latitude", "longitude", "timezone", "opening_hours",
]  # fmt: skip


def upsert_products(
    db: Session, *, products: Sequence[ProductUpsert], before_commit: BeforeCommit | None = None
) -> int:
    """Create or update products by SKU in one transaction. Returns how many were written.
    ``before_commit`` runs last in the transaction, with that count."""
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
    transaction, with how many were written."""
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
