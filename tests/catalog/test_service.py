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


def test_categories_compare_case_and_every_character_alike_on_every_database(db) -> None:
    catalog.upsert_products(
        db,
        products=[
            product("A", category="Wine/Red"),
            product("B", category="wine/red"),
            product("C", category="Spirits/50%_ABV/Rum"),
            product("D", category="Spirits/50x-ABV/Gin"),
            product("E", category="Épicerie/Thé"),
        ],
    )

    def skus(category: str) -> list[str]:
        return [p.sku for p in catalog.list_products(db, category=category)]

    # case counts, as in_category and recommendation rules say (SQLite's LIKE ignored it)
    assert skus("Wine") == ["A"]
    assert skus("wine") == ["B"]
    assert skus("WINE/RED") == []
    assert skus("Épicerie") == ["E"]
    assert skus("ÉPICERIE") == skus("épicerie") == []
    # '%' and '_' are letters, not wildcards
    assert skus("Spirits/50%_ABV") == ["C"]
    assert skus("Spirits/50%") == skus("Spirits/50_") == skus("Spirits/%") == []
    assert skus("Spirits") == ["C", "D"]
    assert catalog.unknown_categories(
        db, categories=["WINE", "Wine", "Spirits/50%_ABV", "Spirits/50_x-ABV", "Spirits/_"]
    ) == ["WINE", "Spirits/50_x-ABV", "Spirits/_"]
    assert catalog.has_attribute_value(db, attribute="category", value="wine/red")
    assert not catalog.has_attribute_value(db, attribute="category", value="Wine/RED")
    # the SQL agrees with in_category, product by product
    paths = {p.sku: p.category_path for p in catalog.list_products(db)}
    for category in ("Wine", "wine", "Spirits/50%_ABV", "Spirits/", "Épicerie", ""):
        expected = [sku for sku, path in paths.items() if catalog.in_category(path, category)]
        assert skus(category) == expected, category


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
