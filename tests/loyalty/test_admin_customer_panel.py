"""The loyalty panel of the customer 360 page over HTTP (the browser tests drive its actions):
what it shows and what it refuses."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.models import AppliedCheckout
from rapport.orders import service as orders
from rapport.platform import service as platform
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in


@pytest.fixture
def admin(client: TestClient, db: Session) -> TestClient:
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303
    return client


def _text(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(dd|span)>', html, re.S)
    assert found is not None, f"no {testid}"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def _external_id(db: Session, customer_id: str) -> str:
    customer = customers.get_customer(db, customer_id=customer_id)
    assert customer is not None
    assert customer.external_id is not None
    return customer.external_id


def test_the_panel_shows_savings_in_another_currency_apart(admin: TestClient, db: Session) -> None:
    # given a member of a JPY plan who saved 4.20 EUR on a EUR order
    moment = frozen_clock()
    membership_plans.save_plan(
        db, plan_id="yen", name="P yen", fee_minor=500, currency="JPY", period="month"
    )
    customer_id = make_customer(db)
    memberships.join(db, customer_id=customer_id, plan_id="yen")
    order = orders.ImportedOrder(
        order_id="E-1",
        customer_external_id=_external_id(db, customer_id),
        channel="web",
        fulfilment="in_store",
        store_id=None,
        placed_at=T0 + timedelta(days=1),
        currency="EUR",
        lines=[orders.ImportedLine(sku="SKU-1", quantity=1, unit_price_minor=5000)],
    )
    orders.import_orders(db, orders=[order])
    db.add(
        AppliedCheckout(
            order_id="E-1",
            customer_id=customer_id,
            effects=[],
            plan_savings_minor=420,
            placed_at=T0 + timedelta(days=1),
        )
    )
    db.commit()
    moment.advance(timedelta(days=2))
    # when the panel is opened
    html = admin.get(f"/admin/loyalty/customers/{customer_id}/panel").text
    # then the plan's value is in yen, the euros on their own line, never subtracted
    assert _text(html, "membership-net") == "behind by JP¥500"
    assert _text(html, "membership-other-currency") == "In EUR, apart: saved €4.20, €0.00 in fees"
