"""Admin pages for kept promises: on-time delivery, late deliveries, returns concentration,
a customer's orders across channels, and customer lifetime value (the fitted models, the value
tiers, and each customer's value, also shown on the customer 360 through an htmx panel)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from rapport.customers import service as customers
from rapport.orders import service
from rapport.orders.return_risk import serving as risk_serving
from rapport.platform import clock
from rapport.platform.admin import CsrfChecked, CurrentAdmin, NavItem, add_template_dir, render
from rapport.platform.db import DbSession
from rapport.platform.settings import AppSettings

add_template_dir(Path(__file__).parent / "templates")

NAV = [NavItem("Orders and deliveries", "/admin/orders", "Orders & stock")]
router = APIRouter(prefix="/admin/orders", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def promises_page(
    request: Request, db: DbSession, user: CurrentAdmin, settings: AppSettings
) -> HTMLResponse:
    by_channel = service.promise_kept(db, by="channel")
    by_carrier = service.promise_kept(db, by="carrier")
    distribution = risk_serving.recent_risk_distribution(db, data_dir=settings.data_dir)
    chart = {
        "channel": {row.key: round(row.share * 100, 1) for row in by_channel},
        "carrier": {row.key: round(row.share * 100, 1) for row in by_carrier},
        "risk": distribution,
    }
    return render(
        request,
        "orders/overview.html",
        {
            "user": user,
            "by_channel": by_channel,
            "by_carrier": by_carrier,
            "chart": chart,
            "late": service.late_deliveries(db, limit=50),
            "concentration": service.returns_concentration(db),
            "orders": service.count_orders(db),
            "risk": distribution,
            "charged": service.charged_price_report(
                db, since=clock.now() - timedelta(days=30), until=clock.now(), limit=50
            ),
        },
    )


@router.get("/customer/{customer_id}", response_class=HTMLResponse)
def customer_orders_page(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    customer = customers.get_customer(db, customer_id=customer_id)
    rows = []
    if customer is not None:
        for order in service.customer_orders(db, customer_id=customer.customer_id):
            rows.append(
                {
                    "order": order,
                    "lines": service.get_lines(db, order_id=order.order_id),
                    "history": service.status_history(db, order_id=order.order_id),
                }
            )
    return render(
        request,
        "orders/customer.html",
        {
            "user": user,
            "customer": customer,
            "rows": rows,
            "value": (
                service.customer_value(db, customer_id=customer.customer_id)
                if customer is not None
                else None
            ),
        },
        status_code=200 if customer is not None else 404,
    )


@router.get("/customer-value", response_class=HTMLResponse)
def customer_value_page(
    request: Request, db: DbSession, user: CurrentAdmin, message: str = ""
) -> HTMLResponse:
    """The fitted models' parameters, the value tiers and the most valuable customers."""
    top = service.top_customers(db, limit=20)
    names: dict[str, str] = {}
    for value in top:
        person = customers.get_customer(db, customer_id=value.customer_id)
        if person is not None and (person.first_name or person.last_name):
            names[value.customer_id] = " ".join(
                part for part in (person.first_name, person.last_name) if part
            )
    return render(
        request,
        "orders/customer_value.html",
        {
            "user": user,
            "fit": service.value_fit(db),
            "tiers": service.value_tier_summary(db),
            "top": top,
            "names": names,
            "message": message,
        },
    )


@router.post("/customer-value/fit", dependencies=[CsrfChecked])
def refit_customer_value(request: Request, db: DbSession, user: CurrentAdmin) -> RedirectResponse:
    """Refit now (the daily job does the same)."""
    fit = service.fit_customer_value(db)
    message = (
        f"Fitted on {fit.customers:,} customers in {fit.seconds:.1f} s"
        if fit is not None
        else "No customer has an order yet: nothing to fit"
    )
    return RedirectResponse(f"/admin/orders/customer-value?message={message}", status_code=303)


@router.get("/customer/{customer_id}/value", response_class=HTMLResponse)
def customer_value_panel(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    """The customer's value as an htmx fragment (the customer 360 loads it)."""
    return render(
        request,
        "orders/customer_value_panel.html",
        {"value": service.customer_value(db, customer_id=customer_id), "customer_id": customer_id},
    )
