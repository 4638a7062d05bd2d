"""Review submission: screened before publication (see :mod:`screening`), one review per
reviewer, product and purchase, the verified badge for those who received the product."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.events.service import log_event
from rapport.feedback.events import ReviewSubmitted
from rapport.feedback.models import Review
from rapport.feedback.named_orders import require_customers_order
from rapport.feedback.reviews import screening
from rapport.feedback.reviews.moderation import log_published, reward_if_due
from rapport.feedback.schemas import ReviewIn
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.ids import new_id

DUPLICATE_LOOKBACK = timedelta(days=90)
DUPLICATE_CANDIDATES = 2000


def address_digest(address: str | None) -> str | None:
    if not address:
        return None
    return hashlib.sha256(f"address:{address.strip()}".encode()).hexdigest()


def _recent_count(db: Session, column: Any, value: str | None, since: datetime) -> int:
    if value is None:
        return 0
    return int(
        db.scalar(
            select(func.count())
            .select_from(Review)
            .where(column == value, Review.created_at >= since)
        )
        or 0
    )


def _candidates(db: Session, since: datetime) -> list[screening.Candidate]:
    rows = db.execute(
        select(Review.review_id, Review.customer_id, Review.sku, Review.title, Review.body)
        .where(Review.created_at >= since, Review.status != "rejected")
        .order_by(Review.created_at.desc())
        .limit(DUPLICATE_CANDIDATES)
    ).all()
    return [
        screening.Candidate(rid, cid, sku, f"{title} {body}".strip())
        for rid, cid, sku, title, body in rows
    ]


def submit_review(
    db: Session,
    *,
    review: ReviewIn,
    at: datetime | None = None,
    before_commit: BeforeCommit | None = None,
) -> Review:
    """Screen a review and publish it, or hold it for a moderator with the reasons. The
    verified badge needs the reviewer to have received the product; a published verified
    review logs ``review_verified``, which the loyalty program rewards.

    One review per reviewer, product and purchase: a buyer's review is of the first line
    delivered to them (in ``order_id``, when given: one of their orders of the product,
    received, else ``422`` naming it) they have not reviewed yet; someone who did not receive
    the product may review it once. Another is ``409`` naming ``sku`` (or
    ``order_id``); two submissions at once are settled by the database's unique index."""
    now = at or clock.now()
    if catalog.get_product(db, sku=review.sku) is None:
        raise InvalidInput(
            f"No product {review.sku!r} in the catalogue: send its sku as the shop's catalogue "
            "has it (PUT /v1/products/{sku} adds one)",
            field="sku",
        )
    customer = (
        customers.get_customer(db, customer_id=review.customer_id) if review.customer_id else None
    )
    if customer is not None:
        # Refuses an erased person: nothing new is written about them. Someone Rapport does
        # not know may still review.
        customers.require_customer(db, customer.customer_id)
    elif review.customer_id and customers.erased_kinds(db, {"external_id": review.customer_id}):
        # An erased person's customer number (their profile no longer holds it) stays gone:
        # refused as an order, a sign-up or tracking refuses it, not kept as a stranger's.
        raise InvalidInput(
            f"Customer {review.customer_id!r} was erased: their customer number cannot be "
            "used again",
            field="customer_id",
            code="suppressed",
        )
    is_customer = customer is not None and customer.status == "active"
    purchase_key = _purchase_to_review(db, review, is_customer=is_customer)
    is_buyer = purchase_key != ""
    window = now - timedelta(hours=screening.BURST_WINDOW_HOURS)
    digest = address_digest(review.ip_address)
    text = f"{review.title} {review.text}".strip()
    facts = screening.Facts(
        rating=review.rating,
        text=text,
        sku=review.sku,
        customer_id=review.customer_id,
        is_customer=is_customer,
        is_buyer=is_buyer,
        device_reviews=_recent_count(db, Review.device_id, review.device_id, window),
        address_reviews=_recent_count(db, Review.address_digest, digest, window),
    )
    reasons = screening.screen(facts, _candidates(db, now - DUPLICATE_LOOKBACK))
    row = Review(
        review_id=new_id("rev"),
        customer_id=review.customer_id,
        sku=review.sku,
        order_id=purchase_key.split("#", 1)[0] if is_buyer else review.order_id,
        purchase_key=purchase_key,
        rating=review.rating,
        title=review.title,
        body=review.text,
        photos=[str(url) for url in review.photos],
        locale=review.locale,
        verified=is_buyer,
        status="flagged" if reasons else "published",
        reasons=[{"code": r.code, "detail": r.detail} for r in reasons],
        device_id=review.device_id,
        address_digest=digest,
        created_at=now,
    )
    db.add(row)
    try:
        db.flush()
    except IntegrityError:
        # Another submission of the same review won the race for the unique index.
        db.rollback()
        raise _already_reviewed(review) from None
    log_event(
        db,
        ReviewSubmitted(
            review_id=row.review_id,
            sku=row.sku,
            rating=row.rating,
            status=row.status,
            reasons=[r.code for r in reasons],
        ),
        channel="web",
        customer_id=review.customer_id if is_customer else None,
        occurred_at=now,
    )
    if row.status == "published":
        log_published(db, row, customer_id=review.customer_id if is_customer else None)
    reward_if_due(db, row)
    if before_commit is not None:
        before_commit(db, row)
    db.commit()
    return row


def _already_reviewed(review: ReviewIn, existing: str | None = None) -> Conflict:
    field = "order_id" if review.order_id else "sku"
    what = f"{review.sku} from order {review.order_id}" if review.order_id else review.sku
    return Conflict(
        f"{review.customer_id} has already reviewed {what}"
        + (f" (review {existing})" if existing else "")
        + ": one review per product and purchase",
        field=field,
        review_id=existing,
    )


def _require_reviewers_order(db: Session, review: ReviewIn, *, is_customer: bool) -> None:
    """A named ``order_id`` is one of the reviewer's orders holding the product, received:
    else ``422`` naming it (a review of that purchase would be of no purchase at all)."""
    order_id, sku = review.order_id or "", review.sku
    if not is_customer:
        who = review.customer_id or "an anonymous reviewer"
        raise InvalidInput(
            f"Order {order_id!r} is not an order of {who}: a review names only an order of "
            "the customer writing it, or leave order_id out",
            field="order_id",
        )
    order = require_customers_order(db, order_id=order_id, customer_id=review.customer_id)
    if not any(line.sku == sku for line in orders.get_lines(db, order_id=order_id)):
        raise InvalidInput(
            f"Order {order_id!r} holds no {sku}: name the order of theirs the review is of, "
            "or leave order_id out",
            field="order_id",
        )
    if order.status == "cancelled":
        raise InvalidInput(
            f"Order {order_id!r} was cancelled: there is no purchase of {sku} in it to review",
            field="order_id",
        )
    if order.delivered_at is None:
        raise InvalidInput(
            f"Order {order_id!r} has not reached {review.customer_id} yet (not delivered or "
            f"collected): its {sku} is reviewed once received",
            field="order_id",
        )


def _purchase_to_review(db: Session, review: ReviewIn, *, is_customer: bool) -> str:
    """The purchase key a new review takes: the reviewer's first delivered line of the product
    (in ``order_id`` when given) not yet reviewed, "" when they never received it; or the
    ``409`` when every one of them is reviewed already."""
    if review.order_id is not None:
        _require_reviewers_order(db, review, is_customer=is_customer)
    if review.customer_id is None:
        return ""  # anonymous: not a buyer, and nothing to hold a second review against
    taken = {
        str(key): str(review_id)
        for key, review_id in db.execute(
            select(Review.purchase_key, Review.review_id).where(
                Review.customer_id == review.customer_id, Review.sku == review.sku
            )
        )
    }
    lines = (
        orders.delivered_lines(
            db, customer_id=review.customer_id, sku=review.sku, order_id=review.order_id
        )
        if is_customer
        else []
    )
    for order_id, line_no in lines:
        key = f"{order_id}#{line_no}"
        if key not in taken:
            return key
    if lines:
        last_key = f"{lines[-1][0]}#{lines[-1][1]}"
        raise _already_reviewed(review, taken.get(last_key))
    if "" in taken:
        raise _already_reviewed(review, taken[""])
    return ""
