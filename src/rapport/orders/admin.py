"""Admin pages for orders and kept promises: on-time delivery by channel and carrier, return
risk, returns concentration, the orders and late deliveries lists (filtered, a page at a
time), lines charged otherwise than their channel price, customer lifetime value, and the
customer 360's orders panel (orders across channels, returns with their reasons, the return
risk of a basket like the last one)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from rapport.customers import service as customers
from rapport.orders import listing, service
from rapport.orders.return_risk import serving as risk_serving
from rapport.orders.schemas import ReturnIn, ReturnLineIn, ReturnReason
from rapport.platform import clock
from rapport.platform.admin import (
    CSRF_FIELD,
    CsrfChecked,
    CurrentAdmin,
    CustomerPanel,
    FormFields,
    NavItem,
    add_template_dir,
    form_token,
    redirect_saying,
    render,
    run_form_once,
    sent_token,
    whole_number,
)
from rapport.platform.charts import Chart, Series
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput, NotFound, Problem
from rapport.platform.formatting import money
from rapport.platform.idempotency import HEADER, ClaimLost
from rapport.platform.paging import PageParams, PageRequest
from rapport.platform.settings import AppSettings

add_template_dir(Path(__file__).parent / "templates")

NAV = [
    NavItem("Orders and deliveries", "/admin/orders", "Orders & stock"),
    NavItem("Orders list", "/admin/orders/list", "Orders & stock"),
    NavItem("Customer value", "/admin/orders/customer-value", "Orders & stock"),
]
CUSTOMER_PANELS = [
    CustomerPanel("Orders", "/admin/orders/customers/{customer_id}/panel", 30, wide=True),
    CustomerPanel("Returns", "/admin/orders/customers/{customer_id}/returns-panel", 35),
]
router = APIRouter(prefix="/admin/orders", include_in_schema=False)


def _list_page_request(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=10, le=200)] = 25,
) -> PageRequest:
    # 25 orders a page: each row is an order with its customer, channel and promise.
    return PageRequest(page=page, per_page=per_page)


ListPageParams = Annotated[PageRequest, Depends(_list_page_request)]


def _customer_page_request(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=5, le=100)] = 10,
) -> PageRequest:
    # 10 orders a page: each comes with its lines and status history.
    return PageRequest(page=page, per_page=per_page)


CustomerPageParams = Annotated[PageRequest, Depends(_customer_page_request)]

TIER_NAMES = {"top1": "Top 1%", "top5": "Top 5%", "top20": "Top 20%", "rest": "Rest"}


def promise_chart(rows: list[service.PromiseKept], *, by: str) -> Chart:
    """On-time share per channel or carrier: the figures ``/v1/orders/reports/promise-kept``
    serves."""
    return Chart(
        id=f"promise-{by}",
        kind="bar",
        labels=[row.key.replace("_", " ") for row in rows],
        series=[Series("On time", [round(row.share, 4) for row in rows], color="#00a86b")],
        unit="share",
        y_max=100,
        label_heading=by.capitalize(),
        title=f"On-time share by {by}",
    )


def risk_chart(distribution: dict[str, Any]) -> Chart:
    return Chart(
        id="risk-distribution",
        kind="bar",
        labels=list(distribution["bands"]),
        series=[Series("Orders", list(distribution["counts"]), color="#f59e0b")],
        unit="count",
        label_heading="Predicted risk",
        title="Recent orders by predicted return risk",
    )


def risk_returned_chart(distribution: dict[str, Any]) -> Chart:
    return Chart(
        id="risk-returned",
        kind="bar",
        labels=list(distribution["bands"]),
        series=[Series("Returned", list(distribution["returned_share"]))],
        unit="share",
        y_max=100,
        label_heading="Predicted risk",
        title="Share returned within 30 days, per predicted band",
    )


@router.get("", response_class=HTMLResponse)
def promises_page(
    request: Request, db: DbSession, user: CurrentAdmin, settings: AppSettings
) -> HTMLResponse:
    by_channel = service.promise_kept(db, by="channel")
    by_carrier = service.promise_kept(db, by="carrier")
    distribution = risk_serving.recent_risk_distribution(db, data_dir=settings.data_dir)
    late = listing.OrderFilter(late_only=True)
    window = service.last_30_days()
    charged = service.charged_price_report(db, since=window.since, until=window.until, limit=5000)
    due = sum(row.due for row in by_channel)
    late_orders = listing.list_orders(db, where=late, limit=10)
    return render(
        request,
        "orders/overview.html",
        {
            "user": user,
            "channel_chart": promise_chart(by_channel, by="channel"),
            "carrier_chart": promise_chart(by_carrier, by="carrier"),
            "on_time_share": sum(row.on_time for row in by_channel) / due if due else None,
            "due": due,
            "risk": distribution,
            "min_band_orders": risk_serving.MIN_BAND_ORDERS,
            "risk_chart": risk_chart(distribution) if distribution["model"] else None,
            "risk_returned_chart": (
                risk_returned_chart(distribution) if distribution["model"] else None
            ),
            "late": late_orders,
            "names": _names(db, {o.customer_id for o in late_orders if o.customer_id}),
            "late_total": listing.count_orders(db, where=late),
            "concentration": service.returns_concentration(db),
            "orders": service.count_orders(db),
            "charged": charged,
        },
    )


def _names(db: DbSession, customer_ids: set[str]) -> dict[str, str]:
    """Each customer's name (or email) for the lists; their id where they have neither."""
    names = {}
    for customer_id in customer_ids:
        person = customers.get_customer(db, customer_id=customer_id)
        if person is None:
            continue
        name = " ".join(part for part in (person.first_name, person.last_name) if part)
        names[customer_id] = name or person.email or customer_id
    return names


def _orders_list(
    request: Request,
    db: DbSession,
    user: Any,
    paging_request: ListPageParams,
    where: listing.OrderFilter,
    *,
    title: str,
) -> HTMLResponse:
    paging = paging_request.of(listing.count_orders(db, where=where))
    orders = listing.list_orders(db, where=where, offset=paging.offset, limit=paging.per_page)
    now = clock.now()
    return render(
        request,
        "orders/list.html",
        {
            "user": user,
            "title": title,
            "orders": orders,
            "promise": {o.order_id: listing.promise_state(o, now) for o in orders},
            "collect_by": {o.order_id: service.collect_by(o) for o in orders},
            "names": _names(db, {o.customer_id for o in orders if o.customer_id}),
            "paging": paging,
            "where": where,
            "channels": listing.CHANNELS,
            "statuses": listing.statuses(db),
            "carriers": listing.carriers(db),
        },
    )


@router.get("/list", response_class=HTMLResponse)
def orders_list_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: ListPageParams,
    q: str = "",
    channel: str = "",
    status: str = "",
    carrier: str = "",
    late: bool = False,
) -> HTMLResponse:
    """Every order, newest first, filtered by order or customer (as the customers list finds
    them: name, email, customer number ...), channel, status, carrier and lateness."""
    where = listing.OrderFilter(
        query=q.strip()[:100],
        channel=channel[:20],
        status=status[:20],
        carrier=carrier[:40],
        late_only=late,
    )
    title = "Late deliveries" if late else "Orders"
    return _orders_list(request, db, user, paging_request, where, title=title)


@router.get("/late", response_class=HTMLResponse)
def late_page(request: Request, user: CurrentAdmin) -> RedirectResponse:
    return RedirectResponse("/admin/orders/list?late=true", status_code=303)


@router.get("/charged", response_class=HTMLResponse)
def charged_page(
    request: Request, db: DbSession, user: CurrentAdmin, paging_request: PageParams
) -> HTMLResponse:
    """Order lines of the last 30 days charged otherwise than their channel price."""
    window = service.last_30_days()
    report = service.charged_price_report(db, since=window.since, until=window.until, limit=5000)
    paging = paging_request.of(len(report.differences))
    return render(
        request,
        "orders/charged.html",
        {
            "user": user,
            "charged": report,
            "rows": report.differences[paging.offset : paging.offset + paging.per_page],
            "paging": paging,
        },
    )


@router.get("/customer/{customer_id}", response_class=HTMLResponse)
def customer_orders_page(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: CustomerPageParams,
) -> HTMLResponse:
    """A customer's orders across channels with their lines and status history, ten at a
    time; an order not handed over yet can be cancelled from here, and a return of one handed
    over recorded."""
    return _customer_orders(request, db, user, customer_id, paging_request)


# What the return form shows before anything is typed (plus each line's quantity, empty).
RETURN_VALUES = {"reason": "", "channel": "call_center", "restock": ""}
RETURN_CHANNELS = ("call_center", "store", "web", "app")


def _customer_orders(
    request: Request,
    db: DbSession,
    user: Any,
    customer_id: str,
    paging_request: PageRequest,
    *,
    return_order: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The customer's orders page; with ``return_order``, ``values`` and ``errors``, that
    order's return form as the user sent it, each message beside its field."""
    customer = customers.get_customer(db, customer_id=customer_id)
    said = customers.gone_notice(db, customer_id) if customer is not None else None
    if said is not None:
        # erased: said as the customer page says it (not "No orders yet")
        return render(request, "customers/gone.html", {"user": user, "said": said}, status_code=404)
    rows = []
    paging = paging_request.of(0)
    if customer is not None:
        view = listing.customer_orders_view(
            db,
            customer_id=customer.customer_id,
            offset=paging_request.offset,
            limit=paging_request.per_page,
        )
        paging = paging_request.of(view.total_orders)
        for order in view.orders:
            history = service.status_history(db, order_id=order.order_id)
            lines = service.get_lines(db, order_id=order.order_id)
            rows.append(
                {
                    "order": order,
                    "lines": lines,
                    "history": history,
                    "cancellable": service.cancellable(order, [h.status for h in history], lines),
                    "returnable": service.returnable(order, lines),
                    # As the orders list has it: "" (nothing owed, as for a cancelled order).
                    "promise": listing.promise_state(order),
                    "collect_by": service.collect_by(order),
                }
            )
    return render(
        request,
        "orders/customer.html",
        {
            "user": user,
            "customer": customer,
            "rows": rows,
            "paging": paging,
            "value": (
                service.customer_value(db, customer_id=customer.customer_id)
                if customer is not None
                else None
            ),
            "tier_names": TIER_NAMES,
            "reasons": get_args(ReturnReason),
            "return_channels": RETURN_CHANNELS,
            "return_order": return_order,
            "values": {**RETURN_VALUES, **(values or {})},
            "errors": errors or {},
            # A fresh one-time token per rendering: the return form sent twice records once.
            "return_token": form_token(),
        },
        status_code=status_code if customer is not None else 404,
    )


# The most units of a SKU one return takes (ReturnLineIn's bound, as the API has it).
RETURN_QUANTITY_MAX = next(
    bound.le for bound in ReturnLineIn.model_fields["quantity"].metadata if hasattr(bound, "le")
)
# How long a form sent again waits for the first sending still being recorded (a double
# click), to answer what it did rather than "still being processed".
RETURN_REPEAT_WAIT_S = 5.0
# What the form says when its one-time token was sent before with other units (422), or is
# still being recorded after that wait (409).
REPEAT_REFUSED = {
    422: "This form was sent already with other units; open the orders page again to record"
    " another return",
    409: "This return is still being recorded; open the orders page again in a moment",
}


_FORM_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")


def _return_lines(
    lines: list[Any], form: dict[str, str]
) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    """The return's lines from the form's ``quantity_<line_no>`` fields (a SKU on several lines
    summed into one, as the API takes it): the lines, the form field each line's message goes
    beside, and the messages for fields that are no quantity."""
    errors: dict[str, str] = {}
    by_sku: dict[str, int] = {}
    field_of: dict[str, str] = {}
    for line in lines:
        name = f"quantity_{line.line_no}"
        typed = form.get(name, "").strip()
        if not typed:
            continue
        left = line.quantity - line.returned_quantity
        quantity = whole_number(typed, high=RETURN_QUANTITY_MAX)
        if quantity is None:
            errors[name] = f"A whole number of units, from 0 to {left}"
            continue
        if quantity > 0:
            by_sku[line.sku] = by_sku.get(line.sku, 0) + quantity
            field_of.setdefault(line.sku, name)
    return (
        [{"sku": sku, "quantity": quantity} for sku, quantity in by_sku.items()],
        [field_of[sku] for sku in by_sku],
        errors,
    )


@router.post("/{order_id}/returns", dependencies=[CsrfChecked])
def record_return(
    request: Request,
    order_id: str,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: CustomerPageParams,
    form: FormFields,
) -> Response:
    """Record a return of units of the order, as POST /v1/orders/{order_id}/returns does
    (refund, stock, points given back and taken back), recorded as by the signed-in admin. A
    quantity above what is left to return, or none chosen, comes back beside its field with
    what was typed kept, and nothing changes."""
    order = service.get_order(db, order_id=order_id)
    if order is None or order.customer_id is None:
        raise NotFound(f"No order {order_id!r}", field="order_id")
    customer_id = order.customer_id
    values = {key: value[:100] for key, value in form.items() if key != CSRF_FIELD}
    lines, fields, errors = _return_lines(service.get_lines(db, order_id=order_id), form)
    reason, channel = form.get("reason", ""), form.get("channel", "")
    if reason not in get_args(ReturnReason):
        errors["reason"] = "Choose why the units came back"
    if channel not in RETURN_CHANNELS:
        errors["channel"] = f"Choose where they came back: {', '.join(RETURN_CHANNELS)}"
    if not lines and not errors:
        errors["lines"] = "Choose the units that came back: a quantity on at least one line"
    token = sent_token(form)
    if not errors and not token:
        errors["lines"] = "This form has expired; open the orders page again"
    elif not errors and not _FORM_TOKEN.fullmatch(token):
        # Not one this page gave out (form_token: URL-safe, as Idempotency-Key at most 200
        # characters): said so, rather than "sent already" from the key's own refusal.
        errors["lines"] = (
            "This form is not valid (not one this page gave out); open the orders page again"
        )
    if not errors:
        try:
            request_in = ReturnIn(
                lines=[
                    ReturnLineIn(
                        sku=line["sku"],
                        quantity=line["quantity"],
                        reason=reason,
                        restock=bool(form.get("restock")),
                    )
                    for line in lines
                ],
                channel=channel,
            )
        except ValidationError as invalid:
            for error in invalid.errors():
                field = ".".join(str(part) for part in error["loc"])
                errors[_form_field(field, fields)] = "Too many units for one return"
    if not errors:
        try:
            said, replayed = _record_return_once(
                db, user=user, order=order, request_in=request_in, token=token
            )
        except Problem as problem:
            db.rollback()
            errors[_form_field(problem.field, fields)] = (
                REPEAT_REFUSED.get(problem.status, problem.detail or problem.title)
                if problem.field == HEADER
                else problem.detail or problem.title
            )
        else:
            if replayed:
                said += " The form was sent twice; the return was recorded once."
            return redirect_saying(
                request, f"/admin/orders/customer/{customer_id}#order-{order_id}", said
            )
    return _customer_orders(
        request,
        db,
        user,
        customer_id,
        paging_request,
        return_order=order_id,
        values=values,
        errors=errors,
        status_code=409 if "order_id" in errors else 422,
    )


def _record_return_once(
    db: DbSession, *, user: Any, order: Any, request_in: ReturnIn, token: str
) -> tuple[str, bool]:
    """Record the return once per form: the form's one-time token is the command's
    Idempotency-Key (scoped to the admin user and the order), as the API's key is, so the
    same form sent again answers what the first sending said and applies nothing. A sending
    still being recorded is waited for, briefly. What the page says, and whether it was a
    repeat."""
    waited_until = time.monotonic() + RETURN_REPEAT_WAIT_S
    while True:
        try:
            answer, replayed = run_form_once(
                db,
                user=user,
                action="return",
                subject=order.order_id,
                token=token,
                request_body={"order_id": order.order_id, **request_in.model_dump(mode="json")},
                execute=lambda hook: service.record_return(
                    db,
                    order_id=order.order_id,
                    request=request_in,
                    recorded_by=user.email,
                    before_commit=hook,
                ),
                render=lambda result: {"said": _return_said(result, order.currency)},
            )
        except Problem as problem:
            still_running = (
                problem.status == 409
                and problem.field == HEADER
                and not isinstance(problem, ClaimLost)
            )
            if not still_running or time.monotonic() >= waited_until:
                raise
            db.rollback()
            time.sleep(0.2)
            continue
        return str(answer["said"]), replayed


def _form_field(field: str | None, fields: list[str]) -> str:
    """The return form's field a refusal naming ``field`` goes beside: ``lines.<i>.…`` is the
    quantity of that line; anything else above the lines."""
    parts = (field or "").split(".")
    if len(parts) == 3 and parts[0] == "lines" and parts[1].isdigit():
        index = int(parts[1])
        if index < len(fields):
            return fields[index]
    return field if field in ("order_id", "store_id") else "lines"


def _return_said(result: service.RecordedReturn, currency: str) -> str:
    """What the orders page says once a return is recorded."""
    units = sum(line.quantity for line in result.lines)
    said = (
        f"Return {result.return_id} recorded for order {result.order_id}: {units} "
        f"unit{'s' if units != 1 else ''}, {money(result.money_refund_minor, currency)} to pay "
        "back"
    )
    if result.points_refund_minor:
        said += f", {money(result.points_refund_minor, currency)} paid in points given back"
    return said + "."


@router.post("/{order_id}/cancel", dependencies=[CsrfChecked])
def cancel_order(
    request: Request,
    order_id: str,
    db: DbSession,
    user: CurrentAdmin,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    """Cancel an order not yet handed over, as POST /v1/orders/{order_id}/cancel does; the
    customer's orders page says what happened (or why it could not be)."""
    order = service.get_order(db, order_id=order_id)
    if order is None or order.customer_id is None:
        raise NotFound(f"No order {order_id!r}", field="order_id")
    customer_id = order.customer_id
    try:
        service.cancel_order(db, order_id=order_id, reason=reason.strip() or None)
        said = f"Order {order_id} cancelled"
    except Problem as problem:
        db.rollback()
        said = problem.detail or problem.title
    return redirect_saying(request, f"/admin/orders/customer/{customer_id}#order-{order_id}", said)


def _basket_risk(
    db: DbSession, settings: AppSettings, customer_id: str, order: Any
) -> dict[str, Any] | None:
    """The return risk of a basket like the customer's last order (what the model says of
    this customer now); None when it cannot be scored."""
    lines = service.get_lines(db, order_id=order.order_id)
    if not lines:
        return None
    try:
        return risk_serving.assess_return_risk(
            db,
            customer_id=customer_id,
            lines=[
                risk_serving.RiskLine(
                    sku=line.sku, quantity=line.quantity, unit_price_minor=line.unit_price_minor
                )
                for line in lines
            ],
            channel=order.channel,
            currency=order.currency,
            return_cost_minor=settings.return_cost_minor,
            data_dir=settings.data_dir,
            wait=False,
        )
    except risk_serving.HistoryLoading:
        # The first look since the server started: say so rather than hold the panel.
        return {"loading": True}
    except InvalidInput:  # a product since removed from the catalogue: no score, the panel stays
        return None
    except NotFound:  # an erased customer: nothing is scored on their history
        return None


@router.get("/customers/{customer_id}/panel", response_class=HTMLResponse)
def customer_panel(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: CurrentAdmin,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """The customer 360's orders panel (an htmx fragment): orders across channels, ten at a
    time, with the delivery promise kept or late."""
    per_page = 10
    view = listing.customer_orders_view(
        db, customer_id=customer_id, offset=(page - 1) * per_page, limit=per_page
    )
    pages = max(1, -(-view.total_orders // per_page))
    if page > pages:  # past the end: the last page
        page = pages
        view = listing.customer_orders_view(
            db, customer_id=customer_id, offset=(page - 1) * per_page, limit=per_page
        )
    return render(
        request,
        "orders/customer_panel.html",
        {
            "customer_id": customer_id,
            "view": view,
            "page": page,
            "pages": pages,
        },
    )


@router.get("/customers/{customer_id}/returns-panel", response_class=HTMLResponse)
def customer_returns_panel(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: CurrentAdmin,
    settings: AppSettings,
) -> HTMLResponse:
    """The customer 360's returns panel (an htmx fragment): what came back and why, their
    return rate, and the return risk of a basket like their last order."""
    view = listing.customer_orders_view(db, customer_id=customer_id, limit=1)
    risk = _basket_risk(db, settings, customer_id, view.orders[0]) if view.orders else None
    return render(
        request,
        "orders/customer_returns_panel.html",
        {"customer_id": customer_id, "view": view, "risk": risk},
    )


@router.get("/customer-value", response_class=HTMLResponse)
def customer_value_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    """The fitted models' parameters, the value tiers and the most valuable customers."""
    top = service.top_customers(db, limit=20)
    names: dict[str, str] = {}
    for value in top:
        person = customers.get_customer(db, customer_id=value.customer_id)
        if person is not None and (person.first_name or person.last_name):
            names[value.customer_id] = " ".join(
                part for part in (person.first_name, person.last_name) if part
            )
    tiers = service.value_tier_summary(db)
    tier_chart = Chart(
        id="value-tiers",
        kind="bar",
        labels=[TIER_NAMES.get(t.tier, t.tier) for t in tiers],
        series=[Series("Predicted value, next 365 days", [t.predicted_value_minor for t in tiers])],
        unit="money",
        label_heading="Tier",
        title="Predicted value per tier",
    )
    return render(
        request,
        "orders/customer_value.html",
        {
            "user": user,
            "fit": service.value_fit(db),
            "tiers": tiers,
            "tier_chart": tier_chart if tiers else None,
            "tier_names": TIER_NAMES,
            "top": top,
            "names": names,
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
    return redirect_saying(request, "/admin/orders/customer-value", message)


@router.get("/customer/{customer_id}/value", response_class=HTMLResponse)
def customer_value_panel(
    request: Request, customer_id: str, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    """The customer's value as an htmx fragment (the customer 360 loads it)."""
    return render(
        request,
        "orders/customer_value_panel.html",
        {
            "value": service.customer_value(db, customer_id=customer_id),
            "customer_id": customer_id,
            "tier_names": TIER_NAMES,
        },
    )
