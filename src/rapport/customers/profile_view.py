"""The customer 360: the profile with its identities, consents, preferences, traits (and
their RFM scores against the population's boundaries), a page of its events and its activity
per month and channel."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from rapport.customers.consent import consent_history, get_consents
from rapport.customers.identities import get_identities
from rapport.customers.merges import merge_history
from rapport.customers.models import (
    CustomerTraits,
    RfmBoundaries,
)
from rapport.customers.preferences import get_preferences
from rapport.customers.profiles import require_customer
from rapport.customers.traits import (
    monetary_metric,
    quintile_boundaries,
    rfm_scores,
    trait_summary,
)
from rapport.events import service as events
from rapport.platform import clock
from rapport.platform.db import upsert_rows


def get_traits(db: Session, *, customer_id: str) -> CustomerTraits | None:
    return db.get(CustomerTraits, customer_id)


def rfm_boundaries(db: Session) -> dict[str, list[float]]:
    return {row.metric: list(row.boundaries) for row in db.scalars(select(RfmBoundaries))}


def refresh_rfm_boundaries(db: Session) -> dict[str, list[float]]:
    """Recompute the population's quintile boundaries for recency, frequency and monetary
    value (one pass over traits, run daily; per-event updates stay incremental). Monetary has
    boundaries in each currency customers bought in (``monetary.EUR``: everyone's spend in
    euros): amounts in different currencies are never compared, and scores read the shop's."""
    now = clock.now()
    rows = db.execute(
        select(
            CustomerTraits.last_order_at,
            CustomerTraits.order_count,
            CustomerTraits.spend_by_currency,
        ).where(CustomerTraits.order_count > 0)
    ).all()
    if not rows:
        return {}
    currencies = sorted({currency for r in rows for currency in r.spend_by_currency or {}})
    metrics = {
        "recency_days": quintile_boundaries(
            [(now - r.last_order_at).total_seconds() / 86400 for r in rows if r.last_order_at]
        ),
        "frequency": quintile_boundaries([float(r.order_count) for r in rows]),
    } | {
        monetary_metric(currency): quintile_boundaries(
            [float((r.spend_by_currency or {}).get(currency, 0)) for r in rows]
        )
        for currency in currencies
    }
    # a currency nobody's spend is in any longer, and the single sum kept before
    db.execute(
        delete(RfmBoundaries).where(
            RfmBoundaries.metric.startswith("monetary"), RfmBoundaries.metric.not_in(metrics)
        )
    )
    for metric, boundaries in metrics.items():
        upsert_rows(
            db,
            RfmBoundaries.__table__,
            [{"metric": metric, "boundaries": boundaries, "computed_at": now}],
            key_columns=["metric"],
            update_columns=["boundaries", "computed_at"],
        )
    db.commit()
    return metrics


def get_timeline(
    db: Session, *, customer_id: str, limit: int = 50, before_position: int | None = None
) -> list[events.LoggedEvent]:
    """The customer's events, newest first."""
    return events.customer_timeline(
        db, customer_id=customer_id, limit=limit, before_position=before_position
    )


# Readable names for the timeline, for the events shops send most (Segment's e-commerce spec
# among them); other types read as their name ("page viewed").
TIMELINE_LABELS = {
    "product_viewed": "Viewed a product",
    "product_added": "Added to basket",
    "product_removed": "Removed from basket",
    "product_list_viewed": "Viewed a product list",
    "cart_viewed": "Viewed their basket",
    "checkout_started": "Started checkout",
    "order_completed": "Completed an order (tracking)",
    "order_refunded": "Refunded (tracking)",
    "tracked_order_cancelled": "Cancelled an order (tracking)",
    "order_cancelled": "Order cancelled",
    "order_placed": "Placed an order",
    "order_returned": "Returned items",
    "page_viewed": "Viewed a page",
    "screen_viewed": "Opened a screen",
}


def timeline_label(event: events.LoggedEvent) -> str:
    """What happened, in words: "Viewed a product: Barolo", "Added to basket: 2 x K-GLASS",
    "Viewed their basket: 3 products", "Completed an order (tracking): W-1001"."""
    label = TIMELINE_LABELS.get(event.type) or event.type.replace("_", " ").capitalize()
    properties = event.properties if isinstance(event.properties, dict) else {}
    products = properties.get("products")
    what = _text(properties.get("name")) or _text(properties.get("sku"))
    what = what or _text(properties.get("product_id"))
    if event.type in (
        "order_completed",
        "order_refunded",
        "tracked_order_cancelled",
        "order_placed",
        "order_returned",
        "order_cancelled",
    ):
        what = _text(properties.get("order_id"))
    elif isinstance(products, list):
        named = _text(properties.get("name")) or _text(properties.get("category"))
        count = f"{len(products)} product{'s' if len(products) != 1 else ''}"
        what = f"{named} ({count})" if named else count
    elif what and isinstance(properties.get("quantity"), int) and properties["quantity"] > 1:
        what = f"{properties['quantity']} x {what}"
    elif event.type in ("page_viewed", "screen_viewed"):
        what = _text(properties.get("name")) or _text(properties.get("title"))
    return f"{label}: {what}" if what else label


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)[:80]


def timeline_page(
    db: Session, *, customer_id: str, offset: int, limit: int
) -> list[events.LoggedEvent]:
    """A page of the customer's events, latest first by when they happened (history loaded
    from files reaches the log after newer events), in log order within one moment."""
    Event = events.LoggedEvent
    return list(
        db.scalars(
            select(Event)
            .where(Event.customer_id == customer_id)
            .order_by(Event.occurred_at.desc(), Event.position.desc())
            .offset(offset)
            .limit(limit)
        )
    )


def count_timeline(db: Session, *, customer_id: str) -> int:
    """How many events the customer has in the log."""
    Event = events.LoggedEvent
    found = db.scalar(
        select(func.count()).select_from(Event).where(Event.customer_id == customer_id)
    )
    return int(found or 0)


def activity_by_month(db: Session, *, customer_id: str) -> dict[str, Any]:
    """The customer's events per month (``YYYY-MM``, every month from the first event's to
    the last's, empty ones included) and channel: ``{"months": [...], "channels": {channel:
    [count per month]}}``."""
    Event = events.LoggedEvent
    counts: Counter[tuple[str, str]] = Counter()
    for occurred_at, channel in db.execute(
        select(Event.occurred_at, Event.channel).where(Event.customer_id == customer_id)
    ):
        counts[(_month(occurred_at), channel or "unknown")] += 1
    if not counts:
        return {"months": [], "channels": {}}
    months = _months_between(min(m for m, _ in counts), max(m for m, _ in counts))
    channels = sorted({channel for _, channel in counts})
    return {
        "months": months,
        "channels": {c: [counts[(m, c)] for m in months] for c in channels},
    }


def _month(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def _months_between(first: str, last: str) -> list[str]:
    year, month = (int(part) for part in first.split("-"))
    months = []
    while (current := f"{year:04d}-{month:02d}") <= last:
        months.append(current)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def customer_profile(
    db: Session,
    *,
    customer_id: str,
    currency: str,
    timeline_limit: int = 50,
    timeline_offset: int = 0,
) -> dict[str, Any]:
    """The customer 360: profile, identities, consents and their history, preferences,
    traits (with RFM scores, monetary in ``currency``, the shop's) and a page of events,
    latest first (``timeline_offset`` events skipped; ``timeline_labels``: each one's
    :func:`timeline_label`, by log position)."""
    customer = require_customer(db, customer_id)
    cid = customer.customer_id
    traits = db.get(CustomerTraits, cid)
    summary = trait_summary(traits, now=clock.now()) if traits else None
    if summary is not None and traits is not None:
        summary["rfm"] = rfm_scores(traits, rfm_boundaries(db), now=clock.now(), currency=currency)
    timeline = timeline_page(db, customer_id=cid, offset=timeline_offset, limit=timeline_limit)
    return {
        "customer": customer,
        "identities": get_identities(db, customer_id=cid),
        "consents": get_consents(db, customer_id=cid),
        "consent_history": consent_history(db, customer_id=cid),
        "preferences": get_preferences(db, customer_id=cid),
        "traits": summary,
        "merges": merge_history(db, customer_id=cid),
        "timeline": timeline,
        "timeline_labels": {event.position: timeline_label(event) for event in timeline},
    }
