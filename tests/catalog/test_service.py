"""Catalogue verbs: bulk upserts by natural key, pagination, category filter."""

from __future__ import annotations

from rapport.catalog import service as catalog
from rapport.catalog.schemas import ProductUpsert, StoreUpsert


def product(sku: str, *, price: int = 1000, category: str = "Wine/Red") -> ProductUpsert:
    return ProductUpsert(
        sku=sku,
        name=f"Product {sku}",
        category_path=category,
        brand="Castello",
        price_minor=price,
        cost_minor=price // 2,
        currency="EUR",
        country_of_origin="IT",
    )


def test_upsert_creates_then_updates_by_sku(db) -> None:
    catalog.upsert_products(db, products=[product("W-1", price=1200), product("W-2")])
    catalog.upsert_products(db, products=[product("W-1", price=1350)])
    assert catalog.count_products(db) == 2
    updated = catalog.get_product(db, sku="W-1")
    assert updated is not None
    assert (updated.price_minor, updated.cost_minor) == (1350, 675)


def test_list_products_pages_in_sku_order(db) -> None:
    catalog.upsert_products(db, products=[product(f"P-{n:02d}") for n in range(7)])
    first = catalog.list_products(db, limit=3)
    second = catalog.list_products(db, after_sku=first[-1].sku, limit=3)
    third = catalog.list_products(db, after_sku=second[-1].sku, limit=3)
    assert [p.sku for p in first + second + third] == [f"P-{n:02d}" for n in range(7)]


def test_category_filter_matches_path_prefix_only_at_boundaries(db) -> None:
    catalog.upsert_products(
        db,
        products=[
            product("A", category="Wine/Red"),
            product("B", category="Wine/White"),
            product("C", category="Wineglasses"),
        ],
    )
    assert [p.sku for p in catalog.list_products(db, category="Wine")] == ["A", "B"]
    assert [p.sku for p in catalog.list_products(db, category="Wine/Red")] == ["A"]


def test_stores_upsert_and_list(db) -> None:
    store = StoreUpsert(
        store_id="st-par-01",
        name="Rapport Paris Rivoli",
        city="Paris",
        address="1 rue de Rivoli",
        country="FR",
        latitude=48.8566,
        longitude=2.3522,
        timezone="Europe/Paris",
    )
    catalog.upsert_stores(db, stores=[store])
    catalog.upsert_stores(db, stores=[store.model_copy(update={"name": "Rapport Paris Louvre"})])
    stores = catalog.list_stores(db)
    assert [(s.store_id, s.name, s.latitude) for s in stores] == [
        ("st-par-01", "Rapport Paris Louvre", 48.8566)
    ]
