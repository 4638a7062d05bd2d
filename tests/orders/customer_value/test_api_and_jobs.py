"""Customer value through the API and the daily job."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.orders import service
from rapport.orders import tasks as order_tasks
from rapport.platform import clock, jobs
from tests.conftest import auth
from tests.orders.customer_value.factories import NOW, add_customer_with_orders


def _history(db: Session) -> tuple[str, str]:
    clock.set_clock(lambda: NOW)
    regular = add_customer_with_orders(db, name="api-regular", days_ago=[3, 40, 80, 120, 160])
    for i in range(5):
        add_customer_with_orders(db, name=f"api-other{i}", days_ago=[300 + i, 200])
    once = add_customer_with_orders(db, name="api-once", days_ago=[90])
    return regular, once


def test_the_daily_job_fits_and_the_api_reads_the_value(
    client: TestClient, api_key, db: Session
) -> None:
    regular, once = _history(db)
    key = auth(api_key("read"))
    # before any fit: 404s that say why
    assert client.get("/v1/orders/customer-value", headers=key).status_code == 404
    missing = client.get(f"/v1/orders/customers/{regular}/value", headers=key)
    assert missing.status_code == 404
    assert "not fitted" in missing.json()["detail"]
    # when the scheduled job runs
    assert any(s.kind == "orders.fit_customer_value" for s in jobs.registered_schedules())
    order_tasks.fit_customer_value(db, {})
    # then the parameters and each buyer's value are served
    fit = client.get("/v1/orders/customer-value", headers=key)
    assert fit.status_code == 200
    assert fit.json()["customers"] == 7
    body = client.get(f"/v1/orders/customers/{regular}/value", headers=key).json()
    assert body["customer_id"] == regular
    assert body["value_tier"] in ("top1", "top5", "top20", "rest")
    assert 0 < body["p_alive"] <= 1
    assert body["frequency"] == 4
    stored = service.customer_value(db, customer_id=regular)
    assert stored is not None
    assert body["predicted_value_minor"] == stored.predicted_value_minor
    one_off = client.get(f"/v1/orders/customers/{once}/value", headers=key).json()
    assert one_off["predicted_value_minor"] < body["predicted_value_minor"]
    # and an unknown key is refused
    assert client.get("/v1/orders/customer-value").status_code == 401
