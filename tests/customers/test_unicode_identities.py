"""One address, one customer: however an email or a customer number is typed in Unicode
(a composed é or an e with a combining accent, full-width letters in an email, capitals,
spaces around it), POST /v1/customers, identify, lookup, imports and the erasure blocklist
read it as one identity; one holding an invisible character (a zero-width space, a BOM, a
bidi mark) is refused, naming the field."""

from __future__ import annotations

import itertools
import unicodedata
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapport.customers import service as customers
from rapport.flows import privacy
from rapport.platform.identity import normalise_identity
from tests.conftest import auth, command
from tests.customers.factories import imported, process
from tests.events.factories import basic_auth

NFC_EMAIL = "jos\u00e9.x@example.com"
NFD_EMAIL = unicodedata.normalize("NFD", NFC_EMAIL)
_serial = itertools.count()


def _sign_up(client, api_key, **body):  # type: ignore[no-untyped-def]
    return client.post("/v1/customers", json=body, headers=command(api_key("write")))


def test_an_address_typed_with_a_combining_accent_is_the_same_customer(client, api_key) -> None:
    # given a customer who signed up with a composed é
    first = _sign_up(client, api_key, email=NFC_EMAIL)
    assert first.status_code == 201, first.text

    # when the same address comes with an e and a combining acute
    again = _sign_up(client, api_key, email=NFD_EMAIL)

    # then it is theirs: no second profile, and a lookup by either form finds them
    assert again.status_code == 409, again.text
    for form in (NFC_EMAIL, NFD_EMAIL):
        found = client.get(
            "/v1/customers/lookup",
            params={"kind": "email", "value": form},
            headers=auth(api_key("read")),
        )
        assert found.status_code == 200, found.text
        assert found.json()["customer_id"] == first.json()["customer_id"]
    assert first.json()["email"] == NFC_EMAIL


def test_full_width_letters_are_the_ascii_address(client, api_key) -> None:
    created = _sign_up(client, api_key, email="\uff21\uff22\uff23@example.com")
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "abc@example.com"
    assert _sign_up(client, api_key, email="abc@example.com").status_code == 409


def test_a_full_width_at_sign_and_dot_are_the_ascii_address(client, api_key) -> None:
    # given an address typed on a phone keyboard left in full-width mode (U+FF20 and U+FF0E)
    created = _sign_up(client, api_key, email="ren\u00e9e\uff20example\uff0ecom")
    # then it is the ASCII address, and typed plainly it is the same customer
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "ren\u00e9e@example.com"
    assert _sign_up(client, api_key, email="ren\u00e9e@example.com").status_code == 409
    # and an address that is none is refused in words, not with the pattern
    refused = _sign_up(client, api_key, email="ren\u00e9e.example.com")
    assert refused.status_code == 422, refused.text
    assert "not an email address" in refused.text
    assert "pattern" not in refused.text


def test_a_customer_number_typed_with_a_combining_accent_is_one_customer(
    client, api_key, db
) -> None:
    composed, combining = "Zo\u00eb-x", "Zoe\u0308-x"
    created = _sign_up(client, api_key, external_id=composed)
    assert created.status_code == 201, created.text
    assert _sign_up(client, api_key, external_id=combining).status_code == 409
    # nor does an import of the other form make a second customer
    customers.import_customers(db, customers=[imported(combining)])
    assert customers.count_customers(db) == 1
    read = client.get(f"/v1/customers/{combining}", headers=auth(api_key("read")))
    assert read.status_code == 200, read.text
    assert read.json()["customer_id"] == created.json()["customer_id"]


@pytest.mark.parametrize("hidden", ["\u200b", "\ufeff", "\u202e", "\u200d"])
@pytest.mark.parametrize("field", ["email", "external_id"])
def test_an_identity_with_an_invisible_character_is_refused_naming_the_field(
    client, api_key, db, hidden, field
) -> None:
    value = {"email": "x@example.com", "external_id": "C-77"}[field]
    created = _sign_up(client, api_key, **{field: value + hidden})
    assert created.status_code == 422, created.text
    assert created.headers["content-type"].startswith("application/problem+json")
    assert created.json()["errors"][0]["field"] == field
    assert f"U+{ord(hidden):04X}" in created.json()["errors"][0]["message"]

    identified = client.post(
        "/v1/customers/identify",
        json={"identities": {field: value + hidden}},
        headers=command(api_key("write")),
    )
    assert identified.status_code == 422, identified.text
    assert identified.json()["errors"][0]["field"] == f"identities.{field}"
    assert customers.count_customers(db) == 0


def test_a_tracked_identify_keeps_one_email_whatever_form_it_has(client, api_key, db) -> None:
    # given a customer who signed up with a composed é
    created = _sign_up(client, api_key, external_id="C-nfd", email=NFC_EMAIL)
    customer_id = created.json()["customer_id"]

    # when the site identifies them with the address typed with a combining accent
    sent = client.post(
        "/v1/identify",
        json={"userId": "C-nfd", "messageId": "m-nfd", "traits": {"email": NFD_EMAIL}},
        headers=basic_auth(api_key("ingest")),
    )
    assert sent.status_code == 200, sent.text
    process(db)

    # then they hold one email identity, the one a lookup by either form finds
    profile = client.get(f"/v1/customers/{customer_id}", headers=auth(api_key("read"))).json()
    assert [i["value"] for i in profile["identities"] if i["kind"] == "email"] == [NFC_EMAIL]
    found = client.get(
        "/v1/customers/lookup",
        params={"kind": "email", "value": NFD_EMAIL},
        headers=auth(api_key("read")),
    )
    assert found.json()["customer_id"] == customer_id
    # and an address with a zero-width space is refused, naming the trait
    hidden = client.post(
        "/v1/identify",
        json={"userId": "u-zw", "messageId": "m-zw", "traits": {"email": "x@example.com\u200b"}},
        headers=basic_auth(api_key("ingest")),
    )
    assert hidden.status_code == 422, hidden.text
    assert hidden.json()["field"] == "traits.email"


def test_an_erased_address_blocks_its_other_unicode_forms(client, api_key, db) -> None:
    # given an erased person, whose address was given composed
    customer = customers.identify_customer(db, identities={"email": NFC_EMAIL})
    privacy.erase_customer(db, customer_id=customer.customer_id, requested_by="dpo")

    # when the address comes back with a combining accent
    for door in ("/v1/customers", "/v1/customers/identify"):
        body = (
            {"email": NFD_EMAIL}
            if door == "/v1/customers"
            else {"identities": {"email": NFD_EMAIL}}
        )
        response = client.post(door, json=body, headers=command(api_key("write")))
        # then it is the erased person's, refused
        assert response.status_code == 422, response.text
    assert customers.find_customer(db, kind="email", value=NFD_EMAIL) is None


# Letters that have composed and combining forms, and ASCII ones with full-width twins.
_LETTERS = st.text(
    alphabet="abzAZ\u00e9\u00c9\u00eb\u00f1\u00d1\u00fc\u00e5", min_size=1, max_size=8
)


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() else c for c in text)


def _typed(text: str, *, form: Literal["NFC", "NFD"], upper: bool, wide: bool, padded: bool) -> str:
    typed = text.upper() if upper else text
    typed = unicodedata.normalize(form, _full_width(typed) if wide else typed)
    return f"  {typed} " if padded else typed


_way = st.fixed_dictionaries(
    {
        "form": st.sampled_from(["NFC", "NFD"]),
        "upper": st.booleans(),
        "wide": st.booleans(),
        "padded": st.booleans(),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kind=st.sampled_from(["email", "external_id"]), local=_LETTERS, one=_way, other=_way)
def test_two_ways_of_typing_one_identity_resolve_to_one_customer(
    client, api_key, kind, local, one, other
) -> None:
    # given two ways of typing one identity (a customer number keeps its case and width)
    serial = next(_serial)
    text = f"{local}.{serial}@example.com" if kind == "email" else f"{local}-{serial}"
    if kind == "external_id":
        one, other = ({**way, "upper": False, "wide": False} for way in (one, other))
    first, second = _typed(text, **one), _typed(text, **other)
    assert normalise_identity(kind, first) == normalise_identity(kind, second)

    # when one signs up, the other is theirs at every door
    created = _sign_up(client, api_key, **{kind: first})
    assert created.status_code == 201, created.text
    customer_id = created.json()["customer_id"]
    assert _sign_up(client, api_key, **{kind: second}).status_code == 409
    identified = client.post(
        "/v1/customers/identify",
        json={"identities": {kind: second}},
        headers=command(api_key("write")),
    )
    assert identified.status_code == 200, identified.text
    assert identified.json()["customer_id"] == customer_id
    found = client.get(
        "/v1/customers/lookup",
        params={"kind": kind, "value": second},
        headers=auth(api_key("read")),
    )
    assert found.status_code == 200, found.text
    assert found.json()["customer_id"] == customer_id
