"""Review moderation: the queue of reviews held by screening, a moderator's decision, and the
``review_verified`` announcement (once per review) that the loyalty program rewards, and
``review_published`` each time a review becomes visible."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import log_event
from rapport.feedback.events import ReviewPublished, ReviewVerified
from rapport.feedback.models import Review
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from rapport.platform.idempotency import BeforeCommit


def reward_if_due(db: Session, review: Review) -> None:
    """Published and verified, and not yet announced: log ``review_verified`` (once). The
    flag is claimed with a guarded UPDATE, so two moderators publishing at once announce it
    once; the loyalty award is unique per review besides."""
    if review.status != "published" or not review.verified or review.rewarded:
        return
    claimed = db.execute(
        update(Review)
        .where(Review.review_id == review.review_id, Review.rewarded.is_(False))
        .values(rewarded=True)
        .execution_options(synchronize_session=False)
    )
    review.rewarded = True
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return
    log_event(
        db,
        ReviewVerified(review_id=review.review_id, sku=review.sku, rating=review.rating),
        channel="web",
        customer_id=review.customer_id,
        occurred_at=review.created_at,
    )


def log_published(
    db: Session, review: Review, *, customer_id: str | None, moderated: bool = False
) -> None:
    """Log ``review_published``: the review just became visible to shoppers."""
    log_event(
        db,
        ReviewPublished(
            review_id=review.review_id,
            sku=review.sku,
            rating=review.rating,
            verified=review.verified,
            order_id=review.order_id,
            locale=review.locale,
            moderated=moderated,
        ),
        channel="web",
        customer_id=customer_id,
        occurred_at=review.moderated_at if moderated else review.created_at,
    )


def moderate_review(
    db: Session,
    *,
    review_id: str,
    decision: str,
    moderator: str,
    before_commit: BeforeCommit | None = None,
) -> Review:
    """Publish or reject a review held by screening (or take a published one down). An
    erased customer's review is never published (404 "was erased"); it may be taken down.
    ``before_commit`` runs last in the transaction, with the review."""
    review = db.get(Review, review_id)
    if review is None:
        raise NotFound(f"No review {review_id!r}", field="review_id")
    if decision not in ("publish", "reject"):
        raise InvalidInput("Decide publish or reject", field="decision")
    if decision == "publish" and review.customer_id is not None:
        author = customers.get_customer(db, customer_id=review.customer_id)
        if author is not None and author.status == "erased":
            # Nothing is written under an erased person's id (a takedown writes nothing).
            raise customers.was_erased(review.customer_id, field="review_id")
    seen = review.status
    status = "published" if decision == "publish" else "rejected"
    if seen == status:
        raise _already(review)
    # Compare-and-set on the status this moderator saw: of moderators deciding at once, the
    # second waits for the first's commit, finds the status changed and gets 409 saying who
    # decided (``moderated_by`` is never overwritten by a decision taken on a stale view);
    # only the decision that made the review visible logs ``review_published`` (one webhook).
    now = clock.now()
    claimed = db.execute(
        update(Review)
        .where(Review.review_id == review_id, Review.status == seen)
        .values(status=status, moderated_at=now, moderated_by=moderator)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        db.rollback()
        current = db.get(Review, review_id)
        raise (
            _already(current)
            if current is not None
            else NotFound(f"No review {review_id!r}", field="review_id")
        )
    review.status, review.moderated_at, review.moderated_by = status, now, moderator
    made_visible = status == "published"
    if made_visible:
        log_published(db, review, customer_id=review.customer_id, moderated=True)
    reward_if_due(db, review)
    if before_commit is not None:
        db.flush()
        before_commit(db, review)
    db.commit()
    return review


def _already(review: Review) -> Conflict:
    """409 naming ``review_id``: the review is already what was decided, or another moderator
    decided while this one looked, and who it was."""
    if review.moderated_by:
        who = f" by {review.moderated_by}"
        when = f" at {review.moderated_at:%Y-%m-%d %H:%M} UTC" if review.moderated_at else ""
    else:
        who, when = "", " at submission" if review.status == "published" else ""
    return Conflict(
        f"Review {review.review_id} is already {review.status}{who}{when}; nothing changed",
        field="review_id",
    )


def get_review(db: Session, *, review_id: str) -> Review | None:
    return db.get(Review, review_id)


def moderation_queue(db: Session, *, limit: int = 100) -> list[Review]:
    """Reviews held by screening, oldest first."""
    return list(
        db.scalars(
            select(Review)
            .where(Review.status == "flagged")
            .order_by(Review.created_at, Review.review_id)
            .limit(limit)
        )
    )


def count_reviews(db: Session) -> dict[str, int]:
    """How many reviews are published, flagged and rejected."""
    rows = db.execute(select(Review.status, func.count()).group_by(Review.status)).all()
    return {str(status): int(count) for status, count in rows}
