"""The home point (``home_latitude``/``home_longitude``) follows consent to ``location`` as a
tracked coordinate does: a merge whose standing choice is no keeps none, whichever profile
brought it, one whose choice is yes keeps it, and a withdrawal empties it (the city stays)."""

from __future__ import annotations

import pytest

from tests.conftest import auth, command


def _customer(client, key, external_id: str, **fields: object) -> None:
    answer = client.post(
        "/v1/customers",
        json={"external_id": external_id, "email": f"{external_id.lower()}@example.com", **fields},
        headers=command(key),
    )
    assert answer.status_code == 201, answer.text


def _consent(client, key, customer: str, granted: bool) -> None:
    answer = client.put(
        f"/v1/customers/{customer}/consents/location",
        json={"granted": granted, "source": "test"},
        headers=auth(key),
    )
    assert answer.status_code == 200, answer.text


HOME = {"home_city": "Madrid", "home_latitude": 40.4, "home_longitude": -3.7}


@pytest.mark.parametrize(
    ("located", "refused_first"),
    [
        ("H-src", False),  # the duplicate brings its home point, the survivor said no later
        ("H-tgt", False),  # the survivor holds it, the duplicate's no is the later choice
        ("H-src", True),  # a grant later than the refusal stands: the point comes across
    ],
)
def test_a_merge_keeps_the_home_point_only_with_a_standing_yes(
    client, api_key, db, located, refused_first
) -> None:
    key = api_key("write", "read")
    refusing = "H-tgt" if located == "H-src" else "H-src"
    _customer(client, key, "H-src", **(HOME if located == "H-src" else {}))
    _customer(client, key, "H-tgt", **(HOME if located == "H-tgt" else {}))
    if refused_first:
        _consent(client, key, refusing, False)
    _consent(client, key, located, True)
    if not refused_first:
        _consent(client, key, refusing, False)
    merged = client.post(
        "/v1/customers/merge",
        json={"source_customer_id": "H-src", "target_customer_id": "H-tgt", "reason": "same"},
        headers=command(key),
    )
    assert merged.status_code == 200, merged.text
    profile = client.get("/v1/customers/H-tgt", headers=auth(key)).json()
    granted = {c["purpose"]: c["granted"] for c in profile["consents"]}["location"]
    assert granted is refused_first
    point = (profile["home_latitude"], profile["home_longitude"])
    assert point == ((40.4, -3.7) if granted else (None, None))
    assert profile["home_city"] == "Madrid"


def test_withdrawing_location_empties_the_home_point(client, api_key, db) -> None:
    key = api_key("write", "read")
    _customer(client, key, "H-one", **HOME)
    _consent(client, key, "H-one", True)
    profile = client.get("/v1/customers/H-one", headers=auth(key)).json()
    assert (profile["home_latitude"], profile["home_longitude"]) == (40.4, -3.7)
    _consent(client, key, "H-one", False)
    profile = client.get("/v1/customers/H-one", headers=auth(key)).json()
    assert (profile["home_latitude"], profile["home_longitude"]) == (None, None)
    assert profile["home_city"] == "Madrid"
