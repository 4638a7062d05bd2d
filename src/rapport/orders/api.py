"""Order endpoints: place orders from any channel, pick-up in store, delivery updates,
returns, the promise and returns reports, and customer lifetime value."""

from __future__ import annotations

import io
from datetime import UTC, datetime, time
from typing import Annotated, Any, Literal

import qrcode
import qrcode.image.svg
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.flows import orders as order_flows
from rapport.orders import service
from rapport.orders.return_risk import serving as risk_serving
from rapport.orders.schemas import (
    CancelIn,
    ChargedDifferenceOut,
    ChargedPriceReportOut,
    ChargedTotalsOut,
    CustomerValueOut,
    LineOut,
    OrderIn,
    OrderOut,
    PickupIn,
    ReturnIn,
    ReturnOut,
    ReturnRiskIn,
    ReturnRiskOut,
    StatusChangeOut,
    StatusIn,
    ValueFitOut,
)
from rapport.orders.tracked.api import router as tracked_router
from rapport.platform.auth import ReadKey, WriteKey, admit_coupon_codes
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput, NotFound
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.schemas import Page, PageCursor, QueryDate, page_of
from rapport.platform.settings import AppSettings

router = APIRouter(prefix="/v1/orders", tags=["orders"])
# Tracked orders' refusals, before the /{order_id} routes: /tracked/... is not an order id.
router.include_router(tracked_router)


def _order_out(db: Session, order: Any) -> OrderOut:
    out = OrderOut.model_validate(order)
    out.lines = [
        LineOut.model_validate(line) for line in service.get_lines(db, order_id=order.order_id)
    ]
    out.status_history = [
        StatusChangeOut.model_validate(change)
        for change in service.status_history(db, order_id=order.order_id)
    ]
    if order.pickup_code:
        out.pickup_qr_url = f"/v1/orders/{order.order_id}/pickup-qr.svg"
    out.collect_by = service.collect_by(order)
    return out


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderOut)
def place_order(
    request: Request,
    body: OrderIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Place an order from any channel. Totals are recomputed; a mismatch is 422. Pick-up
    orders reserve the store's stock and answer a pick-up code and its QR image. With a
    ``loyalty`` block the order must carry exactly the checkout effects, which are applied
    with it (points redeemed, coupons consumed), all or nothing. An order with coupon codes
    also counts them toward the key's coupon lookup limit."""
    if body.loyalty is not None and body.loyalty.coupons:
        # Each code is looked up: held to the coupon limit like validation, or orders
        # would be a way to guess codes past it.
        admit_coupon_codes(request, key, codes=len(body.loyalty.coupons))

    return run_idempotent(
        db,
        scope=f"orders.place:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: order_flows.place_order(db, order=body, before_commit=hook),
        render=lambda order: _order_out(db, order).model_dump(mode="json"),
    )


@router.get("")
def list_orders(
    db: DbSession,
    _key: ReadKey,
    customer_id: customers.CustomerRefQuery,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: PageCursor = None,
) -> Page[OrderOut]:
    """A customer's orders across channels, newest first, a page at a time."""
    customer_id = customers.resolve_customer_ref(db, ref=customer_id)
    found = service.customer_orders(db, customer_id=customer_id, limit=limit + 1, after=cursor)
    return page_of(
        found, limit=limit, item=lambda o: _order_out(db, o), cursor=lambda o: o.order_id
    )


@router.get("/reports/promise-kept")
def promise_kept(
    db: DbSession,
    _key: ReadKey,
    by: Literal["channel", "store", "carrier"] = "channel",
    since: QueryDate | None = None,
) -> list[dict[str, Any]]:
    """On-time share of shipped orders whose promised date has come."""
    return [
        {"key": row.key, "due": row.due, "on_time": row.on_time, "share": round(row.share, 4)}
        for row in service.promise_kept(db, by=by, since=since)
    ]


@router.get("/reports/returns-concentration")
def returns_concentration(db: DbSession, _key: ReadKey) -> dict[str, Any]:
    """What share of returns the top 1% and 5% of customers make."""
    return vars(service.returns_concentration(db))


@router.get("/reports/price-consistency")
def price_consistency(
    db: DbSession,
    _key: ReadKey,
    since: Annotated[
        QueryDate | None,
        Query(description="On or after, from midnight UTC (default: 29 days before today)"),
    ] = None,
    until: Annotated[
        QueryDate | None, Query(description="Before, midnight UTC (default: tomorrow)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> ChargedPriceReportOut:
    """What each order line was charged per unit against its channel's price at order time
    (the channel or store rule live then, else today's catalogue price), with the amounts.
    By default the last 30 days, today included, as the admin Orders pages count them."""
    window = service.last_30_days()
    start = datetime.combine(since, time(), tzinfo=UTC) if since else window.since
    end = datetime.combine(until, time(), tzinfo=UTC) if until else window.until
    if end <= start:
        raise InvalidInput("until must be after since", field="until")
    report = service.charged_price_report(db, since=start, until=end, limit=limit)
    return ChargedPriceReportOut(
        since=report.since,
        until=report.until,
        lines_checked=report.lines_checked,
        lines_in_other_currency=report.lines_in_other_currency,
        currency=report.currency,
        overcharged_minor=report.overcharged_minor,
        undercharged_minor=report.undercharged_minor,
        totals=[ChargedTotalsOut(**vars(t)) for t in report.totals],
        truncated=report.truncated,
        differences=[ChargedDifferenceOut(**vars(d)) for d in report.differences],
    )


@router.post(
    "/return-risk",
    responses={404: {"description": "No such customer, or the customer was erased"}},
)
def return_risk(
    body: ReturnRiskIn, db: DbSession, _key: ReadKey, settings: AppSettings
) -> ReturnRiskOut:
    """Before the sale: how likely something in this basket comes back, why, and an offer
    where one pays for itself, for the customer as they stand now (their Rapport id or the
    shop's number; a merged profile's as the one it went into), or for a guest when no
    ``customer_id`` is given. Changes nothing."""
    assessment = risk_serving.assess_return_risk(
        db,
        customer_id=body.customer_id,
        lines=[
            risk_serving.RiskLine(
                sku=line.sku, quantity=line.quantity, unit_price_minor=line.unit_price_minor
            )
            for line in body.lines
        ],
        channel=body.channel,
        currency=body.currency,
        return_cost_minor=body.return_cost_minor
        if body.return_cost_minor is not None
        else settings.return_cost_minor,
        data_dir=settings.data_dir,
    )
    return ReturnRiskOut(**assessment)


@router.get(
    "/customer-value",
    responses={404: {"description": "Not fitted yet: no customer had an order at the last fit"}},
)
def customer_value_fit(db: DbSession, _key: ReadKey) -> ValueFitOut:
    """The customer-value models in use (refitted daily): BG/NBD parameters with time in days,
    Gamma-Gamma with money in minor units."""
    fit = service.value_fit(db)
    if fit is None:
        raise NotFound("Customer value has not been fitted yet")
    return ValueFitOut.model_validate(fit)


@router.get("/customers/{customer_id}/value")
def customer_value(
    customer_id: customers.CustomerRefPath, db: DbSession, _key: ReadKey
) -> CustomerValueOut:
    """The customer's value as last fitted: value tier, predicted value for the next 365 days,
    probability alive, probability of a purchase and expected purchases in the next 90 days."""
    customer_id = customers.resolve_customer_ref(db, ref=customer_id)
    value = service.customer_value(db, customer_id=customer_id)
    if value is None:
        raise NotFound(
            f"No value for customer {customer_id!r} (no order, or not fitted since)",
            field="customer_id",
        )
    return CustomerValueOut.model_validate(value)


@router.get("/{order_id}")
def get_order(order_id: str, db: DbSession, _key: ReadKey) -> OrderOut:
    """One order with its lines and status history (oldest first)."""
    order = service.get_order(db, order_id=order_id)
    if order is None:
        raise NotFound(f"No order {order_id!r}", field="order_id")
    return _order_out(db, order)


@router.get("/{order_id}/pickup-qr.svg", response_class=Response)
def pickup_qr(order_id: str, db: DbSession, _key: ReadKey) -> Response:
    """The pick-up code as a QR image (SVG) for the customer's phone."""
    order = service.get_order(db, order_id=order_id)
    if order is None or order.pickup_code is None:
        raise NotFound(f"Order {order_id!r} has no pick-up code", field="order_id")
    image = qrcode.make(
        f"RAPPORT-PICKUP:{order.order_id}:{order.pickup_code}",
        image_factory=qrcode.image.svg.SvgPathImage,
    )
    buffer = io.BytesIO()
    image.save(buffer)
    return Response(buffer.getvalue(), media_type="image/svg+xml")


@router.post("/{order_id}/pickup", response_model=OrderOut)
def confirm_pickup(
    order_id: str,
    body: PickupIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The till scanned the customer's pick-up code: hand the order over."""
    return run_idempotent(
        db,
        scope=f"orders.pickup:{key.id}",
        key=idempotency_key,
        request_body={"order_id": order_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.confirm_pickup(
            db,
            order_id=order_id,
            pickup_code=body.pickup_code,
            store_id=body.store_id,
            before_commit=hook,
        ),
        render=lambda order: _order_out(db, order).model_dump(mode="json"),
    )


@router.post("/{order_id}/status", response_model=OrderOut)
def update_status(
    order_id: str,
    body: StatusIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A delivery status from the warehouse or carrier."""
    return run_idempotent(
        db,
        scope=f"orders.status:{key.id}",
        key=idempotency_key,
        request_body={"order_id": order_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.update_delivery_status(
            db,
            order_id=order_id,
            status=body.status,
            at=body.at,
            note=body.note,
            before_commit=hook,
        ),
        render=lambda order: _order_out(db, order).model_dump(mode="json"),
    )


@router.post(
    "/{order_id}/cancel",
    response_model=OrderOut,
    responses={409: {"description": "Already cancelled, or handed over: record a return"}},
)
def cancel_order(
    order_id: str,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
    body: CancelIn | None = None,
) -> JSONResponse:
    """Call off an order not yet handed over (not shipped, delivered, collected or sold at
    the till): a pick-up's reserved units are released, a parcel's go back into stock, and
    the member loses the points it earned and gets back the points it was paid with."""
    request = body or CancelIn()
    return run_idempotent(
        db,
        scope=f"orders.cancel:{key.id}",
        key=idempotency_key,
        request_body={"order_id": order_id, **request.model_dump(mode="json")},
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.cancel_order(
            db, order_id=order_id, reason=request.reason, before_commit=hook
        ),
        render=lambda order: _order_out(db, order).model_dump(mode="json"),
    )


@router.post("/{order_id}/returns", status_code=status.HTTP_201_CREATED, response_model=ReturnOut)
def record_return(
    order_id: str,
    body: ReturnIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Units brought back, per line, with the refund owed: ``money_refund_minor`` to pay back,
    and ``points_refund_minor``, the part the order paid with points, which the member gets
    back as points."""

    def render(result: service.RecordedReturn) -> dict[str, Any]:
        return ReturnOut(
            return_id=result.return_id,
            order_id=result.order_id,
            refund_minor=result.refund_minor,
            money_refund_minor=result.money_refund_minor,
            points_refund_minor=result.points_refund_minor,
            lines=[
                {
                    "sku": line.sku,
                    "line_no": line.line_no,
                    "quantity": line.quantity,
                    "reason": line.reason,
                    "refund_minor": line.refund_minor,
                    "restocked_to": line.restocked_to,
                }
                for line in result.lines
            ],
        ).model_dump(mode="json")

    return run_idempotent(
        db,
        scope=f"orders.return:{key.id}",
        key=idempotency_key,
        request_body={"order_id": order_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: service.record_return(
            db,
            order_id=order_id,
            request=body,
            recorded_by=f"api:{key.name}",
            before_commit=hook,
        ),
        render=render,
    )
