"""Review screening: each rule triggered and not triggered; verified badges; moderation;
loyalty rewards only for published verified reviews; rating summaries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from rapport.events.models import Event
from rapport.feedback import service
from rapport.feedback.reviews import screening
from rapport.feedback.schemas import ReviewIn
from rapport.platform.errors import Conflict, NotFound
from tests.feedback.factories import delivered_order, frozen_clock, in_catalogue, make_customer

GOOD = "Exactly what I was looking for, really happy with the quality and the fit"


def _codes(review) -> list[str]:
    return [reason["code"] for reason in review.reasons]


def _verified_events(db) -> list[Event]:
    return list(db.scalars(select(Event).where(Event.type == "review_verified")))


def _buyer(db, sku: str = "SKU-1") -> str:
    customer, external = make_customer(db)
    delivered_order(db, external_id=external, sku=sku)
    return customer


def test_a_buyers_review_is_published_verified_and_rewarded(db) -> None:
    # given a customer who received SKU-1
    frozen_clock()
    customer = _buyer(db)
    # when they review it
    review = service.submit_review(
        db,
        review=ReviewIn(
            customer_id=customer, sku="SKU-1", rating=5, title="Love it", text=GOOD,
            photos=["https://img.example.com/1.jpg"],
        ),
    )  # fmt: skip
    # then it is published with the badge, and loyalty hears review_verified once
    assert (review.status, review.verified, review.reasons) == ("published", True, [])
    assert review.photos == ["https://img.example.com/1.jpg"]
    (event,) = _verified_events(db)
    assert (event.customer_id, event.properties["review_id"]) == (customer, review.review_id)


@pytest.mark.parametrize(
    ("_case", "who", "expected"),
    [
        ("unknown reviewer", "nobody", ["not_a_customer"]),
        ("customer who never received it", "customer", ["not_a_buyer"]),
        ("buyer", "buyer", []),
    ],
)
def test_not_a_customer_and_not_a_buyer(db, _case: str, who: str, expected: list[str]) -> None:
    frozen_clock()
    in_catalogue(db, "SKU-1")
    customer_id = {
        "nobody": lambda: "cus_unknown",
        "customer": lambda: make_customer(db)[0],
        "buyer": lambda: _buyer(db),
    }[who]()
    review = service.submit_review(
        db, review=ReviewIn(customer_id=customer_id, sku="SKU-1", rating=4, text=GOOD)
    )
    assert _codes(review) == expected
    assert review.status == ("flagged" if expected else "published")
    assert review.verified is (who == "buyer")


def test_a_burst_from_one_device_is_held_from_the_third_review(db) -> None:
    clock = frozen_clock()
    buyers = [_buyer(db, sku=f"SKU-{n}") for n in range(4)]
    texts = [
        "Solid build and arrived quickly",
        "Colour is lovely, fits perfectly well",
        "Works as described and good value",
        "Nice gift, my father uses it daily",
    ]
    statuses = []
    for n, (customer, text) in enumerate(zip(buyers, texts, strict=True)):
        review = service.submit_review(
            db,
            review=ReviewIn(
                customer_id=customer, sku=f"SKU-{n}", rating=5, text=text, device_id="dev-1",
                ip_address="203.0.113.7" if n < 2 else f"198.51.100.{n}",
            ),
        )  # fmt: skip
        statuses.append((review.status, _codes(review)))
        clock.advance(timedelta(hours=1))
    assert statuses == [
        ("published", []),
        ("published", []),
        ("flagged", ["burst_device"]),
        ("flagged", ["burst_device"]),
    ]
    # and a day later the same device is trusted again (a fresh buyer: one review a purchase)
    clock.advance(timedelta(hours=24))
    again = service.submit_review(
        db,
        review=ReviewIn(
            customer_id=_buyer(db, sku="SKU-9"), sku="SKU-9", rating=4, text="Still good",
            device_id="dev-1",
        ),
    )  # fmt: skip
    assert again.status == "published"


def test_a_burst_from_one_address_is_held(db) -> None:
    frozen_clock()
    for n in range(3):
        customer = _buyer(db, sku=f"SKU-{n}")
        review = service.submit_review(
            db,
            review=ReviewIn(
                customer_id=customer, sku=f"SKU-{n}", rating=5,
                text=f"Review number {n} with its own words", ip_address="203.0.113.9",
            ),
        )  # fmt: skip
    assert _codes(review) == ["burst_address"]
    assert review.address_digest == service.address_digest("203.0.113.9")


def test_near_duplicate_text_across_products_is_held(db) -> None:
    frozen_clock()
    first = _buyer(db, sku="SKU-1")
    second = _buyer(db, sku="SKU-2")
    text = "Amazing product, fast delivery, I recommend this seller to everyone!"
    original = service.submit_review(
        db, review=ReviewIn(customer_id=first, sku="SKU-1", rating=5, text=text)
    )
    copy = service.submit_review(
        db,
        review=ReviewIn(
            customer_id=second, sku="SKU-2", rating=5, text=text.replace("!", ".").upper()
        ),
    )
    different = service.submit_review(
        db,
        review=ReviewIn(
            customer_id=_buyer(db, sku="SKU-3"), sku="SKU-3", rating=4,
            text="Comfortable and warm, though the sleeves are a little long for me",
        ),
    )  # fmt: skip
    assert _codes(original) == []
    assert _codes(copy) == ["near_duplicate"]
    assert copy.reasons[0]["detail"] == (
        f"Nearly the same text as review {original.review_id} of SKU-1"
    )
    assert _codes(different) == []


@pytest.mark.parametrize(
    ("_case", "rating", "text", "mismatch"),
    [
        ("five stars, angry words", 5, "Terrible quality, arrived broken, a waste of money", True),
        ("one star, glowing words", 1, "Excellent, perfect, I love it and recommend it", True),
        ("one star, angry words", 1, "Terrible quality, arrived broken", False),
        ("five stars, negated complaint", 5, "Not bad at all, great value", False),
        ("portuguese, four stars, angry", 4, "Péssimo, produto quebrado e com defeito", True),
    ],
)
def test_rating_and_text_disagreeing(_case: str, rating: int, text: str, mismatch: bool) -> None:
    assert screening.rating_text_mismatch(rating, text) is mismatch


def test_moderation_publishes_and_only_then_rewards(db) -> None:
    frozen_clock()
    customer = _buyer(db)
    held = service.submit_review(
        db,
        review=ReviewIn(
            customer_id=customer, sku="SKU-1", rating=5, text="Terrible, broken, awful"
        ),
    )
    assert held.status == "flagged"
    assert service.moderation_queue(db) == [held]
    assert _verified_events(db) == []
    # when a moderator publishes it
    service.moderate_review(db, review_id=held.review_id, decision="publish", moderator="ops")
    # then it leaves the queue and loyalty hears of it once; publishing it again is 409
    # saying who published it, and changes nothing
    with pytest.raises(Conflict, match="already published by ops"):
        service.moderate_review(db, review_id=held.review_id, decision="publish", moderator="x")
    assert service.moderation_queue(db) == []
    assert len(_verified_events(db)) == 1
    # and a rejected unverified review never earns
    stranger = service.submit_review(
        db, review=ReviewIn(customer_id="cus_nobody", sku="SKU-1", rating=5, text=GOOD)
    )
    service.moderate_review(db, review_id=stranger.review_id, decision="reject", moderator="ops")
    assert len(_verified_events(db)) == 1


def test_rating_summary_counts_published_reviews_only(db) -> None:
    frozen_clock()
    texts = ["Great fit", "Lovely colour", "Does the job well", "Sturdy and simple"]
    for rating, text in zip([5, 4, 4, 3], texts, strict=True):
        service.submit_review(
            db, review=ReviewIn(customer_id=_buyer(db), sku="SKU-1", rating=rating, text=text)
        )
    service.submit_review(  # not a customer: held, not counted
        db, review=ReviewIn(customer_id="cus_x", sku="SKU-1", rating=1, text="Awful")
    )
    summary = service.rating_summary(db, sku="SKU-1")
    assert (summary.reviews, summary.verified, summary.average) == (4, 4, 4.0)
    assert summary.distribution == {"1": 0, "2": 0, "3": 1, "4": 2, "5": 1}
    # shop mean 4.0 as the prior: (16 + 5 * 4) / 9
    assert summary.weighted == 4.0
    with pytest.raises(NotFound):
        service.rating_summary(db, sku="SKU-NONE")
