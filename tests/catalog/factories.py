"""Products for catalogue tests: red wines at a price, EUR, costing 6.00."""

from __future__ import annotations

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import ProductUpsert


def add_products(db: Session, *skus: str, price_minor: int = 1200) -> None:
    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku=sku,
                name=f"Product {sku}",
                category_path="Wine/Red",
                price_minor=price_minor,
                cost_minor=600,
                currency="EUR",
            )
            for sku in skus
        ],
    )
