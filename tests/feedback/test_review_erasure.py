"""An erased customer's reviews: those held for moderation leave the queue, and none of
theirs is published afterwards (nothing is written under an erased id); one already
published may still be taken down."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.feedback import service
from rapport.feedback.models import Review
from rapport.feedback.schemas import ReviewIn
from rapport.flows import privacy
from tests.conftest import auth, command
from tests.feedback.factories import in_catalogue, make_customer


def _published_events(db: Session, review_id: str) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.type == "review_published")
            .where(Event.properties["review_id"].as_string() == review_id)
        )
        or 0
    )


def _held_review(db: Session) -> tuple[str, str]:
    """A customer's five-star review held as not_a_buyer: (customer id, review id)."""
    in_catalogue(db, "APP-00541")
    customer_id, _ = make_customer(db)
    review = service.submit_review(
        db, review=ReviewIn(customer_id=customer_id, sku="APP-00541", rating=5, text="Super")
    )
    assert review.status == "flagged"
    return customer_id, review.review_id


def test_erasure_takes_held_reviews_out_of_the_queue_and_none_is_published(
    client, api_key, db: Session
) -> None:
    # given a held review, and its author erased
    customer_id, review_id = _held_review(db)
    privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo")
    key = api_key("write", "read")
    # then the review has left the moderation queue, rejected by the erasure
    queue = client.get("/v1/feedback/reviews/queue", headers=auth(key)).json()
    assert review_id not in [r["review_id"] for r in queue]
    db.expire_all()
    review = db.get(Review, review_id)
    assert review is not None
    assert (review.status, review.moderated_by) == ("rejected", "erasure")
    # and a moderator cannot publish it: 404 naming the erased customer, nothing written
    answer = client.post(
        f"/v1/feedback/reviews/{review_id}/moderation",
        json={"decision": "publish"},
        headers=command(key),
    )
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "was erased" in answer.json()["detail"]
    db.expire_all()
    assert db.get(Review, review_id).status == "rejected"  # type: ignore[union-attr]
    assert _published_events(db, review_id) == 0
    rating = client.get("/v1/feedback/products/APP-00541/rating", headers=auth(key)).json()
    assert rating["reviews"] == 0


def test_a_held_review_an_erasure_left_in_the_queue_is_not_published(
    client, api_key, db: Session
) -> None:
    # given an erased customer's review still held (as an earlier version left it)
    customer_id, review_id = _held_review(db)
    privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo")
    db.execute(update(Review).where(Review.review_id == review_id).values(status="flagged"))
    db.commit()
    key = api_key("write", "read")
    # when a moderator publishes it, it is refused; rejecting it takes it out of the queue
    publish = client.post(
        f"/v1/feedback/reviews/{review_id}/moderation",
        json={"decision": "publish"},
        headers=command(key),
    )
    assert publish.status_code == 404
    assert _published_events(db, review_id) == 0
    reject = client.post(
        f"/v1/feedback/reviews/{review_id}/moderation",
        json={"decision": "reject"},
        headers=command(key),
    )
    assert reject.status_code == 200
    assert reject.json()["status"] == "rejected"


def test_an_erased_reviewers_published_review_is_listed_as_removed_with_its_rating_kept(
    client, admin, api_key, db: Session
) -> None:
    # given two published reviews of a product, 5 and 3 stars, and the first's author erased
    customer_id, review_id = _held_review(db)
    service.moderate_review(db, review_id=review_id, decision="publish", moderator="mod")
    other_id, _ = make_customer(db)
    other = service.submit_review(
        db, review=ReviewIn(customer_id=other_id, sku="APP-00541", rating=3, text="Fine, ok")
    )
    service.moderate_review(db, review_id=other.review_id, decision="publish", moderator="mod")
    key = api_key("read")
    before = client.get("/v1/feedback/products/APP-00541/rating", headers=auth(key)).json()
    privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo")
    # when the product's reviews are listed
    listed = client.get("/v1/feedback/products/APP-00541/reviews", headers=auth(key)).json()
    # then the erased reviewer's review says it was removed at their request, with no text,
    # and the other review is as written
    by_id = {r["review_id"]: r for r in listed}
    assert set(by_id) == {review_id, other.review_id}
    removed = by_id[review_id]
    assert removed["removed"] == "removed at the reviewer's request"
    assert (removed["title"], removed["body"], removed["photos"]) == ("", "", [])
    assert by_id[other.review_id]["removed"] is None
    assert by_id[other.review_id]["body"] == "Fine, ok"
    # and the product's rating still counts it (docs/feedback.md: ratings stay)
    after = client.get("/v1/feedback/products/APP-00541/rating", headers=auth(key)).json()
    assert after == before
    assert (after["reviews"], after["average"]) == (2, 4.0)
    # and the admin's panel of the erased customer says the same, with no text
    panel = admin.get(
        f"/admin/feedback/customers/{customer_id}/panel", headers={"hx-request": "true"}
    )
    assert panel.status_code == 200
    assert "Removed at the reviewer&#39;s request" in panel.text
    assert "Super" not in panel.text
