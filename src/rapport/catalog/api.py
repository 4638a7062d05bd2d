"""Catalogue endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse

from rapport.catalog import service
from rapport.catalog.models import ChannelPrice
from rapport.catalog.schemas import (
    SKU_PATTERN,
    AvailabilityOut,
    BulkResult,
    ChannelPriceIn,
    ChannelPriceOut,
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
from rapport.platform.errors import InvalidInput, NotFound, field_error
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.schemas import Page, PageCursor, page_of

router = APIRouter(prefix="/v1", tags=["catalog"])

SkuPath = Annotated[str, Path(pattern=SKU_PATTERN, description="Product SKU")]
StoreIdPath = Annotated[str, Path(pattern=SKU_PATTERN, description="Store id")]


@router.get("/products")
def list_products(
    db: DbSession,
    _key: ReadKey,
    cursor: PageCursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    category: Annotated[
        str | None,
        Query(
            min_length=1,
            description="Category path prefix (an empty one is refused: 422)",
        ),
    ] = None,
) -> Page[ProductOut]:
    """Products in SKU order, one page at a time (the last page has no next_cursor)."""
    products = service.list_products(db, after_sku=cursor, limit=limit + 1, category=category)
    return page_of(products, limit=limit, item=ProductOut.model_validate, cursor=lambda p: p.sku)


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


@router.post("/products/bulk", response_model=BulkResult)
def bulk_upsert_products(
    body: ProductBulkIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Create or update up to 1,000 products in one transaction: all or none."""
    return run_idempotent(
        db,
        scope=f"catalog.products:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.upsert_products(
            db, products=body.products, before_commit=hook
        ),
        render=lambda count: BulkResult(upserted=count).model_dump(mode="json"),
    )


@router.get("/stores")
def list_stores(db: DbSession, _key: ReadKey) -> list[StoreOut]:
    """Every store."""
    return [StoreOut.model_validate(store) for store in service.list_stores(db)]


@router.post("/stores/bulk", response_model=BulkResult)
def bulk_upsert_stores(
    body: StoreBulkIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Create or update up to 1,000 stores in one transaction: all or none."""
    return run_idempotent(
        db,
        scope=f"catalog.stores:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.upsert_stores(db, stores=body.stores, before_commit=hook),
        render=lambda count: BulkResult(upserted=count).model_dump(mode="json"),
    )


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
    lat: Annotated[float | None, Query(ge=-90, le=90, description="Latitude, with lon")] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180, description="Longitude, with lat")] = None,
) -> list[AvailabilityOut]:
    """Availability at each store and the web, nearest first from (lat, lon)."""
    if (lat is None) != (lon is None):
        # Half a point places nothing: refused rather than quietly ignored.
        missing = "lat" if lat is None else "lon"
        message = "lat and lon go together: give both, or neither"
        raise InvalidInput(
            f"{missing}: {message}",
            field=missing,
            errors=[field_error(("query", missing), message, "missing")],
        )
    if service.get_product(db, sku=sku) is None:
        raise NotFound(f"No product with SKU {sku!r}", field="sku")
    return [
        AvailabilityOut(**vars(a))
        for a in service.stock_view(db, sku=sku, latitude=lat, longitude=lon)
    ]


@router.post("/prices/channel", status_code=status.HTTP_201_CREATED, response_model=ChannelPriceOut)
def set_channel_price(
    body: ChannelPriceIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Record a deliberate price exception for a channel or store, with its reason. It
    begins now, and ends the rule in force for the same SKU, channel and store."""
    return run_idempotent(
        db,
        scope=f"catalog.channel_price:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: service.set_channel_price(
            db,
            sku=body.sku,
            channel=body.channel,
            price_minor=body.price_minor,
            reason=body.reason,
            store_id=body.store_id,
            before_commit=hook,
        ),
        render=lambda rule: _rule_out(rule).model_dump(mode="json"),
    )


@router.delete("/prices/channel/{rule_id}")
def end_channel_price(
    rule_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="The rule's rule_id")],
    db: DbSession,
    _key: WriteKey,
) -> ChannelPriceOut:
    """End a price rule now; it stays in the product's history. Ending one that has ended
    changes nothing."""
    return _rule_out(service.end_channel_price(db, rule_id=rule_id))


def _rule_out(rule: ChannelPrice) -> ChannelPriceOut:
    return ChannelPriceOut(
        sku=rule.sku,
        channel=rule.channel,
        store_id=rule.store_id,
        price_minor=rule.price_minor,
        reason=rule.reason,
        rule_id=rule.id,
        valid_from=rule.valid_from,
        valid_to=rule.valid_to,
    )


@router.get("/prices/consistency")
def price_consistency(
    db: DbSession,
    _key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: PageCursor = None,
) -> Page[PriceDifferenceOut]:
    """Every live price rule that sets a price other than the catalogue's, with its reason,
    by SKU, a page at a time."""
    found = service.price_consistency_report(db, limit=limit + 1, after=cursor)
    return page_of(
        found,
        limit=limit,
        item=lambda d: PriceDifferenceOut(
            sku=d.sku,
            name=d.name,
            catalogue_price_minor=d.catalogue_price_minor,
            channel=d.channel,
            store_id=d.store_id,
            price_minor=d.price_minor,
            reason=d.reason,
            rule_id=d.rule_id,
        ),
        cursor=lambda d: str(d.rule_id),
    )
