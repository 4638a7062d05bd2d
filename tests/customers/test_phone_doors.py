"""One phone form at every door: a number given to POST /v1/customers or /identify is stored
as the contact phone in the form the phone identity has (``+`` and digits), so a person is
one phone in the profile, the identities, the erasure blocklist and the export; a national
or unreadable number is refused naming ``phone``."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rapport.customers import service as customers
from rapport.customers.models import Customer, Identity
from rapport.flows import privacy
from rapport.platform.errors import InvalidInput
from tests.conftest import auth, command
from tests.customers.factories import imported


@pytest.mark.parametrize(
    "written", ["+33 6 12 34 56 78", "0033 6 12 34 56 78", "+33 (6) 12-34-56-78", "33612345678"]
)
def test_a_new_customers_phone_is_stored_as_its_identity(client, api_key, db, written) -> None:
    # when a customer signs up with the number as they typed it
    created = client.post(
        "/v1/customers", json={"phone": written}, headers=command(api_key("write"))
    )

    # then the answer, the profile and the identity hold one form of it
    assert created.status_code == 201, created.text
    assert created.json()["phone"] == "+33612345678"
    read = client.get(
        f"/v1/customers/{created.json()['customer_id']}", headers=auth(api_key("read"))
    )
    assert read.json()["phone"] == "+33612345678"
    assert db.scalar(select(Customer.phone)) == "+33612345678"
    assert db.scalar(select(Identity.value).where(Identity.kind == "phone")) == "+33612345678"


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("06 12 34 56 78", "international form"),
        ("call me", "not a phone number"),
        ("+06 12 34 56 78", "international form"),
    ],
)
def test_a_national_or_unreadable_phone_is_refused_naming_it(
    client, api_key, db, written, says
) -> None:
    refused = client.post(
        "/v1/customers", json={"phone": written}, headers=command(api_key("write"))
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["field"] == "phone"
    assert says in refused.json()["detail"]
    assert customers.count_customers(db) == 0


def test_identify_stores_the_contact_phone_as_its_identity(client, api_key, db) -> None:
    identified = client.post(
        "/v1/customers/identify",
        json={"identities": {"phone": "0044 20 7946 0958"}},
        headers=command(api_key("write")),
    )
    assert identified.status_code == 200, identified.text
    assert identified.json()["phone"] == "+442079460958"


def test_a_number_signed_up_with_spaces_is_one_person_everywhere(client, api_key, db) -> None:
    # given a customer who signed up with a spaced number
    writer = api_key("write", "admin")
    made = client.post(
        "/v1/customers", json={"phone": "+33 6 12 34 56 78"}, headers=command(writer)
    )
    customer_id = made.json()["customer_id"]

    # then the same number written otherwise finds them, and is theirs alone
    for spelling in ("+33612345678", "0033 6 12 34 56 78"):
        found = customers.find_customer(db, kind="phone", value=spelling)
        assert found is not None
        assert found.customer_id == customer_id
    again = client.post("/v1/customers", json={"phone": "+33612345678"}, headers=command(writer))
    assert again.status_code == 409, again.text

    # and the export gives the number as the identity has it
    exported = privacy.export_customer(db, customer_id=customer_id, requested_by="DPO")
    profile = exported["customer"]
    assert profile["phone"] == "+33612345678"
    assert {(i["kind"], i["value"]) for i in exported["identities"]} == {
        ("phone", profile["phone"])
    }


def test_a_bulk_load_stores_the_phone_as_its_identity_and_refuses_a_national_one(db) -> None:
    assert (
        customers.import_customers(db, customers=[imported("B-1", phone="+33 6 12 34 56 78")]) == 1
    )
    loaded = customers.find_customer_by_external_id(db, external_id="B-1")
    assert loaded is not None
    assert loaded.phone == "+33612345678"
    with pytest.raises(InvalidInput) as refused:
        customers.import_customers(db, customers=[imported("B-2", phone="06 12 34 56 79")])
    assert refused.value.field == "phone"
    assert "'B-2'" in refused.value.detail
    assert "international form" in refused.value.detail
    assert customers.find_customer_by_external_id(db, external_id="B-2") is None


def test_erasing_a_national_contact_phone_kept_from_before_blocks_no_other_number(
    client, api_key, db
) -> None:
    # given a profile holding a national contact phone from before the doors refused one
    writer = api_key("write", "admin", "ingest")
    made = client.post("/v1/customers", json={"external_id": "OLD-9"}, headers=command(writer))
    customer = db.get(Customer, made.json()["customer_id"])
    customer.phone = "06 12 34 56 78"
    db.flush()

    # when they are erased
    erased = client.post(
        f"/v1/customers/{customer.customer_id}/erase",
        json={"requested_by": "DPO"},
        headers=command(writer),
    )
    assert erased.status_code == 200, erased.text

    # then a national number nobody was erased with (it names no one) is no erased identity:
    # another visitor's event naming one in its properties is stored
    sent = client.post(
        "/v1/events",
        json={
            "event_id": "e-national",
            "type": "callback_requested",
            "anonymous_id": "a-1",
            "channel": "web",
            "occurred_at": "2026-06-01T12:00:00+00:00",
            "properties": {"phone": "01 23 45 67 89"},
        },
        headers=auth(writer),
    )
    assert sent.status_code == 201, sent.text


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("0044 (0)20 7946 0958", "+442079460958"),
        ("+44(0)2079460958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+49 (0)30 123456", "+4930123456"),
        ("0041 (0) 44 668 18 00", "+41446681800"),
        # only a bracketed trunk 0 right after the country code is dropped
        ("+39 06 1234 5678", "+390612345678"),
        ("+44 20 (0)7946 0958", "+442007946" + "0958"),
        ("+33 (6) 12-34-56-78", "+33612345678"),
    ],
)
def test_a_bracketed_trunk_zero_after_the_country_code_is_dropped(written, stored) -> None:
    from rapport.platform.identity import canonical_phone, normalise_identity

    assert canonical_phone(written) == stored
    assert normalise_identity("phone", written) == stored


def test_the_bracketed_trunk_form_finds_the_person_the_00_form_signed_up(
    client, api_key, db
) -> None:
    # given a customer who signed up with the 00 form
    made = client.post(
        "/v1/customers", json={"phone": "0044 20 7946 0958"}, headers=command(api_key("write"))
    )
    assert made.status_code == 201, made.text

    # when they identify with the UK form, the trunk 0 in brackets
    identified = client.post(
        "/v1/customers/identify",
        json={"identities": {"phone": "+44 (0)20 7946 0958"}},
        headers=command(api_key("write")),
    )

    # then it is the same person and the same number
    assert identified.status_code == 200, identified.text
    assert identified.json()["customer_id"] == made.json()["customer_id"]
    assert identified.json()["phone"] == "+442079460958"
    assert customers.count_customers(db) == 1
