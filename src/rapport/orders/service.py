"""The orders domain's face: the only functions and records other code uses to read or change
orders. Everything else in ``rapport.orders`` is private to the domain.

Every verb owns its transaction and appends its events (``rapport.orders.events``:
``order_placed``, ``order_collected``, ``order_delivered``, ``delivery_late``,
``order_returned``, ``order_cancelled`` …) in it. The verbs live in modules by concept:

- ``placing``: place an order from any channel;
- ``fulfilment``: collection at the till, delivery statuses;
- ``cancelling``: an order called off before it was handed over;
- ``pickups``: pick-up orders' ready notice, collection deadline and release;
- ``promises``: late deliveries and the notices about them, the promise-kept report;
- ``returns``: units brought back and their refund;
- ``reports``: charged prices against channel prices, returns concentration;
- ``history``: bulk-loading orders from history (transaction files, the demo);
- ``purchases``: what customers bought, read by other domains;
- ``campaign_reads``: purchases in bulk for campaigns (categories bought, totals in a window);
- ``records``: one order, its lines and status history;
- ``customer_value/``: lifetime value (BG/NBD, Gamma-Gamma), probability alive, value tiers;
- ``tracked/``: Segment's "Order Completed" and "Order Refunded" as orders and returns (the
  ``orders.tracked`` processor), what became of each, and the refusals kept for the operator;
- ``privacy``: the domain's part of export and erasure;
- ``merging``: the domain's part of a customer merge (orders, returns, notices, value);
- ``return_risk/``: return risk before the sale (the API and the orders page use it within the
  domain; ``warm_return_risk`` starts reading the order history when a server starts).

``Order`` (the placed order as verbs return it), ``OrderIn`` and ``ReturnIn`` (what the
verbs take) are named here too, so callers need nothing else of the domain.
"""

from __future__ import annotations

from rapport.orders.audiences import spent_audience
from rapport.orders.campaign_reads import bought_in_categories, order_totals_in_window
from rapport.orders.cancelling import cancel_order, cancellable
from rapport.orders.customer_value.serving import (
    CustomerValue,
    TierSummary,
    ValueFit,
    customer_value,
    expected_purchases_within,
    fit_customer_value,
    top_customers,
    value_audience,
    value_fit,
    value_tier_summary,
)
from rapport.orders.customer_value.tiers import VALUE_TIERS
from rapport.orders.fulfilment import confirm_pickup, update_delivery_status
from rapport.orders.history import ImportedLine, ImportedOrder, ImportedReturn, import_orders
from rapport.orders.merging import merge_customer_orders
from rapport.orders.models import Order
from rapport.orders.pickups import (
    NOT_COLLECTED_NOTICE,
    READY_NOTICE,
    collect_by,
    release_uncollected_pickups,
)
from rapport.orders.placing import (
    DEFAULT_PROMISE_DAYS,
    PICKUP_CODE_ALPHABET,
    BeforeCommit,
    place_order,
)
from rapport.orders.privacy import PRIVACY_TABLES, erase_customer_data, export_customer_data
from rapport.orders.promises import (
    PromiseKept,
    flag_late_deliveries,
    late_deliveries,
    late_notice_outdated,
    mark_notice_sent,
    notices_for,
    promise_kept,
)
from rapport.orders.purchases import (
    CustomerOrderTotals,
    PurchaseLine,
    delivered_lines,
    delivered_skus,
    order_totals_by_customer,
    purchase_lines,
    recently_bought,
)
from rapport.orders.records import (
    count_orders,
    customer_orders,
    get_lines,
    get_order,
    status_history,
)
from rapport.orders.reports import (
    ChargedDifference,
    ChargedPriceReport,
    Concentration,
    Window,
    charged_price_report,
    concentration,
    last_30_days,
    returns_concentration,
)
from rapport.orders.return_risk.serving import start_history as warm_return_risk
from rapport.orders.returns import RecordedReturn, not_handed_over, record_return, returnable
from rapport.orders.schemas import OrderIn, ReturnIn
from rapport.orders.tracked.outcomes import RefusalPage as TrackedRefusalPage
from rapport.orders.tracked.outcomes import list_refusals as tracked_order_refusals
from rapport.orders.tracked.processor import PROCESSOR as TRACKED_ORDERS_PROCESSOR
from rapport.orders.tracked.processor import process_tracked_orders

__all__ = [
    "DEFAULT_PROMISE_DAYS",
    "NOT_COLLECTED_NOTICE",
    "PICKUP_CODE_ALPHABET",
    "PRIVACY_TABLES",
    "READY_NOTICE",
    "TRACKED_ORDERS_PROCESSOR",
    "VALUE_TIERS",
    "BeforeCommit",
    "ChargedDifference",
    "ChargedPriceReport",
    "Concentration",
    "CustomerOrderTotals",
    "CustomerValue",
    "ImportedLine",
    "ImportedOrder",
    "ImportedReturn",
    "Order",
    "OrderIn",
    "PromiseKept",
    "PurchaseLine",
    "RecordedReturn",
    "ReturnIn",
    "TierSummary",
    "TrackedRefusalPage",
    "ValueFit",
    "Window",
    "bought_in_categories",
    "cancel_order",
    "cancellable",
    "charged_price_report",
    "collect_by",
    "concentration",
    "confirm_pickup",
    "count_orders",
    "customer_orders",
    "customer_value",
    "delivered_lines",
    "delivered_skus",
    "erase_customer_data",
    "expected_purchases_within",
    "export_customer_data",
    "fit_customer_value",
    "flag_late_deliveries",
    "get_lines",
    "get_order",
    "import_orders",
    "last_30_days",
    "late_deliveries",
    "late_notice_outdated",
    "mark_notice_sent",
    "merge_customer_orders",
    "not_handed_over",
    "notices_for",
    "order_totals_by_customer",
    "order_totals_in_window",
    "place_order",
    "process_tracked_orders",
    "promise_kept",
    "purchase_lines",
    "recently_bought",
    "record_return",
    "release_uncollected_pickups",
    "returnable",
    "returns_concentration",
    "status_history",
    "top_customers",
    "tracked_order_refusals",
    "update_delivery_status",
    "value_audience",
    "value_fit",
    "value_tier_summary",
    "warm_return_risk",
]

# --- audiences: customer ids as SELECTs, for campaigns' segments ---
__all__ += ["spent_audience"]

# --- analytics: how many of a period's orders had a return ---
from datetime import datetime  # noqa: E402

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from rapport.orders.models import ReturnLine  # noqa: E402


def orders_returned_in_window(db: Session, *, since: datetime, until: datetime) -> tuple[int, int]:
    """Orders placed in [since, until) (cancelled ones left out), and how many of them had at
    least one return. Read-only (the admin overview's return rate)."""
    returned = select(ReturnLine.order_id).where(ReturnLine.order_id == Order.order_id).exists()
    placed, with_returns = db.execute(
        select(func.count(), func.count().filter(returned)).where(
            Order.placed_at >= since, Order.placed_at < until, Order.status != "cancelled"
        )
    ).one()
    return int(placed), int(with_returns or 0)


__all__ += ["orders_returned_in_window"]
