"""Customer endpoints."""

from __future__ import annotations

from rapport.customers import service as customers
from tests.conftest import auth, command


def test_create_and_read_customer_with_consents(client, api_key) -> None:
    writer, reader = api_key("write"), api_key("read")
    created = client.post(
        "/v1/customers",
        json={"external_id": "C-77", "email": "ana@example.com", "consents": {"analytics": True}},
        headers=command(writer),
    )
    assert created.status_code == 201
    customer_id = created.json()["customer_id"]
    got = client.get(f"/v1/customers/{customer_id}", headers=auth(reader)).json()
    assert got["email"] == "ana@example.com"
    assert [(c["purpose"], c["granted"]) for c in got["consents"]] == [("analytics", True)]


def test_consent_put_and_unknown_purpose(client, api_key) -> None:
    writer = api_key("write")
    customer_id = client.post("/v1/customers", json={}, headers=command(writer)).json()[
        "customer_id"
    ]
    ok = client.put(
        f"/v1/customers/{customer_id}/consents/location",
        json={"granted": True},
        headers=auth(writer),
    )
    assert ok.status_code == 200
    assert ok.json()["granted"] is True
    bad = client.put(
        f"/v1/customers/{customer_id}/consents/telepathy",
        json={"granted": True},
        headers=auth(writer),
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "purpose"


def test_invalid_email_is_refused_and_nothing_stored(client, api_key, db) -> None:
    response = client.post(
        "/v1/customers", json={"email": "not-an-email"}, headers=auth(api_key("write"))
    )
    assert response.status_code == 422
    assert response.json()["field"] == "email"
    assert customers.count_customers(db) == 0


def test_unknown_customer_is_404(client, api_key) -> None:
    response = client.get("/v1/customers/cus_missing", headers=auth(api_key("read")))
    assert response.status_code == 404
    assert response.json()["field"] == "customer_id"


def test_a_coordinate_that_is_not_a_number_is_refused_as_not_finite(client, api_key, db) -> None:
    writer = api_key("write")
    for field, value in (("home_latitude", "NaN"), ("home_longitude", "Infinity")):
        response = client.post(
            "/v1/customers",
            content=f'{{"external_id": "C-NAN", "{field}": {value}}}',
            headers={**command(writer), "Content-Type": "application/json"},
        )
        assert response.status_code == 422
        problem = response.json()
        error = (problem.get("errors") or [problem])[0]
        assert error["field"] == field
        assert (error["message"], error["code"]) == (
            "Input should be a finite number",
            "finite_number",
        )
    customer_id = client.post("/v1/customers", json={}, headers=command(writer)).json()[
        "customer_id"
    ]
    shoe = client.put(
        f"/v1/customers/{customer_id}/preferences",
        content='{"shoe_size": NaN}',
        headers={**auth(writer), "Content-Type": "application/json"},
    )
    assert shoe.status_code == 422
    assert shoe.json()["errors"][0]["code"] == "finite_number"
    assert customers.get_preferences(db, customer_id=customer_id) == []
    assert customers.count_customers(db) == 1


def test_a_timeline_cursor_beyond_64_bits_is_refused_naming_it(client, api_key) -> None:
    writer, reader = api_key("write"), api_key("read")
    client.post("/v1/customers", json={"external_id": "C-100"}, headers=command(writer))
    ok = client.get(f"/v1/customers/C-100/timeline?before={2**63 - 1}", headers=auth(reader))
    assert ok.status_code == 200
    response = client.get(f"/v1/customers/C-100/timeline?before={2**63}", headers=auth(reader))
    assert response.status_code == 422
    problem = response.json()
    assert (problem.get("errors") or [problem])[0]["field"] == "before"
