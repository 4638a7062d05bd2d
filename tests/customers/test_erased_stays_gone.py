"""Erased means gone and stays gone: events still waiting for the profile processor, events
naming the erased profile's own id, and later attempts to identify, register, link or import
the person never bring a profile with their data back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from rapport.customers import service as customers
from rapport.customers.models import Customer, CustomerTraits, Identity
from rapport.customers.schemas import CustomerIn
from rapport.flows import privacy
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.orders.service import ImportedLine, ImportedOrder
from rapport.platform.db import Base
from rapport.platform.errors import InvalidInput
from tests.conftest import auth, command
from tests.customers.factories import T0, order_placed, process, track
from tests.feedback.factories import make_survey
from tests.orders.factories import CHIANTI, order_body, seed_catalog

EMAIL = "gone.forever@example.com"
PHONE = "+44 20 7946 0123"
PHONE_NORMAL = "+442079460123"
EXTERNAL_ID = "C-9001"
VISITOR = "anon-9001-browser"
FIRST, LAST = "Greta", "Vanishing"
PERSONAL = (EMAIL, PHONE, PHONE_NORMAL, EXTERNAL_ID, VISITOR, FIRST, LAST)


def _dump(db) -> str:  # type: ignore[no-untyped-def]
    """Every value of every row of every table, as text."""
    return "\n".join(
        " ".join(str(value) for value in row)
        for table in Base.metadata.sorted_tables
        for row in db.execute(select(table)).all()
    )


def _queue_a_visit(db) -> None:  # type: ignore[no-untyped-def]
    """What a browser sends while the person shops, not yet processed: an anonymous page
    view, the identify call with their traits, an order, a later page view."""
    track(db, "page_viewed", anonymous_id=VISITOR, at=T0, properties={"url": "/"})
    track(
        db,
        "identified",
        user_id=EXTERNAL_ID,
        anonymous_id=VISITOR,
        at=T0 + timedelta(minutes=1),
        properties={
            "traits": {"email": EMAIL, "phone": PHONE, "firstName": FIRST, "lastName": LAST}
        },
        context={"ip": "198.51.100.23"},
    )
    track(
        db,
        "order_placed",
        user_id=EXTERNAL_ID,
        at=T0 + timedelta(minutes=5),
        properties=order_placed(4200, ["Home/Linen"]),
    )
    track(db, "page_viewed", anonymous_id=VISITOR, at=T0 + timedelta(minutes=6))


def _assert_gone(db) -> None:  # type: ignore[no-untyped-def]
    for kind, value in (
        ("email", EMAIL),
        ("phone", PHONE),
        ("external_id", EXTERNAL_ID),
        ("anonymous_id", VISITOR),
    ):
        assert customers.find_customer(db, kind=kind, value=value) is None, kind
    active = db.scalars(select(Customer).where(Customer.status == "active")).all()
    assert active == [], "a profile came back"
    assert db.scalars(select(Identity)).all() == []
    dump = _dump(db)
    for value in PERSONAL:
        assert value not in dump, f"{value!r} is back in the database"


def test_events_waiting_for_the_processor_do_not_rebuild_an_erased_person(db) -> None:
    # given a person identified through the API while their browser's events still wait
    _queue_a_visit(db)
    customer = customers.identify_customer(
        db,
        identities={"email": EMAIL, "external_id": EXTERNAL_ID},
        profile={"first_name": FIRST, "last_name": LAST},
    )
    # when they are erased at once, and only then the processor runs
    privacy.erase_customer(db, customer_id=customer.customer_id, requested_by="dpo")
    process(db)
    # then no profile, identity or event holds anything of them
    _assert_gone(db)
    erased = db.get(Customer, customer.customer_id)
    assert erased is not None
    assert erased.status == "erased"
    # and their visit still counts, under the random id, without refilling the profile
    traits = db.get(CustomerTraits, customer.customer_id)
    assert traits is None or traits.order_count == 0


def test_a_batch_that_identifies_an_erased_person_by_traits_alone_creates_nothing(db) -> None:
    # given a person whose profile was built by the processor, then erased
    track(db, "identified", user_id=EXTERNAL_ID, properties={"traits": {"email": EMAIL}})
    process(db)
    customer = customers.find_customer(db, kind="email", value=EMAIL)
    privacy.erase_customer(db, customer_id=customer.customer_id, requested_by="dpo")
    # when a late event from another device names them by their email and phone only
    track(
        db,
        "identified",
        anonymous_id=VISITOR,
        properties={"traits": {"email": EMAIL, "phone": PHONE, "firstName": FIRST}},
    )
    track(db, "page_viewed", anonymous_id=VISITOR, at=T0 + timedelta(minutes=1))
    process(db)
    # then nothing comes back: not the profile, nor a visitor profile for that device
    _assert_gone(db)


def test_an_event_naming_the_erased_profile_id_neither_reactivates_nor_refills_it(db) -> None:
    # given an erased customer with an order counted in their traits
    track(db, "order_placed", user_id=EXTERNAL_ID, properties=order_placed(1000, ["Books"]))
    process(db)
    customer = customers.find_customer(db, kind="external_id", value=EXTERNAL_ID)
    cid = customer.customer_id
    privacy.erase_customer(db, customer_id=cid, requested_by="dpo")
    orders_before = db.get(CustomerTraits, cid).order_count
    # when events arrive naming their Rapport id, one of them with traits
    track(
        db,
        "identified",
        user_id=cid,
        anonymous_id=VISITOR,
        properties={"traits": {"email": EMAIL, "firstName": FIRST, "lastName": LAST}},
    )
    track(db, "order_placed", user_id=cid, properties=order_placed(2500, ["Books"]))
    process(db)
    # then the profile stays erased and empty, and gains nothing
    erased = db.get(Customer, cid)
    db.refresh(erased)
    assert erased.status == "erased"
    assert (erased.email, erased.first_name, erased.last_name) == (None, None, None)
    assert db.get(CustomerTraits, cid).order_count == orders_before
    _assert_gone(db)


def test_an_erased_identity_cannot_be_identified_registered_linked_or_imported(db) -> None:
    # given an erased person
    customer = customers.identify_customer(
        db, identities={"email": EMAIL, "phone": PHONE, "external_id": EXTERNAL_ID}
    )
    privacy.erase_customer(db, customer_id=customer.customer_id, requested_by="dpo")
    other = customers.identify_customer(db, identities={"email": "someone@example.com"})
    # when their identities are used again, then each way in is refused, naming the field
    with pytest.raises(InvalidInput) as identified:
        customers.identify_customer(db, identities={"email": EMAIL.upper()})
    assert identified.value.field == "identities.email"
    with pytest.raises(InvalidInput) as registered:
        customers.create_customer(db, customer=CustomerIn(phone=PHONE, first_name=FIRST))
    assert registered.value.field == "phone"
    with pytest.raises(InvalidInput) as linked:
        customers.add_identity(
            db, customer_id=other.customer_id, kind="external_id", value=EXTERNAL_ID
        )
    assert linked.value.field == "value"
    imported = customers.import_customers(
        db,
        customers=[
            customers.ImportedCustomer(
                external_id=EXTERNAL_ID,
                email=EMAIL,
                first_name=FIRST,
                last_name=LAST,
                locale="en",
                home_city=None,
                home_latitude=None,
                home_longitude=None,
                consents={"marketing_email": True},
            )
        ],
    )
    assert imported == 0
    assert customers.find_customer(db, kind="external_id", value=EXTERNAL_ID) is None
    assert customers.count_customers(db) == 1


def test_identify_over_http_refuses_an_erased_email_with_a_problem(client, api_key, db) -> None:
    # given an erased person
    customer = customers.identify_customer(db, identities={"email": EMAIL})
    privacy.erase_customer(db, customer_id=customer.customer_id, requested_by="dpo")
    # when a client identifies them again
    response = client.post(
        "/v1/customers/identify",
        json={"identities": {"email": EMAIL}, "first_name": FIRST},
        headers=command(api_key("ingest", "read", "write")),
    )
    # then a problem names the field, and no profile is made
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "identities.email"
    assert customers.find_customer(db, kind="email", value=EMAIL) is None


def test_an_order_naming_an_erased_customer_number_does_not_bring_them_back(db) -> None:
    # given an erased customer known by their retailer number
    customer = customers.identify_customer(db, identities={"external_id": EXTERNAL_ID})
    privacy.erase_customer(db, customer_id=customer.customer_id, requested_by="dpo")
    seed_catalog(db)
    # when an order names that number, then it is refused naming the field
    with pytest.raises(InvalidInput) as raised:
        orders.place_order(
            db, order=OrderIn(**order_body(order_id="O-GONE", customer_id=EXTERNAL_ID))
        )
    assert raised.value.field == "customer_id"
    # and an old export's order of theirs loads without them (its totals still count)
    orders.import_orders(
        db,
        orders=[
            ImportedOrder(
                order_id="O-HIST",
                customer_external_id=EXTERNAL_ID,
                channel="store",
                fulfilment="in_store",
                store_id="st-par-01",
                placed_at=T0,
                currency="EUR",
                lines=[ImportedLine(sku=CHIANTI, quantity=1, unit_price_minor=1200)],
            )
        ],
    )
    assert orders.get_order(db, order_id="O-HIST").customer_id is None
    assert customers.find_customer(db, kind="external_id", value=EXTERNAL_ID) is None


FEEDBACK_ABOUT_THEM = [
    pytest.param(
        "/v1/feedback/tickets",
        {"kind": "complaint", "channel": "email", "subject": "My address is 1 Secret Road"},
        id="ticket",
    ),
    pytest.param(
        "/v1/feedback/responses",
        {"survey_id": "nps-delivery", "score": 2, "comment": "Call me on 0123"},
        id="survey-answer",
    ),
    pytest.param(
        "/v1/feedback/reviews", {"sku": CHIANTI, "rating": 5, "text": "Lovely"}, id="review"
    ),
]


@pytest.mark.parametrize(("path", "body"), FEEDBACK_ABOUT_THEM)
def test_feedback_naming_an_erased_customer_is_refused_and_nothing_is_written(
    client, api_key, db, path, body
) -> None:
    """Nothing new is written about an erased person: a ticket, an answer or a review under
    their old id would be personal data that neither export nor erasure could reach."""
    # given an erased customer
    seed_catalog(db)
    make_survey(db)
    customer = customers.identify_customer(db, identities={"email": EMAIL})
    privacy.erase_customer(db, customer_id=customer.customer_id, requested_by="dpo")
    headers = {**auth(api_key("write")), "Idempotency-Key": f"gone-{path}"}
    before = _dump(db)
    # when feedback names them
    response = client.post(
        path, json={**body, "customer_id": customer.customer_id}, headers=headers
    )
    # then it is refused naming the field, and nothing was written
    assert response.status_code == 404, response.text
    assert response.json()["field"] == "customer_id"
    assert "erased" in response.json()["detail"]
    assert _dump(db) == before
