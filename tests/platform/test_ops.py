"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import auth


def test_healthz_answers_ok(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}


def test_readyz_checks_database_and_migrations(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}


def test_readyz_names_a_database_migrated_by_a_newer_rapport(client, db) -> None:
    # given a database a newer Rapport migrated (a revision this code does not know)
    db.execute(text("UPDATE alembic_version SET version_num = 'f99999999999'"))
    # when readiness is asked
    response = client.get("/readyz")
    # then it is not ready, and says why and what to do, not that migrations are pending
    assert response.status_code == 503
    check = response.json()["checks"]["migrations"]
    assert check.startswith("migrated by a newer Rapport (revision f99999999999 unknown"), check
    assert "restore the backup" in check
    assert "pending" not in check


def test_metrics_count_requests_by_route_template(client, api_key) -> None:
    secret = api_key("read")
    client.get("/v1/products/A-1", headers=auth(secret))
    client.get("/v1/products/B-2", headers=auth(secret))
    text = client.get("/metrics").text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("rapport_http_requests_total{")
        and 'route="/v1/products/{sku}"' in line
        and 'status="404"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 2.0
    assert "rapport_http_request_duration_seconds_bucket" in text


def test_openapi_documents_every_v1_route_with_security(client) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/events" in spec["paths"]
    assert "/v1/products/{sku}" in spec["paths"]
    for path, operations in spec["paths"].items():
        if path.startswith("/v1"):
            for operation in operations.values():
                assert operation.get("security"), f"{path} has no security requirement"
    assert client.get("/docs").status_code == 200
