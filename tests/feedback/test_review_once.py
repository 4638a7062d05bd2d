"""One review per reviewer, product and purchase, and review points at most once: a buyer
cannot farm points by reviewing the same purchase again, not even with two submissions at
the same moment."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from rapport.events.models import Event
from rapport.feedback import service
from rapport.feedback.models import Review
from rapport.feedback.schemas import ReviewIn
from rapport.loyalty import service as loyalty
from rapport.loyalty.earning import processor as earning_processor
from rapport.loyalty.models import Award
from rapport.platform.db import open_session
from rapport.platform.errors import Conflict, InvalidInput
from tests.conftest import auth, command
from tests.feedback.factories import T0, delivered_order, frozen_clock, in_catalogue, make_customer

GOOD = "Exactly what I was looking for, really happy with the quality and the fit"
OTHER = "Solid build, arrived quickly and works as described, good value overall"


def _review(db, customer_id: str | None, text: str = GOOD, **extra: object) -> Review:
    return service.submit_review(
        db,
        review=ReviewIn(customer_id=customer_id, sku="SKU-1", rating=5, text=text, **extra),  # type: ignore[arg-type]
    )


def _earn_from_log(db, customer_id: str) -> int:
    """Run the loyalty processor over the customer's events; their balance afterwards."""
    events = list(
        db.scalars(select(Event).where(Event.customer_id == customer_id).order_by(Event.position))
    )
    earning_processor.process_loyalty_events(db, events)
    db.commit()
    return loyalty.balance(db, customer_id=customer_id)


def _review_points(db, customer_id: str) -> int:
    return int(
        db.scalar(
            select(func.coalesce(func.sum(Award.points), 0)).where(
                Award.customer_id == customer_id, Award.rule_id == "review"
            )
        )
        or 0
    )


def test_a_buyer_reviewing_the_same_purchase_twice_is_refused_and_paid_once(db) -> None:
    # given a buyer who received SKU-1 once and reviewed it
    frozen_clock()
    customer, external = make_customer(db)
    delivered_order(db, external_id=external, sku="SKU-1")
    first = _review(db, customer)
    assert first.verified

    # when they review the same product again, with other words
    with pytest.raises(Conflict) as refused:
        _review(db, customer, text=OTHER)

    # then the second is refused naming the product and the review they wrote
    assert refused.value.field == "sku"
    assert first.review_id in refused.value.detail
    assert db.scalar(select(func.count()).select_from(Review)) == 1
    # and the review points are paid once
    _earn_from_log(db, customer)
    assert _review_points(db, customer) == 50


def test_each_purchase_may_be_reviewed_once(db) -> None:
    # given a buyer who received SKU-1 in two orders
    frozen_clock()
    customer, external = make_customer(db)
    older = delivered_order(db, external_id=external, sku="SKU-1", placed_at=T0 - timedelta(40))
    newer = delivered_order(db, external_id=external, sku="SKU-1", placed_at=T0 - timedelta(10))

    # when they review it three times, the last naming the newer order
    first = _review(db, customer)
    second = _review(db, customer, text=OTHER, order_id=newer)
    with pytest.raises(Conflict) as third:
        _review(db, customer, text="Third time lucky, still a fine product", order_id=newer)

    # then each purchase carries one verified review, and the third is refused naming the order
    assert (first.order_id, first.verified) == (older, True)
    assert (second.order_id, second.verified) == (newer, True)
    assert third.value.field == "order_id"
    _earn_from_log(db, customer)
    assert _review_points(db, customer) == 100


def test_someone_who_did_not_buy_may_review_once(db) -> None:
    frozen_clock()
    in_catalogue(db, "SKU-1")
    customer, _ = make_customer(db)
    held = _review(db, customer)
    assert held.verified is False
    with pytest.raises(Conflict):
        _review(db, customer, text=OTHER)


def test_the_api_answers_409_naming_the_field(client, api_key, db) -> None:
    # given a buyer who has reviewed SKU-1
    customer, external = make_customer(db)
    delivered_order(db, external_id=external, sku="SKU-1")
    writer = auth(api_key("write"))
    body = {"customer_id": customer, "sku": "SKU-1", "rating": 5, "text": GOOD}
    first = client.post(
        "/v1/feedback/reviews", json=body, headers={**writer, "Idempotency-Key": "r-1"}
    )
    assert first.status_code == 201

    # when the same review is sent again under a new key, and the first again under its key
    again = client.post(
        "/v1/feedback/reviews",
        json={**body, "text": OTHER},
        headers={**writer, "Idempotency-Key": "r-2"},
    )
    replay = client.post(
        "/v1/feedback/reviews", json=body, headers={**writer, "Idempotency-Key": "r-1"}
    )

    # then the repeat is a problem naming sku, and the replay is the stored answer
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["field"] == "sku"
    assert again.json()["review_id"] == first.json()["review_id"]
    assert replay.status_code == 201
    assert replay.json()["review_id"] == first.json()["review_id"]


def _order_of(db, *, sku: str, delivered: bool = True) -> tuple[str, str]:
    """A customer and their order of ``sku``: (customer id, order id)."""
    customer, external = make_customer(db)
    return customer, delivered_order(db, external_id=external, sku=sku, delivered=delivered)


@pytest.mark.parametrize(
    "case", ["no such order", "another customer's", "another product's", "not delivered yet"]
)
def test_a_review_of_an_order_that_is_no_purchase_of_it_is_refused(
    client, api_key, db, case: str
) -> None:
    # given a buyer who received SKU-1 and reviewed it, and orders of every other kind
    frozen_clock()
    in_catalogue(db, "SKU-1", "SKU-2")
    customer, external = make_customer(db)
    delivered_order(db, external_id=external, sku="SKU-1")
    first = _review(db, customer)
    order_id = {
        "no such order": lambda: "NO-SUCH",
        "another customer's": lambda: _order_of(db, sku="SKU-1")[1],
        "another product's": lambda: delivered_order(db, external_id=external, sku="SKU-2"),
        "not delivered yet": lambda: delivered_order(
            db, external_id=external, sku="SKU-1", delivered=False
        ),
    }[case]()
    # when they review SKU-1 again naming that order
    body = {"customer_id": customer, "sku": "SKU-1", "order_id": order_id, "rating": 5}
    answer = client.post(
        "/v1/feedback/reviews", json={**body, "text": OTHER}, headers=command(api_key("write"))
    )
    # then it is 422 naming order_id, and nothing is stored
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "order_id"
    assert order_id in answer.json()["detail"]
    db.expire_all()
    assert [r.review_id for r in db.scalars(select(Review))] == [first.review_id]


def test_an_anonymous_review_naming_an_order_is_refused(db) -> None:
    frozen_clock()
    _, order_id = _order_of(db, sku="SKU-1")
    with pytest.raises(InvalidInput) as refused:
        _review(db, None, order_id=order_id)
    assert refused.value.field == "order_id"


def test_a_review_verified_twice_earns_once(db) -> None:
    # given a published verified review whose event the processor sees twice (a replay)
    frozen_clock()
    customer, external = make_customer(db)
    delivered_order(db, external_id=external, sku="SKU-1")
    _review(db, customer)
    (verified,) = db.scalars(select(Event).where(Event.type == "review_verified"))
    earning_processor.process_loyalty_events(db, [verified])
    earning_processor.process_loyalty_events(db, [verified])
    db.commit()
    # and a moderator publishes it again: 409, it was published at submission
    review = db.scalars(select(Review)).one()
    with pytest.raises(Conflict, match="already published at submission"):
        service.moderate_review(db, review_id=review.review_id, decision="publish", moderator="ops")

    # then the review earned once, and was announced once
    assert _review_points(db, customer) == 50
    assert len(list(db.scalars(select(Event).where(Event.type == "review_verified")))) == 1


def test_two_submissions_at_the_same_moment_make_one_review(committed_url) -> None:
    # given a buyer of SKU-1
    with open_session(committed_url) as db:
        customer, external = make_customer(db)
        delivered_order(db, external_id=external, sku="SKU-1")
    start = threading.Barrier(2)
    outcomes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def submit(text: str) -> None:
        with open_session(committed_url) as session:
            start.wait()
            try:
                _review(session, customer, text=text)
            except Conflict:
                outcome = "refused"
            except BaseException as error:
                with lock:
                    errors.append(error)
                return
            else:
                outcome = "written"
            with lock:
                outcomes.append(outcome)

    # when two reviews of the same purchase are submitted at once
    threads = [threading.Thread(target=submit, args=(text,)) for text in (GOOD, OTHER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then one is written, the other refused, and loyalty hears of one review
    assert errors == []
    assert sorted(outcomes) == ["refused", "written"]
    with open_session(committed_url) as db:
        assert db.scalar(select(func.count()).select_from(Review)) == 1
        assert _earn_from_log(db, customer) >= 50
        assert _review_points(db, customer) == 50


def test_the_migration_keeps_repeats_already_written_as_history(backend, tmp_path) -> None:
    from rapport.platform.db import create_db_engine
    from rapport.platform.migrations_runner import upgrade
    from tests.conftest import make_database_url

    # given a database from before the rule, where a buyer reviewed one purchase twice
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    try:
        upgrade(url, "c14000000003")
        at = "2026-06-01 10:00:00"
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO orders (order_id, customer_id, channel, fulfilment, status, "
                    "currency, subtotal_minor, discount_minor, shipping_minor, total_minor, "
                    "placed_at, delivered_at, source, created_at, updated_at) VALUES ('O-1', "
                    f"'cus_a', 'web', 'ship', 'delivered', 'EUR', 900, 0, 0, 900, '{at}', '{at}', "
                    f"'api', '{at}', '{at}')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price_minor, "
                    "discount_minor, total_minor, returned_quantity) "
                    "VALUES ('O-1', 2, 'SKU-1', 1, 900, 0, 900, 0)"
                )
            )
            for review_id, minute, verified in (("rev_1", 1, True), ("rev_2", 2, True)):
                connection.execute(
                    text(
                        "INSERT INTO feedback_reviews (review_id, customer_id, sku, rating, "
                        "title, body, photos, locale, verified, status, reasons, created_at, "
                        "rewarded) VALUES (:id, 'cus_a', 'SKU-1', 5, '', 'x', '[]', 'en', :v, "
                        "'published', '[]', :at, :v)"
                    ),
                    {"id": review_id, "v": verified, "at": f"2026-06-02 10:0{minute}:00"},
                )

        # when the migration runs
        upgrade(url, "c14000000004")

        # then the first keeps the purchase and the repeat is kept under a key of its own
        with engine.connect() as connection:
            keys = dict(
                connection.execute(
                    text("SELECT review_id, purchase_key FROM feedback_reviews ORDER BY review_id")
                ).all()
            )
        assert keys == {"rev_1": "O-1#2", "rev_2": "legacy:rev_2"}
    finally:
        engine.dispose()
        remove()


def test_a_verified_review_taken_down_keeps_its_points(db) -> None:
    # given a buyer's published verified review, rewarded
    frozen_clock()
    customer, external = make_customer(db)
    delivered_order(db, external_id=external, sku="SKU-1")
    review = _review(db, customer)
    balance = _earn_from_log(db, customer)
    assert _review_points(db, customer) == 50
    # when a moderator takes it down
    taken_down = service.moderate_review(
        db, review_id=review.review_id, decision="reject", moderator="mod"
    )
    # then it is out of sight and the points stay (docs/feedback.md says why)
    assert taken_down.status == "rejected"
    assert _earn_from_log(db, customer) == balance
    assert _review_points(db, customer) == 50
