"""Catalogue verbs: the only functions other code calls to read or change products and stores."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.catalog.models import Product, Store
from rapport.catalog.schemas import ProductUpsert, StoreUpsert
from rapport.platform import clock
from rapport.platform.db import upsert_rows

_PRODUCT_FIELDS = [
    "name", "category_path", "brand", "price_minor", "cost_minor", "currency",
    "country_of_origin", "season", "attributes",
]  # fmt: skip
_STORE_FIELDS = [
    "name", "city", "address", "country", "latitude", "longitude", "timezone", "opening_hours",
]  # fmt: skip


def upsert_products(db: Session, *, products: Sequence[ProductUpsert]) -> int:
    """Create or update products by SKU in one transaction. Returns how many were written."""
    now = clock.now()
    rows = [{**product.model_dump(), "created_at": now, "updated_at": now} for product in products]
    upsert_rows(
        db,
        Product.__table__,
        rows,
        key_columns=["sku"],
        update_columns=[*_PRODUCT_FIELDS, "updated_at"],
    )
    db.commit()
    return len(rows)


def upsert_stores(db: Session, *, stores: Sequence[StoreUpsert]) -> int:
    """Create or update stores by id in one transaction."""
    now = clock.now()
    rows = [{**store.model_dump(), "created_at": now, "updated_at": now} for store in stores]
    upsert_rows(
        db,
        Store.__table__,
        rows,
        key_columns=["store_id"],
        update_columns=[*_STORE_FIELDS, "updated_at"],
    )
    db.commit()
    return len(rows)


def get_product(db: Session, *, sku: str) -> Product | None:
    return db.get(Product, sku)


def list_products(
    db: Session, *, after_sku: str | None = None, limit: int = 50, category: str | None = None
) -> list[Product]:
    """Products in SKU order, ``limit`` at a time, starting after ``after_sku``."""
    query = select(Product).order_by(Product.sku).limit(limit)
    if after_sku is not None:
        query = query.where(Product.sku > after_sku)
    if category is not None:
        query = query.where(
            (Product.category_path == category) | Product.category_path.startswith(category + "/")
        )
    return list(db.scalars(query))


def get_store(db: Session, *, store_id: str) -> Store | None:
    return db.get(Store, store_id)


def list_stores(db: Session) -> list[Store]:
    return list(db.scalars(select(Store).order_by(Store.store_id)))


def count_products(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Product)) or 0


def count_stores(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Store)) or 0
