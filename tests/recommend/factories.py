"""A small wine-and-kitchen shop with a purchase history whose patterns are known: wine goes
with a corkscrew, coffee comes back every week, a sofa is bought once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import ProductUpsert, StoreUpsert
from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.orders import service as orders
from rapport.recommend.interactions import Interactions
from rapport.recommend.trained_model import Bundle, ProductFacts, Purchase, build

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

PRODUCTS = [
    ProductFacts("W-CHIANTI", "Chianti Classico", "Wine/Red", "Castello", 1200, 700, "IT"),
    ProductFacts("W-BAROLO", "Barolo", "Wine/Red", "Langhe", 1500, 900, "IT"),
    ProductFacts("W-RIOJA", "Rioja Crianza", "Wine/Red", "Bodega Alta", 1100, 600, "ES"),
    ProductFacts("W-CHABLIS", "Chablis", "Wine/White", "Domaine Clair", 1400, 800, "FR"),
    ProductFacts("K-CORK", "Corkscrew", "Kitchen/Tools", "Cuisine Pro", 900, 300, "DE"),
    ProductFacts("K-GLASS", "Wine glasses", "Kitchen/Glassware", "Cuisine Pro", 2400, 900, "DE"),
    ProductFacts("G-COFFEE", "Ground coffee", "Grocery/Coffee", "Bean & Brew", 799, 400, "BR"),
    ProductFacts("G-PASTA", "Spaghetti", "Grocery/Pasta", "Rinaldi", 249, 120, "IT"),
    ProductFacts("H-SOFA", "Three-seat sofa", "Home/Furniture", "Holzform", 89900, 50000, "DE"),
    # In the catalogue, never bought: a cold-start item.
    ProductFacts("W-MONTE", "Montepulciano", "Wine/Red", "Castello", 1250, 700, "IT"),
]
STORES = ("st-par-01", "st-lyo-01")


def purchases() -> list[Purchase]:
    """Twelve customers over twelve weeks. c1-c8 buy red wine with a corkscrew; c1-c6 also buy
    coffee every week; c9-c12 buy pasta and white wine; c3, c5 and c9 buy a sofa once."""
    lines: list[Purchase] = []
    order = 0

    def basket(customer: str, days_ago: float, skus: list[str], store: str | None = None) -> None:
        nonlocal order
        order += 1
        at = NOW - timedelta(days=days_ago)
        for sku in skus:
            lines.append(
                Purchase(
                    basket=f"O-{order}",
                    customer_id=customer,
                    sku=sku,
                    at=at,
                    store_id=store,
                    channel="store" if store else "web",
                )
            )

    reds = ["W-CHIANTI", "W-BAROLO", "W-RIOJA"]
    for n in range(1, 9):
        customer = f"c{n}"
        basket(customer, 60 - n, [reds[n % 3], "K-CORK"], STORES[0] if n % 2 else None)
        basket(customer, 30 - n, [reds[(n + 1) % 3], "K-GLASS"])
    for n in range(1, 7):
        for week in range(12):
            basket(f"c{n}", 7 * week + n / 10, ["G-COFFEE"], STORES[n % 2])
    for n in range(9, 13):
        basket(f"c{n}", 20 + n, ["G-PASTA", "W-CHABLIS"], STORES[1])
        basket(f"c{n}", 5 + n, ["G-PASTA"], STORES[1])
    for customer in ("c3", "c5", "c9"):
        basket(customer, 3, ["H-SOFA"])
    # A visitor who never signed in.
    lines.append(Purchase("O-anon", None, "W-CHIANTI", NOW - timedelta(days=2), STORES[0], "store"))
    return lines


def shop_interactions() -> Interactions:
    """The shop's signed-in purchases as the models learn them."""
    known = [p for p in purchases() if p.customer_id]
    return Interactions.from_purchases(
        [p.customer_id or "" for p in known],
        [p.sku for p in known],
        [p.at.timestamp() / 86_400 for p in known],
        end=NOW.timestamp() / 86_400,
    )


def shop_bundle(version: str = "v-test") -> Bundle:
    return build(purchases(), PRODUCTS, version=version, now=NOW)


# ----------------------------------------------------------------------- in the database


def seed_shop(db: Session, *, stock: dict[tuple[str, str], int] | None = None) -> dict[str, str]:
    """The shop's catalogue, stores, customers (all consenting to personalisation) and order
    history, through the domains' own verbs. Returns customer ids by name (c1 … c12)."""
    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku=p.sku,
                name=p.name,
                category_path=p.category_path,
                brand=p.brand,
                price_minor=p.price_minor,
                cost_minor=p.cost_minor,
                currency="EUR",
                country_of_origin=p.country,
            )
            for p in PRODUCTS
        ],
    )
    catalog.upsert_stores(
        db,
        stores=[
            StoreUpsert(
                store_id=STORES[0],
                name="Paris Rivoli",
                city="Paris",
                address="1 rue de Rivoli",
                country="FR",
                latitude=48.857,
                longitude=2.352,
            ),
            StoreUpsert(
                store_id=STORES[1],
                name="Lyon Bellecour",
                city="Lyon",
                address="2 place Bellecour",
                country="FR",
                latitude=45.757,
                longitude=4.832,
            ),
        ],
    )
    levels = stock or {(p.sku, store): 10 for p in PRODUCTS for store in STORES}
    catalog.set_stock(db, levels=[(sku, store, units) for (sku, store), units in levels.items()])
    ids = {}
    for n in range(1, 13):
        record = customers.create_customer(
            db,
            customer=CustomerIn(
                external_id=f"c{n}",
                email=f"c{n}@example.com",
                consents={"personalization": True, "location": True},
            ),
        )
        ids[f"c{n}"] = record.customer_id
    prices = {p.sku: p.price_minor for p in PRODUCTS}
    categories = {p.sku: p.category_path for p in PRODUCTS}
    by_basket: dict[str, list[Purchase]] = {}
    for line in purchases():
        by_basket.setdefault(line.basket, []).append(line)
    orders.import_orders(
        db,
        orders=[
            orders.ImportedOrder(
                order_id=basket,
                customer_external_id=lines[0].customer_id,
                channel=lines[0].channel,
                fulfilment="in_store" if lines[0].store_id else "ship",
                store_id=lines[0].store_id,
                placed_at=lines[0].at,
                currency="EUR",
                lines=[
                    orders.ImportedLine(
                        sku=line.sku,
                        quantity=1,
                        unit_price_minor=prices[line.sku],
                        category=categories[line.sku],
                    )
                    for line in lines
                ],
            )
            for basket, lines in by_basket.items()
        ],
    )
    db.commit()
    return ids


def models_dir(data_dir: Path) -> Path:
    return data_dir / "models" / "recommend"
