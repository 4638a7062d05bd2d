"""The campaign pages' figures agree with the results: the list's Audience counts the
customers who entered a triggered or Rapport's own campaign as the results page does (not the
one-off launch's count, 0 for them), and the revenue uplift reads the same in the sentence and
the table, its sign before the currency and the interval in the currency."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.planning import editing, results
from rapport.campaigns.planning.editing import CampaignSettings
from rapport.campaigns.planning.results import CampaignResults, GroupResult, Interval
from rapport.platform import formatting
from tests.campaigns.planning.factories import make_customer, make_segment


def test_the_list_counts_a_triggered_campaigns_audience_as_its_results_do(
    admin: TestClient, db: Session
) -> None:
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Match won",
            kind="triggered",
            segment_id=make_segment(db),
            trigger={"event_type": "venue_event", "within_minutes": 90},
        ),
    )
    people = [make_customer(db) for _ in range(3)]
    recipients = [Recipient(customer_id=p, occasion="match-1") for p in people[:2]]
    recipients += [Recipient(customer_id=p, occasion="match-2") for p in people[:2]]
    recipients.append(Recipient(customer_id=people[2], occasion="match-2", group="control"))
    queue_deliveries(db, campaign=campaign, recipients=recipients)
    db.commit()
    found = results.campaign_results(db, campaign_id=campaign.id)
    assert (found.treated.customers, found.control.customers) == (2, 1)

    page = admin.get("/admin/campaigns").text
    shown = re.search(rf'data-testid="audience-{campaign.id}">([^<]*)<', page)
    assert shown is not None
    assert shown.group(1) == "3"


def _found(uplift: Interval, currency: str = "EUR") -> CampaignResults:
    group = GroupResult(
        customers=100,
        sent=100,
        converted=10,
        conversion=Interval(0.1, 0.05, 0.15),
        revenue_minor=1000,
        revenue_per_customer=Interval(10.0, 0.0, 20.0),
        points_redeemed=0,
        points_per_customer=Interval(0.0, 0.0, 0.0),
    )
    return CampaignResults(
        campaign_id=1,
        state="ok",
        note="",
        conversion_days=7,
        window_closes_at=None,
        complete=True,
        treated=group,
        control=group,
        conversion_uplift=Interval(0.0, -0.05, 0.05),
        revenue_uplift=uplift,
        points_uplift=Interval(0.0, 0.0, 0.0),
        currency=currency,
    )


def test_the_revenue_uplift_reads_as_the_table_writes_it() -> None:
    def euros(minor: float) -> str:
        return formatting.money(minor, "EUR", "en_GB")

    uplift = Interval(107.0, -157.0, 372.0)
    assert results.money_uplift(uplift, euros) == ("+€1.07", "-€1.57", "€3.72")
    said = results.reading(_found(uplift), money=euros)
    assert "moved by +€1.07 (95% interval -€1.57 to €3.72), within chance." in said
    lower = Interval(-250.0, -400.0, -100.0)
    assert results.money_uplift(lower, euros) == ("-€2.50", "-€4.00", "-€1.00")
    assert "changed by -€2.50 (95% interval -€4.00 to -€1.00)." in results.reading(
        _found(lower), money=euros
    )
    # The API's reading, without a currency, writes the amounts alike.
    assert "moved by +1.07 (95% interval -1.57 to 3.72)" in results.reading(_found(uplift))


@pytest.mark.parametrize(
    ("currency", "said"),
    [
        ("EUR", "moved by +1.07 (95% interval -1.57 to 3.72)"),
        ("JPY", "moved by +107 (95% interval -157 to 372)"),
        ("KWD", "moved by +0.107 (95% interval -0.157 to 0.372)"),
    ],
)
def test_the_apis_reading_writes_amounts_in_the_shops_currency(currency: str, said: str) -> None:
    # given results read in the shop's currency, when the API's reading writes them (no
    # money writer given), then the amounts have that currency's ISO 4217 decimals: ¥107 is
    # no 1.07
    assert said in results.reading(_found(Interval(107.0, -157.0, 372.0), currency))
