"""A demo retailer for the campaigns bench, generated inside PostgreSQL.

    from campaign_data import generate_retailer
    summary = generate_retailer(database_url, customers=1_000_000, seed=16)

Every row is made by ``INSERT .. SELECT generate_series`` on the server, so a million customers
take a minute or two rather than the demo generator's minutes of Python: the customers of the
demo's five cities (London, Manchester, Paris, Lyon, Berlin) living around their city (a share
far out in the region), their consents (marketing email, push, location, analytics,
personalization), the stores with coordinates, a catalogue of products in a handful of
categories, orders with lines for a share of the customers over the last year, their traits
(order count, spend, category counts, last known location for those who consented to
location) and loyalty members' point
balances. Deterministic:
each "random" figure is ``hashint8extended(row number, seed + salt)`` scaled to [0, 1), so the
same seed gives the same retailer on any PostgreSQL 11 or later.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, create_engine, text

# (code, name, country, locale, time zone, latitude, longitude, share of customers, spread km)
CITIES = (
    ("lon", "London", "GB", "en", "Europe/London", 51.5074, -0.1278, 0.30, 8.0),
    ("man", "Manchester", "GB", "en", "Europe/London", 53.4808, -2.2426, 0.12, 6.0),
    ("par", "Paris", "FR", "fr", "Europe/Paris", 48.8566, 2.3522, 0.28, 5.0),
    ("lyo", "Lyon", "FR", "fr", "Europe/Paris", 45.7640, 4.8357, 0.12, 4.0),
    ("ber", "Berlin", "DE", "de", "Europe/Berlin", 52.5200, 13.4050, 0.18, 7.0),
)
# Stores: (city code, number, latitude, longitude)
STORES = (
    ("lon", 1, 51.5129, -0.1243),
    ("lon", 2, 51.5386, -0.1027),
    ("lon", 3, 51.4560, -0.1665),
    ("man", 1, 53.4827, -2.2393),
    ("man", 2, 53.4170, -2.2310),
    ("par", 1, 48.8578, 2.3595),
    ("par", 2, 48.8738, 2.3320),
    ("par", 3, 48.8462, 2.3271),
    ("lyo", 1, 45.7620, 4.8357),
    ("ber", 1, 52.5170, 13.3889),
    ("ber", 2, 52.4890, 13.3950),
)
CATEGORIES = (
    "Home/Woodworking",
    "Home/Garden",
    "Apparel/Shoes",
    "Kitchen/Cookware",
    "Wine/Red",
    "Beauty/Skincare",
    "Grocery/Coffee",
)
PRODUCTS_PER_CATEGORY = 30
# Shares of customers (each drawn independently per customer).
MARKETING_EMAIL_GRANTED = 0.62
MARKETING_EMAIL_REFUSED = 0.13  # a recorded "no" after the grants
MARKETING_PUSH_GRANTED = 0.45
LOCATION_GRANTED = 0.55
ANALYTICS_GRANTED = 0.80
PERSONALIZATION_GRANTED = 0.60  # behavioural segment conditions select only these
BUYERS = 0.45  # customers with at least one order in the last year
FAR_OUT = 0.20  # customers living out in the region (up to 150 km) rather than in town
ERASED = 0.003
MEMBERS = 0.40  # loyalty members, with a points balance


@dataclass(frozen=True)
class RetailerSummary:
    customers: int
    consents: int
    orders: int
    order_lines: int
    products: int
    stores: int
    seconds: float


def customer_id_sql(number: str) -> str:
    """The customer id of row ``number`` (an SQL expression): fixed width, so ids sort as the
    row numbers do."""
    return f"'cus_' || lpad(to_hex({number}), 28, '0')"


def customer_id(number: int) -> str:
    return f"cus_{number:028x}"


def email_of(number: int) -> str:
    return f"customer{number}@bench.example"


def log(message: str) -> None:
    print(f"retailer: {message}", file=sys.stderr, flush=True)


def generate_retailer(database_url: str, *, customers: int, seed: int = 16) -> RetailerSummary:
    """Fill the (migrated, empty) database at ``database_url`` with the demo retailer."""
    began = time.perf_counter()
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            _define_helpers(connection, seed)
            steps: tuple[tuple[str, Callable[[], None]], ...] = (
                ("stores and products", lambda: _stores_and_products(connection)),
                ("customers", lambda: _customers(connection, customers)),
                ("consents", lambda: _consents(connection)),
                ("orders", lambda: _orders(connection)),
                ("traits", lambda: _traits(connection)),
                ("loyalty members", lambda: _loyalty_members(connection)),
            )
            for name, step in steps:
                step_began = time.perf_counter()
                step()
                log(f"{name}: {time.perf_counter() - step_began:.1f} s")
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            step_began = time.perf_counter()
            # As autovacuum would have left a live database: statistics and visibility maps.
            connection.execute(text("VACUUM ANALYZE"))
            log(f"vacuum analyze: {time.perf_counter() - step_began:.1f} s")
            counts = {
                table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in ("customers", "consents", "orders", "order_lines", "products")
            }
            stores = int(connection.execute(text("SELECT count(*) FROM stores")).scalar_one())
    finally:
        engine.dispose()
    return RetailerSummary(
        customers=counts["customers"],
        consents=counts["consents"],
        orders=counts["orders"],
        order_lines=counts["order_lines"],
        products=counts["products"],
        stores=stores,
        seconds=time.perf_counter() - began,
    )


def _define_helpers(connection: Connection, seed: int) -> None:
    # Session-local (pg_temp) so that nothing of the generator stays in the database. Simple
    # SQL functions are inlined into the statements that call them.
    connection.execute(
        text(
            "CREATE FUNCTION pg_temp.u(n bigint, salt int) RETURNS float8 LANGUAGE sql "
            "IMMUTABLE AS $$ SELECT (hashint8extended(n, "
            f"{int(seed)} * 1000 + salt) & 9007199254740991)::float8 / 9007199254740992.0 $$"
        )
    )
    cities = " UNION ALL ".join(
        f"SELECT {index} AS city_no, '{code}' AS code, '{name}' AS name, '{country}' AS country,"
        f" '{locale}' AS locale, '{zone}' AS zone, {lat}::float8 AS lat, {lon}::float8 AS lon,"
        f" {share}::float8 AS share, {spread}::float8 AS spread"
        for index, (code, name, country, locale, zone, lat, lon, share, spread) in enumerate(CITIES)
    )
    connection.execute(
        text(
            "CREATE TEMPORARY TABLE bench_cities AS SELECT c.*, "
            "coalesce(sum(share) OVER (ORDER BY city_no ROWS BETWEEN UNBOUNDED PRECEDING "
            "AND 1 PRECEDING), 0) AS share_from, sum(share) OVER (ORDER BY city_no) AS share_to "
            f"FROM ({cities}) AS c"
        )
    )


def _stores_and_products(connection: Connection) -> None:
    rows = ", ".join(
        f"('st_{code}_{number}', '{code}', {number}, {lat}, {lon})"
        for code, number, lat, lon in STORES
    )
    connection.execute(
        text(
            "INSERT INTO stores (store_id, name, city, address, country, latitude, longitude, "
            "timezone, opening_hours, created_at, updated_at) "
            "SELECT s.store_id, c.name || ' ' || s.number, c.name, s.number || ' High Street', "
            "c.country, s.lat, s.lon, c.zone, '{}'::jsonb, now(), now() "
            f"FROM (VALUES {rows}) AS s(store_id, code, number, lat, lon) "
            "JOIN bench_cities c ON c.code = s.code"
        )
    )
    categories = ", ".join(f"({index}, '{path}')" for index, path in enumerate(CATEGORIES))
    connection.execute(
        text(
            "INSERT INTO products (sku, name, category_path, brand, price_minor, cost_minor, "
            "currency, attributes, created_at, updated_at) "
            "SELECT 'SKU-' || k.category_no || '-' || lpad(p::text, 3, '0'), "
            "split_part(k.path, '/', 2) || ' item ' || p, k.path, 'Bench', "
            "500 + (pg_temp.u(k.category_no * 1000 + p, 1) * 9500)::int, "
            "250 + (pg_temp.u(k.category_no * 1000 + p, 1) * 4000)::int, 'EUR', '{}'::jsonb, "
            "now(), now() "
            f"FROM (VALUES {categories}) AS k(category_no, path), "
            f"generate_series(1, {PRODUCTS_PER_CATEGORY}) AS p"
        )
    )


def _customers(connection: Connection, customers: int) -> None:
    # Home: a Rayleigh-distributed distance from the city centre (or, for FAR_OUT, uniform up
    # to 150 km) in a uniform direction; 111.2 km per degree of latitude.
    connection.execute(
        text(
            "CREATE TEMPORARY TABLE bench_people AS "
            "SELECT n, c.code, c.name AS city, c.country, c.locale, c.zone, "
            "c.lat + d.km * cos(d.bearing) / 111.2 AS home_lat, "
            "c.lon + d.km * sin(d.bearing) / (111.2 * cos(radians(c.lat))) AS home_lon "
            f"FROM generate_series(1, {int(customers)}) AS n "
            "JOIN bench_cities c "
            "ON pg_temp.u(n, 1) >= c.share_from AND pg_temp.u(n, 1) < c.share_to "
            "CROSS JOIN LATERAL (SELECT 2 * pi() * pg_temp.u(n, 2) AS bearing, "
            f"CASE WHEN pg_temp.u(n, 3) < {FAR_OUT} THEN 20 + 130 * pg_temp.u(n, 4) "
            "ELSE c.spread * sqrt(-2 * ln(1 - pg_temp.u(n, 4))) END AS km) AS d"
        )
    )
    connection.execute(text("ALTER TABLE bench_people ADD PRIMARY KEY (n)"))
    connection.execute(
        text(
            "INSERT INTO customers (customer_id, external_id, email, first_name, last_name, "
            "locale, home_city, home_latitude, home_longitude, time_zone, attributes, "
            "is_anonymous, status, erased_at, created_at, updated_at) "
            f"SELECT {customer_id_sql('n')}, 'BENCH-' || lpad(n::text, 7, '0'), "
            f"CASE WHEN erased THEN NULL ELSE 'customer' || n || '@bench.example' END, "
            "CASE WHEN erased THEN NULL ELSE (ARRAY['Ada','Ben','Chloé','Dieter','Emma',"
            "'Farid','Greta','Hugo','Inès','Jonas'])[1 + (pg_temp.u(n, 5) * 10)::int % 10] END, "
            "CASE WHEN erased THEN NULL ELSE 'Customer ' || n END, "
            "locale, city, round(home_lat::numeric, 6), round(home_lon::numeric, 6), zone, "
            "'{}'::jsonb, false, CASE WHEN erased THEN 'erased' ELSE 'active' END, "
            "CASE WHEN erased THEN now() END, "
            "now() - make_interval(days => (pg_temp.u(n, 6) * 1500)::int), now() "
            f"FROM (SELECT p.*, pg_temp.u(n, 7) < {ERASED} AS erased FROM bench_people p) AS q"
        )
    )


def _consents(connection: Connection) -> None:
    grants = (
        ("marketing_email", 20, MARKETING_EMAIL_GRANTED, MARKETING_EMAIL_REFUSED),
        ("marketing_push", 21, MARKETING_PUSH_GRANTED, 0.10),
        ("location", 22, LOCATION_GRANTED, 0.10),
        ("analytics", 23, ANALYTICS_GRANTED, 0.05),
        ("personalization", 24, PERSONALIZATION_GRANTED, 0.10),
    )
    for purpose, salt, granted, refused in grants:
        connection.execute(
            text(
                "INSERT INTO consents (customer_id, purpose, granted, source, updated_at) "
                f"SELECT {customer_id_sql('n')}, '{purpose}', "
                f"pg_temp.u(n, {salt}) < {granted}, 'signup', "
                f"now() - make_interval(days => (pg_temp.u(n, {salt + 40}) * 700)::int) "
                f"FROM bench_people WHERE pg_temp.u(n, {salt}) < {granted + refused}"
            )
        )


def _orders(connection: Connection) -> None:
    # 1 to 4 orders in the last 365 days for BUYERS of the customers, each with 1 to 3 lines
    # from a favourite category (60%) or any other; in store near home or shipped.
    connection.execute(
        text(
            "CREATE TEMPORARY TABLE bench_orders AS "
            "SELECT n, k, 'ord_' || n || '_' || k AS order_id, "
            "now() - make_interval(secs => pg_temp.u(n * 8 + k, 31) * 365 * 86400) AS placed_at, "
            "pg_temp.u(n * 8 + k, 32) < 0.4 AS in_store, "
            "1 + (pg_temp.u(n * 8 + k, 33) * 3)::int % 3 AS lines, "
            f"(pg_temp.u(n, 34) * {len(CATEGORIES)})::int % {len(CATEGORIES)} AS favourite "
            "FROM bench_people, "
            "generate_series(1, 1 + (pg_temp.u(n, 30) * 4)::int % 4) AS k "
            f"WHERE pg_temp.u(n, 35) < {BUYERS}"
        )
    )
    connection.execute(
        text(
            "CREATE TEMPORARY TABLE bench_lines AS "
            "SELECT o.order_id, o.n, o.placed_at, l AS line_no, "
            "'SKU-' || CASE WHEN pg_temp.u(o.n * 32 + o.k * 4 + l, 36) < 0.6 THEN o.favourite "
            f"ELSE (pg_temp.u(o.n * 32 + o.k * 4 + l, 37) * {len(CATEGORIES)})::int "
            f"% {len(CATEGORIES)} END || '-' || lpad((1 + (pg_temp.u(o.n * 32 + o.k * 4 + l, 38)"
            f" * {PRODUCTS_PER_CATEGORY})::int % {PRODUCTS_PER_CATEGORY})::text, 3, '0') AS sku, "
            "1 + (pg_temp.u(o.n * 32 + o.k * 4 + l, 39) < 0.2)::int AS quantity "
            "FROM bench_orders o, generate_series(1, o.lines) AS l"
        )
    )
    connection.execute(
        text(
            "INSERT INTO orders (order_id, customer_id, channel, fulfilment, store_id, status, "
            "currency, subtotal_minor, discount_minor, shipping_minor, total_minor, placed_at, "
            "delivered_at, source, created_at, updated_at) "
            f"SELECT o.order_id, {customer_id_sql('o.n')}, "
            "CASE WHEN o.in_store THEN 'store' ELSE 'web' END, "
            "CASE WHEN o.in_store THEN 'in_store' ELSE 'ship' END, "
            "CASE WHEN o.in_store THEN (SELECT s.store_id FROM stores s "
            "WHERE s.latitude IS NOT NULL ORDER BY (s.latitude - p.home_lat) ^ 2 "
            "+ (s.longitude - p.home_lon) ^ 2 LIMIT 1) END, "
            "CASE WHEN o.in_store THEN 'completed' ELSE 'delivered' END, 'EUR', "
            "t.total, 0, 0, t.total, o.placed_at, o.placed_at + interval '2 days', 'import', "
            "o.placed_at, o.placed_at "
            "FROM bench_orders o JOIN bench_people p ON p.n = o.n "
            "JOIN (SELECT l.order_id, sum(p.price_minor * l.quantity) AS total FROM bench_lines l "
            "JOIN products p ON p.sku = l.sku GROUP BY l.order_id) AS t ON t.order_id = o.order_id"
        )
    )
    connection.execute(
        text(
            "INSERT INTO order_lines (order_id, line_no, sku, category, quantity, "
            "unit_price_minor, discount_minor, total_minor, returned_quantity) "
            "SELECT l.order_id, l.line_no, l.sku, p.category_path, l.quantity, p.price_minor, "
            "0, p.price_minor * l.quantity, 0 FROM bench_lines l JOIN products p ON p.sku = l.sku"
        )
    )


def _traits(connection: Connection) -> None:
    # What the trait processor would have folded from these orders, plus the last known
    # location (a few km from home) of 70% of those who granted location.
    connection.execute(
        text(
            "CREATE TEMPORARY TABLE bench_categories AS "
            "SELECT n, jsonb_object_agg(category, weight) AS counts FROM ("
            "SELECT l.n, p.category_path AS category, sum(l.quantity) * 3 AS weight "
            "FROM bench_lines l JOIN products p ON p.sku = l.sku GROUP BY l.n, p.category_path"
            ") AS c GROUP BY n"
        )
    )
    connection.execute(text("ALTER TABLE bench_categories ADD PRIMARY KEY (n)"))
    connection.execute(
        text(
            "INSERT INTO customer_traits (customer_id, first_seen_at, last_seen_at, channels, "
            "event_count, order_count, spend_minor, spend_by_currency, currency, first_order_at, "
            "last_order_at, "
            "category_counts, store_counts, last_latitude, last_longitude, last_location_at, "
            "updated_at) "
            f"SELECT {customer_id_sql('p.n')}, now() - interval '400 days', "
            "coalesce(o.last_at, now() - interval '30 days'), '[\"web\"]'::jsonb, "
            "coalesce(o.orders, 0) * 5, coalesce(o.orders, 0), coalesce(o.spend, 0), "
            # every order is in euros: the spend per currency is that one sum
            "CASE WHEN o.orders IS NOT NULL THEN jsonb_build_object('EUR', o.spend) "
            "ELSE '{}'::jsonb END, "
            "CASE WHEN o.orders IS NOT NULL THEN 'EUR' END, o.first_at, o.last_at, "
            "coalesce(c.counts, '{}'::jsonb), '{}'::jsonb, "
            "CASE WHEN located THEN round((p.home_lat + (pg_temp.u(p.n, 50) - 0.5) / 20)::numeric"
            ", 6) END, "
            "CASE WHEN located THEN round((p.home_lon + (pg_temp.u(p.n, 51) - 0.5) / 12)::numeric"
            ", 6) END, "
            "CASE WHEN located THEN now() - make_interval(hours => (pg_temp.u(p.n, 52) * 720)::int)"
            " END, now() "
            "FROM (SELECT b.*, pg_temp.u(n, 22) < "
            f"{LOCATION_GRANTED} AND pg_temp.u(n, 53) < 0.7 AS located FROM bench_people b) AS p "
            "LEFT JOIN (SELECT n, count(*) AS orders, min(bo.placed_at) AS first_at, "
            "max(bo.placed_at) AS last_at, sum(t.total_minor) AS spend FROM bench_orders bo "
            "JOIN orders t ON t.order_id = bo.order_id GROUP BY n) AS o ON o.n = p.n "
            "LEFT JOIN bench_categories c ON c.n = p.n"
        )
    )


def _loyalty_members(connection: Connection) -> None:
    # Balances only (templates show points): the ledger's transactions are not generated.
    connection.execute(
        text(
            "INSERT INTO loyalty_accounts (account_id, kind, customer_id, balance, debt, "
            "created_at, updated_at) "
            f"SELECT {customer_id_sql('n')}, 'member', {customer_id_sql('n')}, "
            "(pg_temp.u(n, 60) * 5000)::int, 0, now(), now() "
            f"FROM bench_people WHERE pg_temp.u(n, 61) < {MEMBERS}"
        )
    )
