"""What a shop's write key may say about people. It sits in the shop's pages for anyone to
read, so tracking never merges two known customers (an identify naming another's email, an
alias of another's id) nor moves a birthday already held; the usual sign-in, a visitor's
anonymous profile joining the customer who identifies on it, still merges."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from rapport.customers import service as customers
from rapport.customers.models import Customer, Preference
from rapport.events.models import Event
from rapport.platform import clock
from tests.conftest import auth, command
from tests.customers.factories import T0, process, track
from tests.events.factories import basic_auth


def _merges(db) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(Event).where(Event.type == "customers_merged")
    return int(db.scalar(query) or 0)


def _identities(client, reader: str, ref: str) -> list[str]:  # type: ignore[no-untyped-def]
    profile = client.get(f"/v1/customers/{ref}", headers=auth(reader))
    assert profile.status_code == 200
    return sorted(i["value"] for i in profile.json()["identities"])


def test_an_ingest_key_cannot_merge_two_known_customers_by_email(client, api_key, db) -> None:
    # given two customers, each with their own shop number and email
    writer, reader, ingest = api_key("write"), api_key("read"), api_key("ingest")
    for number in ("K-1", "K-3"):
        created = client.post(
            "/v1/customers",
            json={"external_id": number, "email": f"{number.lower().replace('-', '')}@example.com"},
            headers=command(writer),
        )
        assert created.status_code == 201

    # when someone with the page's write key says K-3's email is K-1's
    sent = client.post(
        "/v1/identify",
        json={"userId": "K-3", "messageId": "mg-1", "traits": {"email": "k1@example.com"}},
        headers=basic_auth(ingest),
    )
    assert sent.status_code == 200
    process(db)

    # then they stay two people, each with their own identities and contact email
    assert _identities(client, reader, "K-1") == ["K-1", "k1@example.com"]
    assert _identities(client, reader, "K-3") == ["K-3", "k3@example.com"]
    k3 = client.get("/v1/customers/K-3", headers=auth(reader)).json()
    assert k3["email"] == "k3@example.com"
    assert _merges(db) == 0


def test_a_new_user_id_never_lands_on_another_known_customer(db) -> None:
    # given a known customer
    track(db, "identified", user_id="K-1", properties={"traits": {"email": "k1@example.com"}})
    process(db)
    k1 = customers.find_customer(db, kind="external_id", value="K-1")
    assert k1 is not None

    # when an unknown shop number identifies with K-1's email and phone-less traits
    track(
        db,
        "identified",
        user_id="K-9",
        at=T0 + timedelta(minutes=1),
        properties={"traits": {"email": "k1@example.com", "firstName": "Mallory"}},
    )
    process(db)

    # then K-9 is a profile of its own, without the email, and K-1 is untouched
    k9 = customers.find_customer(db, kind="external_id", value="K-9")
    assert k9 is not None
    assert k9.customer_id != k1.customer_id
    assert (k9.email, k9.first_name) == (None, "Mallory")
    db.refresh(k1)
    assert (k1.status, k1.first_name) == ("active", None)
    assert _merges(db) == 0


def test_a_visitor_named_by_traits_joins_one_known_customer_only(db) -> None:
    # given two known customers, and a visitor browsing
    track(db, "identified", user_id="K-1", properties={"traits": {"email": "k1@example.com"}})
    track(db, "identified", user_id="K-3", properties={"traits": {"phone": "+33 6 12 34 56 78"}})
    track(db, "page_viewed", anonymous_id="anon-x")
    process(db)
    visitor = customers.find_customer(db, kind="anonymous_id", value="anon-x")
    assert visitor is not None

    # when the visitor identifies with no user id, with K-1's email and K-3's phone
    track(
        db,
        "identified",
        anonymous_id="anon-x",
        at=T0 + timedelta(minutes=2),
        properties={"traits": {"email": "K1@example.com", "phone": "+33612345678"}},
    )
    process(db)

    # then the visitor joined K-1 (the email names them first), and K-3 stayed apart
    k1 = customers.find_customer(db, kind="external_id", value="K-1")
    k3 = customers.find_customer(db, kind="external_id", value="K-3")
    assert k1 is not None
    assert k3 is not None
    assert customers.find_customer(db, kind="anonymous_id", value="anon-x") == k1
    assert customers.find_customer(db, kind="phone", value="+33612345678") == k3
    assert (k1.phone, k3.status) == (None, "active")
    assert _merges(db) == 1  # the visitor's profile into K-1's


def test_an_alias_of_a_known_customers_id_merges_nothing(db) -> None:
    for number in ("K-1", "K-3"):
        track(db, "identified", user_id=number, properties={"traits": {}})
    process(db)

    track(db, "aliased", user_id="K-3", properties={"previous_id": "K-1"})
    process(db)

    k1 = customers.find_customer(db, kind="external_id", value="K-1")
    k3 = customers.find_customer(db, kind="external_id", value="K-3")
    assert k1 is not None
    assert k3 is not None
    assert k1.customer_id != k3.customer_id
    assert db.scalar(select(Customer.status).where(Customer.customer_id == k1.customer_id)) == (
        "active"
    )
    assert _merges(db) == 0


def test_signing_in_still_joins_the_visitors_anonymous_profile(client, api_key, db) -> None:
    # given a known customer, and a visitor browsing anonymously
    writer, ingest = api_key("write"), api_key("ingest")
    client.post(
        "/v1/customers",
        json={"external_id": "K-1", "email": "k1@example.com"},
        headers=command(writer),
    )
    client.post(
        "/v1/page", json={"anonymousId": "anon-1", "messageId": "p-1"}, headers=basic_auth(ingest)
    )
    process(db)
    visitor = customers.find_customer(db, kind="anonymous_id", value="anon-1")
    assert visitor is not None
    assert visitor.is_anonymous

    # when the visitor signs in as K-1 (their own email in the traits)
    client.post(
        "/v1/identify",
        json={
            "userId": "K-1",
            "anonymousId": "anon-1",
            "messageId": "i-1",
            "traits": {"email": "k1@example.com", "firstName": "Kim"},
        },
        headers=basic_auth(ingest),
    )
    process(db)

    # then the visitor's profile joined K-1's (their name needs a key that may also write)
    k1 = customers.find_customer(db, kind="external_id", value="K-1")
    assert k1 is not None
    assert k1.first_name is None
    assert customers.find_customer(db, kind="anonymous_id", value="anon-1") == k1
    assert db.get(Customer, visitor.customer_id).merged_into == k1.customer_id
    assert _merges(db) == 1


def test_tracking_never_moves_a_birthday_and_a_new_one_waits_for_the_bonus(db) -> None:
    # given a customer whose birthday came from tracking
    track(db, "identified", user_id="B-1", properties={"traits": {"birthday": "1990-03-04"}})
    process(db)
    b1 = customers.find_customer(db, kind="external_id", value="B-1")
    assert b1 is not None

    # when a page later says their birthday is today
    today = clock.now().date()
    track(
        db,
        "identified",
        user_id="B-1",
        at=T0 + timedelta(minutes=1),
        properties={"traits": {"birthday": today.replace(year=1992).isoformat()}},
    )
    # and says the same of someone with no birthday yet
    track(
        db,
        "identified",
        user_id="B-2",
        properties={"traits": {"birthday": today.replace(year=1996).isoformat()}},
    )
    process(db)

    # then the birthday held stays, and today's earns no birthday bonus today
    assert db.get(Preference, (b1.customer_id, "birthday")).value == "1990-03-04"
    b2 = customers.find_customer(db, kind="external_id", value="B-2")
    assert b2 is not None
    assert db.get(Preference, (b2.customer_id, "birthday")) is not None
    assert customers.birthdays_on(db, month=today.month, day=today.day) == []
