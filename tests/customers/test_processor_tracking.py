"""What tracking says about a person, applied by the profile processor: custom traits kept
typed on the profile within their bounds, known traits as profile fields, ``aliased`` as a
merge (or a new identity), ``grouped`` as the customer's account or household, and none of it
bringing an erased person back."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from rapport.customers import service as customers
from rapport.customers.models import Customer, CustomerGroup, Identity, Preference
from rapport.customers.traits import MAX_CUSTOM_TRAITS
from rapport.events.models import Event
from rapport.flows import privacy
from rapport.platform import clock
from rapport.platform import service as platform
from tests.conftest import auth
from tests.customers.factories import T0, process, track


def _identify(db, user_id: str, traits: dict, **kwargs) -> None:  # type: ignore[no-untyped-def]
    track(db, "identified", user_id=user_id, properties={"traits": traits}, **kwargs)


def _customer(db, external_id: str) -> Customer:  # type: ignore[no-untyped-def]
    customer = customers.find_customer(db, kind="external_id", value=external_id)
    assert customer is not None
    return customer


def test_custom_traits_are_kept_typed_and_known_ones_fill_the_profile(db) -> None:
    # given an identify call with known and custom traits of every kind
    _identify(
        db,
        "u-1",
        {
            "email": "ann@example.com",
            "name": "Ann van Dijk",
            "birthday": "1985-04-12T00:00:00Z",
            "address": {"city": "Utrecht", "country": "NL"},
            "plan": "pro",
            "age": 41,
            "ltv": 1234.5,
            "vip": True,
            "churned_at": None,
            "signed_up": "2024-02-29",
            "interests": ["wine", "books"],
        },
    )

    # when the processor runs
    process(db)

    # then the profile fields come from the known traits, the rest are attributes as sent
    customer = _customer(db, "u-1")
    assert (customer.email, customer.first_name, customer.last_name, customer.home_city) == (
        "ann@example.com",
        "Ann",
        "van Dijk",
        "Utrecht",
    )
    assert customer.attributes == {
        "address": {"city": "Utrecht", "country": "NL"},
        "plan": "pro",
        "age": 41,
        "ltv": 1234.5,
        "vip": True,
        "churned_at": None,
        "signed_up": "2024-02-29",
        "interests": ["wine", "books"],
    }
    # and the birthday is the preference the loyalty birthday bonus reads, once held 30 days
    held = db.get(Preference, (customer.customer_id, "birthday"))
    assert (held.value, held.source) == ("1985-04-12", "event:identified")
    assert customers.birthdays_on(db, month=4, day=12) == []
    clock.set_clock(lambda: held.updated_at + timedelta(days=30))
    assert customers.birthdays_on(db, month=4, day=12) == [customer.customer_id]


def test_later_calls_update_traits_and_the_profile_keeps_at_most_fifty(db) -> None:
    # given a profile already holding 50 custom traits
    _identify(db, "u-2", {f"t{i}": i for i in range(MAX_CUSTOM_TRAITS)})
    process(db)

    # when a later call changes one and adds a new one
    _identify(db, "u-2", {"t0": "changed", "one_too_many": 1}, at=T0 + timedelta(hours=1))
    process(db)

    # then the change is kept and the 51st name is not
    attributes = _customer(db, "u-2").attributes
    assert attributes["t0"] == "changed"
    assert "one_too_many" not in attributes
    assert len(attributes) == MAX_CUSTOM_TRAITS


def test_context_traits_on_any_call_reach_the_profile_but_link_no_identity(db) -> None:
    # given a known customer, and a track call whose SDK copied traits into context.traits
    _identify(db, "u-3", {"email": "cleo@example.com"})
    track(
        db,
        "product_viewed",
        user_id="u-3",
        at=T0 + timedelta(minutes=1),
        context={"traits": {"plan": "max", "firstName": "Cleo", "email": "other@example.com"}},
    )

    # when the processor runs
    process(db)

    # then the custom trait and the name are kept; the email in context links nothing
    customer = _customer(db, "u-3")
    assert (customer.attributes, customer.first_name, customer.email) == (
        {"plan": "max"},
        "Cleo",
        "cleo@example.com",
    )
    assert customers.find_customer(db, kind="email", value="other@example.com") is None


def test_a_birthday_from_tracking_never_overrides_the_customers_own(db) -> None:
    # given a customer who told their birthday in the preference centre
    _identify(db, "u-4", {"email": "dee@example.com"})
    process(db)
    customer = _customer(db, "u-4")
    customers.set_preferences(
        db, customer_id=customer.customer_id, values={"birthday": "1990-01-02"}, source="centre"
    )

    # when tracking later sends another birthday
    _identify(db, "u-4", {"birthday": "1991-03-04"}, at=T0 + timedelta(hours=1))
    process(db)

    # then their own answer stays
    held = db.get(Preference, (customer.customer_id, "birthday"))
    assert (held.value, held.source) == ("1990-01-02", "centre")


def test_alias_merges_the_previous_profile_into_the_new_one(db) -> None:
    # given a visitor who browsed anonymously and joined a household, and a signed-up user
    track(db, "page_viewed", anonymous_id="anon-5", at=T0)
    track(
        db,
        "grouped",
        anonymous_id="anon-5",
        properties={"group_id": "house-5", "traits": {}},
        at=T0 + timedelta(minutes=1),
    )
    _identify(db, "u-5", {"email": "eve@example.com"}, at=T0 + timedelta(minutes=2))
    process(db)
    visitor = customers.find_customer(db, kind="anonymous_id", value="anon-5")
    assert visitor is not None

    # when the shop aliases the visitor id to the user id
    track(
        db,
        "aliased",
        user_id="u-5",
        properties={"previous_id": "anon-5"},
        at=T0 + timedelta(minutes=3),
    )
    process(db)

    # then one profile holds both, with the history and the group
    customer = _customer(db, "u-5")
    assert customers.find_customer(db, kind="anonymous_id", value="anon-5") == customer
    assert db.get(Customer, visitor.customer_id).merged_into == customer.customer_id
    assert customer.group_id == "house-5"
    timeline = customers.get_timeline(db, customer_id=customer.customer_id, limit=10)
    assert "page_viewed" in [e.type for e in timeline]


def test_an_unknown_previous_id_becomes_an_identity_of_the_new_profile(db) -> None:
    # given a user, aliased from an id Rapport has never seen
    track(db, "aliased", user_id="u-6", properties={"previous_id": "legacy-6"})
    process(db)
    customer = _customer(db, "u-6")

    # when events later name that id, as a user id or as a visitor id
    track(db, "page_viewed", user_id="legacy-6", at=T0 + timedelta(minutes=1))
    track(db, "page_viewed", anonymous_id="legacy-6", at=T0 + timedelta(minutes=2))
    process(db)

    # then they are the same customer's
    owners = set(db.scalars(select(Event.customer_id).where(Event.type == "page_viewed")))
    assert owners == {customer.customer_id}


def test_an_alias_of_an_erased_persons_id_does_not_bring_them_back(db) -> None:
    # given an erased customer
    _identify(db, "old-7", {"email": "gone@example.com"})
    process(db)
    gone = _customer(db, "old-7")
    privacy.erase_customer(db, customer_id=gone.customer_id, requested_by="dpo")

    # when the shop aliases their old id to a new user id
    track(db, "aliased", user_id="new-7", properties={"previous_id": "old-7"})
    track(db, "page_viewed", user_id="new-7", at=T0 + timedelta(minutes=1))
    process(db)

    # then no profile holds either id, and the alias keeps no trace of the old id
    assert customers.find_customer(db, kind="external_id", value="new-7") is None
    held = db.scalars(select(Identity.value).where(Identity.value.in_(["old-7", "new-7"])))
    assert list(held) == []
    alias = db.scalar(select(Event).where(Event.type == "aliased"))
    assert "old-7" not in str(alias.properties)


def test_group_calls_store_the_household_and_erasure_takes_the_membership(
    db, client, api_key
) -> None:
    # given two customers of one household, and a third alone in hers
    for user in ("u-8a", "u-8b"):
        track(
            db,
            "grouped",
            user_id=user,
            properties={"group_id": "house-8", "traits": {"name": "The Smiths", "size": 2}},
        )
    track(db, "grouped", user_id="u-8c", properties={"group_id": "solo-8", "traits": {}})
    process(db)
    first, third = _customer(db, "u-8a"), _customer(db, "u-8c")

    # when the API reads the first
    profile = client.get(f"/v1/customers/{first.customer_id}", headers=auth(api_key("read")))

    # then it shows the group and its traits
    assert profile.status_code == 200
    assert profile.json()["group_id"] == "house-8"
    assert profile.json()["group"]["traits"] == {"name": "The Smiths", "size": 2}

    # when the first and the third are erased
    for person in (first, third):
        privacy.erase_customer(db, customer_id=person.customer_id, requested_by="dpo")

    # then their memberships go; the household stays for the other, the solo group goes
    assert db.get(Customer, first.customer_id).group_id is None
    assert _customer(db, "u-8b").group_id == "house-8"
    assert db.get(CustomerGroup, "house-8") is not None
    assert db.get(CustomerGroup, "solo-8") is None


def test_a_visitor_s_household_stays_when_they_identify_and_the_profiles_merge(db) -> None:
    # given an anonymous visitor who joined a household before signing in
    track(db, "grouped", anonymous_id="anon-9", properties={"group_id": "house-9", "traits": {}})
    process(db)

    # when they identify with their shop account on the same browser
    _identify(db, "u-9", {"email": "nine@example.com"}, anonymous_id="anon-9")
    process(db)

    # then the visitor profile merged into theirs, and the household came with it
    assert _customer(db, "u-9").group_id == "house-9"


def test_the_360_page_shows_custom_traits_and_the_group(db, client) -> None:
    # given a customer with custom traits and a household
    _identify(db, "u-9", {"email": "fay@example.com", "plan": "pro", "age": 41})
    track(db, "grouped", user_id="u-9", properties={"group_id": "house-9", "traits": {}})
    process(db)
    customer = _customer(db, "u-9")

    # when an operator opens the customer's page
    platform.create_admin_user(db, email="ops@example.com", password="a long enough secret")
    login = client.get("/admin/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token is not None
    client.post(
        "/admin/login",
        data={
            "email": "ops@example.com",
            "password": "a long enough secret",
            "csrf_token": token.group(1),
        },
        follow_redirects=False,
    )
    page = client.get(f"/admin/customers/{customer.customer_id}")

    # then the group and each custom trait are on it
    assert page.status_code == 200
    assert 'data-testid="customer-group">house-9<' in page.text
    assert "2 custom traits" in page.text
    assert '<th scope="row">plan</th><td>pro</td>' in page.text
    assert '<th scope="row">age</th><td>41</td>' in page.text
