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


def test_an_import_row_refusing_location_keeps_no_home_point(db, tmp_path) -> None:
    from rapport.customers import service as customers
    from rapport.customers.file_import import PRESETS, import_customers_file

    path = tmp_path / "crm.csv"
    path.write_text(
        "customer_id,email,city,latitude,longitude,consent_location\n"
        "HP-no,no@example.com,Madrid,40.4,-3.7,false\n"
        "HP-yes,yes@example.com,Madrid,40.4,-3.7,true\n"
        "HP-none,none@example.com,Madrid,40.4,-3.7,\n",
        encoding="utf-8",
    )
    import_customers_file(db, path, PRESETS["crm"])
    points = {}
    for number in ("HP-no", "HP-yes", "HP-none"):
        found = customers.find_customer_by_external_id(db, external_id=number)
        assert found is not None
        assert found.home_city == "Madrid"
        points[number] = (found.home_latitude, found.home_longitude)
    # as sign-up does: the refusal keeps no point, no choice keeps it until a withdrawal
    assert points == {"HP-no": (None, None), "HP-yes": (40.4, -3.7), "HP-none": (40.4, -3.7)}

    # and a segment near home finds only the person who granted location
    near = customers.near_audience(latitude=40.4, longitude=-3.7, radius_km=5, use=["home"])
    found_ids = {str(c) for c in db.scalars(near)}
    by_number = {
        number: customers.find_customer_by_external_id(db, external_id=number)
        for number in ("HP-no", "HP-yes", "HP-none")
    }
    assert {n for n, c in by_number.items() if c is not None and c.customer_id in found_ids} == {
        "HP-yes"
    }


def test_a_home_point_without_a_grant_is_not_used_by_a_near_segment(client, api_key, db) -> None:
    from rapport.customers import service as customers

    key = api_key("write", "read")
    _customer(client, key, "HN-none", **HOME)  # no choice on record: the point is kept
    _customer(client, key, "HN-yes", **HOME)
    _consent(client, key, "HN-yes", True)
    near = customers.near_audience(latitude=40.4, longitude=-3.7, radius_km=5, use=["home"])
    found = {str(c) for c in db.scalars(near)}
    none = customers.find_customer_by_external_id(db, external_id="HN-none")
    granted = customers.find_customer_by_external_id(db, external_id="HN-yes")
    assert none is not None
    assert granted is not None
    assert none.home_latitude == 40.4
    assert granted.customer_id in found
    assert none.customer_id not in found
