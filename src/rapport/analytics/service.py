"""Figures for the admin overview, gathered through each domain's service functions."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.customers.service import CONSENT_PURPOSES
from rapport.events import service as events
from rapport.platform import jobs
from rapport.platform import service as platform


@dataclass(frozen=True)
class Overview:
    counts: dict[str, int]
    consent_shares: dict[str, float]
    job_counts: dict[str, int] = field(default_factory=dict)


def collect_overview(db: Session) -> Overview:
    customer_count = customers.count_customers(db)
    granted = customers.consent_counts(db)
    shares = {
        purpose: (granted.get(purpose, 0) / customer_count if customer_count else 0.0)
        for purpose in CONSENT_PURPOSES
    }
    return Overview(
        counts={
            "Customers": customer_count,
            "Products": catalog.count_products(db),
            "Stores": catalog.count_stores(db),
            "Events": events.count_events(db),
            "Active API keys": len(platform.list_api_keys(db)),
        },
        consent_shares=shares,
        job_counts=jobs.job_counts(db),
    )
