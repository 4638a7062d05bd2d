"""Catalogue endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from rapport.catalog import service
from rapport.catalog.schemas import (
    SKU_PATTERN,
    AvailabilityOut,
    BulkResult,
    ChannelPriceIn,
    PriceDifferenceOut,
    ProductBulkIn,
    ProductIn,
    ProductOut,
    ProductUpsert,
    StockBulkIn,
    StoreBulkIn,
    StoreIn,
    StoreOut,
    StoreUpsert,
)
from rapport.platform.auth import ReadKey, WriteKey
from rapport.platform.db import DbSession
from rapport.platform.errors import NotFound
from rapport.platform.schemas import Page

router = APIRouter(prefix="/v1", tags=["catalog"])

SkuPath = Annotated[str, Path(pattern=SKU_PATTERN, description="Product SKU")]
StoreIdPath = Annotated[str, Path(pattern=SKU_PATTERN, description="Store id")]


@router.get("/products")
def list_products(
    db: DbSession,
    _key: ReadKey,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    category: Annotated[str | None, Query(description="Category path prefix")] = None,
) -> Page[ProductOut]:
    """Products in SKU order, one page at a time."""
    products = service.list_products(db, after_sku=cursor, limit=limit, category=category)
    next_cursor = products[-1].sku if len(products) == limit else None
    return Page(items=[ProductOut.model_validate(p) for p in products], next_cursor=next_cursor)


@router.get("/products/{sku}")
def get_product(sku: str, db: DbSession, _key: ReadKey) -> ProductOut:
    """One product by SKU."""
    product = service.get_product(db, sku=sku)
    if product is None:
        raise NotFound(f"No product with SKU {sku!r}", field="sku")
    return ProductOut.model_validate(product)


@router.put("/products/{sku}")
def put_product(sku: SkuPath, body: ProductIn, db: DbSession, _key: WriteKey) -> ProductOut:
    """Create or replace a product."""
    upsert = ProductUpsert(sku=sku, **body.model_dump())
    service.upsert_products(db, products=[upsert])
    product = service.get_product(db, sku=upsert.sku)
    assert product is not None
    return ProductOut.model_validate(product)


@router.post("/products/bulk")
def bulk_upsert_products(body: ProductBulkIn, db: DbSession, _key: WriteKey) -> BulkResult:
    """Create or update up to 1,000 products in one transaction: all or none."""
    return BulkResult(upserted=service.upsert_products(db, products=body.products))


@router.get("/stores")
def list_stores(db: DbSession, _key: ReadKey) -> list[StoreOut]:
    """Every store."""
    return [StoreOut.model_validate(store) for store in service.list_stores(db)]


@router.post("/stores/bulk")
def bulk_upsert_stores(body: StoreBulkIn, db: DbSession, _key: WriteKey) -> BulkResult:
    """Create or update up to 1,000 stores in one transaction: all or none."""
    return BulkResult(upserted=service.upsert_stores(db, stores=body.stores))


@router.get("/stores/{store_id}")
def get_store(store_id: str, db: DbSession, _key: ReadKey) -> StoreOut:
    """One store."""
    store = service.get_store(db, store_id=store_id)
    if store is None:
        raise NotFound(f"No store {store_id!r}", field="store_id")
    return StoreOut.model_validate(store)


@router.put("/stores/{store_id}")
def put_store(store_id: StoreIdPath, body: StoreIn, db: DbSession, _key: WriteKey) -> StoreOut:
    """Create or replace a store."""
    upsert = StoreUpsert(store_id=store_id, **body.model_dump())
    service.upsert_stores(db, stores=[upsert])
    store = service.get_store(db, store_id=upsert.store_id)
    assert store is not None
    return StoreOut.model_validate(store)


@router.put("/stock")
def set_stock(body: StockBulkIn, db: DbSession, _key: WriteKey) -> BulkResult:
    """Set on-hand units per product and location (reservations for pick-up stay)."""
    count = service.set_stock(db, levels=[(lv.sku, lv.store_id, lv.on_hand) for lv in body.levels])
    return BulkResult(upserted=count)


@router.get("/stock/{sku}")
def stock_view(
    sku: str,
    db: DbSession,
    _key: ReadKey,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
) -> list[AvailabilityOut]:
    """Availability at each store and the web, nearest first from (lat, lon)."""
    if service.get_product(db, sku=sku) is None:
        raise NotFound(f"No product with SKU {sku!r}", field="sku")
    return [
        AvailabilityOut(**vars(a))
        for a in service.stock_view(db, sku=sku, latitude=lat, longitude=lon)
    ]


@router.post("/prices/channel", status_code=201)
def set_channel_price(body: ChannelPriceIn, db: DbSession, _key: WriteKey) -> ChannelPriceIn:
    """Record a deliberate price exception for a channel or store, with its reason."""
    service.set_channel_price(
        db,
        sku=body.sku,
        channel=body.channel,
        price_minor=body.price_minor,
        reason=body.reason,
        store_id=body.store_id,
    )
    return body


@router.get("/prices/consistency")
def price_consistency(db: DbSession, _key: ReadKey) -> list[PriceDifferenceOut]:
    """Every product whose effective price differs between channels, and why."""
    return [PriceDifferenceOut(**vars(d)) for d in service.price_consistency_report(db)]
