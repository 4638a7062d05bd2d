"""Phone numbers: the international 00 prefix is read as '+', a national number (06 …) is
refused asking for the international form, and an erased person's number stays refused
however it is written."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rapport.customers.models import Identity
from rapport.platform.identity import identity_digest, identity_problem, normalise_identity
from tests.conftest import command


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("+33 6 99 88 77 66", "+33699887766"),
        ("0033 6 99 88 77 66", "+33699887766"),
        ("0033 (0)6-99-88-77-66", "+33699887766"),  # the trunk 0 in brackets is dropped
        ("+0033 6 99 88 77 66", "+33699887766"),
        ("33699887766", "+33699887766"),
    ],
)
def test_a_phone_reads_as_one_international_number(written: str, number: str) -> None:
    assert normalise_identity("phone", written) == number
    assert identity_digest("phone", written) == identity_digest("phone", number)


@pytest.mark.parametrize("national", ["06 99 88 77 66", "0151 1234 5678", "+06 99 88 77 66"])
def test_a_national_number_is_no_phone_identity(national: str) -> None:
    assert "international form" in (identity_problem("phone", national) or "")


def test_an_erased_number_is_refused_in_either_spelling(client, api_key, db) -> None:
    key = api_key("write", "admin")
    made = client.post("/v1/customers", json={"phone": "+33 6 99 88 77 66"}, headers=command(key))
    assert made.status_code == 201, made.text
    erased = client.post(
        f"/v1/customers/{made.json()['customer_id']}/erase",
        json={"requested_by": "DPO"},
        headers=command(key),
    )
    assert erased.status_code == 200, erased.text
    again = client.post("/v1/customers", json={"phone": "0033 6 99 88 77 66"}, headers=command(key))
    assert again.status_code == 422, again.text
    assert again.json()["field"] == "phone"
    assert again.json()["code"] == "suppressed", again.text
    national = client.post("/v1/customers", json={"phone": "06 99 88 77 66"}, headers=command(key))
    assert national.status_code == 422, national.text
    assert national.json()["field"] == "phone"
    assert "international form" in national.json()["detail"]
    other = client.post("/v1/customers", json={"phone": "0049 151 1234 5678"}, headers=command(key))
    assert other.status_code == 201, other.text
    phones = set(db.scalars(select(Identity.value).where(Identity.kind == "phone")))
    assert phones == {"+4915112345678"}
