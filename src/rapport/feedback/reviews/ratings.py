"""Published reviews of a product and rating summaries (social proof for the storefront and
recommendations)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.feedback.models import Review
from rapport.platform.errors import NotFound


def product_reviews(db: Session, *, sku: str, limit: int = 50) -> list[Review]:
    """Published reviews of a product, verified first, newest first."""
    return list(
        db.scalars(
            select(Review)
            .where(Review.sku == sku, Review.status == "published")
            .order_by(Review.verified.desc(), Review.created_at.desc())
            .limit(limit)
        )
    )


REMOVED_AT_REQUEST = "removed at the reviewer's request"
"""What a published review whose author was erased says in lists, in place of its text (its
title and body were emptied by the erasure; its rating still counts in the summaries)."""


def removed_at_request(db: Session, reviews: Iterable[Review]) -> set[str]:
    """The ids of these reviews whose author was erased (or merged into an erased profile):
    lists show them as :data:`REMOVED_AT_REQUEST`, with no text."""
    by_author: dict[str, list[str]] = defaultdict(list)
    for review in reviews:
        if review.customer_id:
            by_author[review.customer_id].append(review.review_id)
    erased = customers.erased_among(db, set(by_author))
    return {review_id for author in erased for review_id in by_author[author]}


@dataclass(frozen=True, slots=True)
class RatingSummary:
    sku: str
    reviews: int
    verified: int
    average: float | None
    weighted: float | None  # pulled towards the shop-wide mean by PRIOR_WEIGHT reviews
    distribution: dict[str, int]


PRIOR_WEIGHT = 5


def rating_summaries(db: Session, *, skus: Iterable[str]) -> dict[str, RatingSummary]:
    """Published-review summaries for these products (social proof for the storefront and
    recommendations). The weighted average adds ``PRIOR_WEIGHT`` reviews at the shop's mean,
    so two five-star reviews do not outrank two hundred at 4.8."""
    wanted = sorted(set(skus))
    prior = db.scalar(select(func.avg(Review.rating)).where(Review.status == "published"))
    prior_mean = float(prior) if prior is not None else None
    counts: dict[str, dict[int, int]] = defaultdict(dict)
    verified: dict[str, int] = defaultdict(int)
    if wanted:
        for sku, rating, is_verified, count in db.execute(
            select(Review.sku, Review.rating, Review.verified, func.count())
            .where(Review.sku.in_(wanted), Review.status == "published")
            .group_by(Review.sku, Review.rating, Review.verified)
        ):
            counts[sku][rating] = counts[sku].get(rating, 0) + int(count)
            if is_verified:
                verified[sku] += int(count)
    summaries = {}
    for sku in wanted:
        by_rating = counts.get(sku, {})
        n = sum(by_rating.values())
        total = sum(r * c for r, c in by_rating.items())
        average = total / n if n else None
        weighted = (
            (total + PRIOR_WEIGHT * prior_mean) / (n + PRIOR_WEIGHT)
            if prior_mean is not None and n
            else None
        )
        summaries[sku] = RatingSummary(
            sku=sku,
            reviews=n,
            verified=verified.get(sku, 0),
            average=round(average, 2) if average is not None else None,
            weighted=round(weighted, 2) if weighted is not None else None,
            distribution={str(r): by_rating.get(r, 0) for r in range(1, 6)},
        )
    return summaries


def rating_summary(db: Session, *, sku: str) -> RatingSummary:
    """One product's summary; :class:`NotFound` naming ``sku`` for a product the catalogue
    lacks and nobody reviewed (zeros would read as a product nobody has reviewed yet)."""
    summary = rating_summaries(db, skus=[sku])[sku]
    if summary.reviews == 0 and catalog.get_product(db, sku=sku) is None:
        raise NotFound(f"No product {sku!r} in the catalogue", field="sku")
    return summary
