"""The deliveries log refuses a filter it cannot read, as the API does: an unknown status or
channel, a campaign that is not a number and a date that is not one are said beside their
field and list nothing (422), where they listed every delivery or none without saying why."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from tests.campaigns.delivery.factories import make_campaign, make_customer


@pytest.mark.parametrize(
    ("query", "field", "said"),
    [
        ("status=nope", "status", "Not a delivery status"),
        ("channel=fax", "channel", "Not a channel"),
        ("since=notadate", "since", "A date such as 2026-03-31"),
        ("until=2026-02-30", "until", "A date such as 2026-03-31"),
        ("campaign_id=abc", "campaign_id", "Campaign: choose one from the list"),
        ("campaign_id=99999", "campaign_id", "No such campaign (99999)"),
        ("campaign_id=99999999999999999999", "campaign_id", "Campaign: choose one from the list"),
        ("before=abc", "before", "Older page: follow the Older link"),
        ("customer_id=nobody-here", "customer_id", "No customer &#39;nobody-here&#39;"),
    ],
)
def test_a_filter_not_understood_is_said_beside_it(
    admin: TestClient, db: Session, query: str, field: str, said: str
) -> None:
    campaign = make_campaign(db)
    queue_deliveries(db, campaign=campaign, recipients=[Recipient(customer_id=make_customer(db))])
    db.commit()
    assert 'data-status="queued"' in admin.get("/admin/deliveries").text

    page = admin.get(f"/admin/deliveries?{query}")
    assert page.status_code == 422
    found = re.search(rf'data-field-error="{field}">([^<]*)<', page.text)
    assert found is not None
    assert found.group(1).startswith(said)
    assert 'data-status="queued"' not in page.text
    assert "Nothing is listed until the filters marked" in page.text


def test_the_customer_filter_takes_the_shops_customer_number(
    admin: TestClient, db: Session
) -> None:
    """The Customer filter reads a customer as the API does: the shop's number lists that
    customer's deliveries, where it listed none."""
    from rapport.customers import service as customers

    fan = make_customer(db)
    customers.add_identity(db, customer_id=fan, kind="external_id", value="fan-1")
    campaign = make_campaign(db)
    queue_deliveries(db, campaign=campaign, recipients=[Recipient(customer_id=fan)])
    db.commit()
    page = admin.get("/admin/deliveries?customer_id=fan-1")
    assert page.status_code == 200
    assert 'data-status="queued"' in page.text
    assert "No deliveries match." not in page.text
