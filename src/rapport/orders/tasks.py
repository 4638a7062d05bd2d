"""The orders domain's background work: late-delivery detection (the notices themselves are
sent by the campaigns domain), the return-risk model, and orders and returns from tracked
e-commerce events (the ``orders.tracked`` processor)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events import service as events
from rapport.orders import service
from rapport.orders.return_risk import serving as risk_serving
from rapport.platform import jobs
from rapport.platform.settings import get_settings


@jobs.job("orders.flag_late_deliveries")
def flag_late_deliveries(db: Session, payload: dict[str, Any]) -> None:
    """Emit ``delivery_late`` once per order that missed or will miss its promise."""
    service.flag_late_deliveries(db)


@jobs.job("orders.release_uncollected_pickups")
def release_uncollected_pickups(db: Session, payload: dict[str, Any]) -> None:
    """Cancel the pick-up orders not collected by their deadline and tell their customers."""
    service.release_uncollected_pickups(db)


@jobs.job("orders.train_return_risk")
def train_return_risk(db: Session, payload: dict[str, Any]) -> None:
    """Retrain the return-risk model on the orders and returns held now."""
    risk_serving.train_return_risk(
        db, data_dir=get_settings().data_dir, seed=int(payload.get("seed", 0))
    )


jobs.scheduled("orders.flag_late_deliveries", every=timedelta(minutes=15))
jobs.scheduled("orders.release_uncollected_pickups", every=timedelta(hours=1))
jobs.scheduled("orders.train_return_risk", every=timedelta(days=1))


@jobs.job("orders.fit_customer_value")
def fit_customer_value(db: Session, payload: dict[str, Any]) -> None:
    """Refit customer lifetime value (BG/NBD, Gamma-Gamma) on the orders held now and rewrite
    every customer's predicted value, probability alive and value tier."""
    service.fit_customer_value(db)


jobs.scheduled("orders.fit_customer_value", every=timedelta(days=1))

# A customer merge moves the merged-away profile's orders, returns and notices, in its own
# transaction (customers.merge_step).
customers.merge_step("orders")(service.merge_customer_orders)


def _tracked_order_of(event: events.LoggedEvent) -> set[str]:
    """The order a tracked e-commerce event is about."""
    order_id = (event.properties or {}).get("order_id")
    return {f"order:{order_id}"} if isinstance(order_id, str | int) and order_id != "" else set()


# Segment's "Order Completed" / "Order Refunded" / "Order Cancelled" as orders, returns and
# cancellations (orders.tracked): an order's refund or cancellation after its completion, so a
# held event of an order holds that order's later ones behind it.
events.processor(service.TRACKED_ORDERS_PROCESSOR, batch_size=500, in_order_by=_tracked_order_of)(
    service.process_tracked_orders
)
