"""Admin pages for prices and stock across channels: the product list (price on each channel,
units online and in the shops), a product's prices per channel and stock per store, and the
consistency report (prices that differ between channels and why, stock out of step)."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from rapport.catalog import service, views
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    NavItem,
    add_template_dir,
    flash,
    redirect_saying,
    render,
)
from rapport.platform.db import DbSession
from rapport.platform.errors import NotFound
from rapport.platform.paging import PageRequest

add_template_dir(FilePath(__file__).parent / "templates")

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
    """One product: its price on each channel and its stock at each location, and its price
    rules, each live or future one with an *End rule* link."""
    detail = views.product_detail(db, sku=sku)
    return render(
        request,
        "catalog/product.html",
        {"user": user, "detail": detail, "sku": sku},
        status_code=200 if detail is not None else 404,
    )


RuleId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The rule's rule_id")]


def _rule_ending(db: DbSession, sku: str, rule_id: int) -> views.RuleEnding:
    ending = views.rule_ending(db, sku=sku, rule_id=rule_id)
    if ending is None:
        raise NotFound(f"Product {sku} has no price rule {rule_id}", field="rule_id")
    return ending


@router.get("/products/{sku}/rules/{rule_id}/end", response_class=HTMLResponse)
def confirm_end_rule(
    request: Request, sku: str, rule_id: RuleId, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    """Ask before ending a price rule, saying what the price there will be once it ends."""
    ending = _rule_ending(db, sku, rule_id)
    return render(request, "catalog/end_rule.html", {"user": user, "ending": ending})


@router.post("/products/{sku}/rules/{rule_id}/end", dependencies=[CsrfChecked])
def end_rule(
    request: Request, sku: str, rule_id: RuleId, db: DbSession, _user: CurrentAdmin
) -> Response:
    """End a price rule now, as ``DELETE /v1/prices/channel/{rule_id}`` does (one that has
    ended is left as it is), and go back to the product saying so: a 303 for a browser's
    form, ``HX-Redirect`` for htmx."""
    ending = _rule_ending(db, sku, rule_id)
    if ending.ended:
        said = f"Price rule {rule_id} had already ended; nothing changed"
    else:
        service.end_channel_price(db, rule_id=rule_id)
        rule = ending.rule
        where = f"in store {rule.store_id}" if rule.store_id else f"on {rule.channel}"
        said = f"Price rule {rule_id} ({rule.reason}) ended; the price {where} now comes from "
        said += ending.set_by_after
    target = f"/admin/catalog/products/{quote(sku, safe='')}"
    if request.headers.get("hx-request") == "true":
        flash(request, said)
        return Response(status_code=204, headers={"HX-Redirect": target})
    return redirect_saying(request, target, said)


@router.get("/consistency", response_class=HTMLResponse)
def consistency_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    show: str = "prices",
    channel: str = "",
) -> HTMLResponse:
    """Prices that differ between channels (each with the rule's reason), stock out of step
    between the web warehouse and the shops, or the stored rules and stores to fix (saved by
    an earlier version that checked less), a page at a time: the database counts and reads
    the first two's page, never the whole list; the rows to fix are few by nature."""
    channel = channel.strip()[:20]
    differences, products_differing = views.count_price_differences(db, channel=channel or None)
    gaps, sold_out_everywhere = views.count_stock_gaps(db)
    problems = service.catalog_problems(db)
    show = show if show in ("stock", "checks") else "prices"
    counts = {"prices": differences, "stock": gaps, "checks": len(problems)}
    paging = paging_request.of(counts[show])
    rows: list[object]
    if show == "prices":
        rows = list(
            views.price_consistency_report(
                db, channel=channel or None, offset=paging.offset, limit=paging.per_page
            )
        )
    elif show == "stock":
        rows = list(views.stock_gaps(db, offset=paging.offset, limit=paging.per_page))
    else:
        rows = list(problems[paging.offset : paging.offset + paging.per_page])
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
            "problems": len(problems),
        },
    )
