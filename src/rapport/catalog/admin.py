"""Admin pages for prices and stock across channels: the product list (price on each channel,
units online and in the shops), a product's prices per channel and stock per store, and the
consistency report (prices that differ between channels and why, stock out of step)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from rapport.catalog import views
from rapport.platform.admin import CurrentAdmin, NavItem, add_template_dir, render
from rapport.platform.db import DbSession
from rapport.platform.paging import PageRequest

add_template_dir(Path(__file__).parent / "templates")

NAV = [
    NavItem("Prices and stock", "/admin/catalog/products", "Orders & stock"),
    NavItem("Price and stock consistency", "/admin/catalog/consistency", "Orders & stock"),
]
router = APIRouter(prefix="/admin/catalog", include_in_schema=False)


def _page_request(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=10, le=200)] = 25,
) -> PageRequest:
    # 25 rows a page: each product row carries five prices and its stock.
    return PageRequest(page=page, per_page=per_page)


PageParams = Annotated[PageRequest, Depends(_page_request)]


@router.get("/products", response_class=HTMLResponse)
def products_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    q: str = "",
    category: str = "",
) -> HTMLResponse:
    """Products a page at a time, searched by SKU or name and filtered by category."""
    q, category = q.strip()[:100], category.strip()[:300]
    paging = paging_request.of(views.count_products(db, query=q, category=category))
    rows = views.product_rows(
        db, query=q, category=category, offset=paging.offset, limit=paging.per_page
    )
    return render(
        request,
        "catalog/products.html",
        {
            "user": user,
            "rows": rows,
            "paging": paging,
            "q": q,
            "category": category,
            "categories": views.top_categories(db),
            "channels": views.CHANNELS,
        },
    )


@router.get("/products/{sku}", response_class=HTMLResponse)
def product_page(request: Request, sku: str, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    """One product: its price on each channel and its stock at each location."""
    detail = views.product_detail(db, sku=sku)
    return render(
        request,
        "catalog/product.html",
        {"user": user, "detail": detail, "sku": sku},
        status_code=200 if detail is not None else 404,
    )


@router.get("/consistency", response_class=HTMLResponse)
def consistency_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    show: str = "prices",
    channel: str = "",
) -> HTMLResponse:
    """Prices that differ between channels (each with the rule's reason), or stock out of
    step between the web warehouse and the shops, a page at a time: the database counts and
    reads the page, never the whole list."""
    channel = channel.strip()[:20]
    differences, products_differing = views.count_price_differences(db, channel=channel or None)
    gaps, sold_out_everywhere = views.count_stock_gaps(db)
    show = "stock" if show == "stock" else "prices"
    paging = paging_request.of(differences if show == "prices" else gaps)
    rows: list[object]
    if show == "prices":
        rows = list(
            views.price_consistency_report(
                db, channel=channel or None, offset=paging.offset, limit=paging.per_page
            )
        )
    else:
        rows = list(views.stock_gaps(db, offset=paging.offset, limit=paging.per_page))
    return render(
        request,
        "catalog/consistency.html",
        {
            "user": user,
            "show": show,
            "channel": channel,
            "channels": views.price_channels(db),
            "rows": rows,
            "paging": paging,
            "price_differences": differences,
            "products_differing": products_differing,
            "stock_gaps": gaps,
            "sold_out_everywhere": sold_out_everywhere,
        },
    )
