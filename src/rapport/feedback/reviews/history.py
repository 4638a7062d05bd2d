"""Reviews imported from history (the demo, another platform), moderated there already."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.feedback.models import Review
from rapport.orders import service as orders
from rapport.platform.ids import new_id


@dataclass(frozen=True, slots=True)
class ImportedReview:
    """A review from history (the demo, another platform), already moderated there."""

    customer_id: str | None
    sku: str
    rating: int
    title: str
    text: str
    written_at: datetime
    order_id: str | None = None
    locale: str = "en"


def import_reviews(db: Session, *, reviews: Sequence[ImportedReview]) -> int:
    """Load published reviews moderated elsewhere: not screened again and not rewarded
    (their time has passed), but a badge only where the reviewer received the product. A
    reviewer's repeat of a product and purchase already reviewed is skipped (one review per
    reviewer, product and purchase). Returns how many were loaded."""
    loaded = 0
    seen: set[tuple[str, str, str]] = set()
    for imported in reviews:
        purchase_key = ""
        if imported.customer_id is not None:
            lines = orders.delivered_lines(
                db, customer_id=imported.customer_id, sku=imported.sku, order_id=imported.order_id
            )
            purchase_key = f"{lines[0][0]}#{lines[0][1]}" if lines else ""
            once = (imported.customer_id, imported.sku, purchase_key)
            if once in seen or db.scalar(
                select(Review.review_id).where(
                    Review.customer_id == imported.customer_id,
                    Review.sku == imported.sku,
                    Review.purchase_key == purchase_key,
                )
            ):
                continue
            seen.add(once)
        verified = purchase_key != ""
        loaded += 1
        db.add(
            Review(
                review_id=new_id("rev"),
                customer_id=imported.customer_id,
                sku=imported.sku,
                order_id=imported.order_id,
                purchase_key=purchase_key,
                rating=min(max(imported.rating, 1), 5),
                title=imported.title[:200],
                body=imported.text,
                photos=[],
                locale=imported.locale,
                verified=verified,
                status="published",
                reasons=[],
                created_at=imported.written_at,
                rewarded=True,
            )
        )
    db.commit()
    return loaded
