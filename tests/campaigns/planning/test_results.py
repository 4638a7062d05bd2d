"""A campaign's results from real orders and redemptions: conversion, revenue and points per
customer in each group's window, the uplift and its interval, and the plain "not enough
customers in the control group" state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.models import Delivery
from rapport.campaigns.planning import editing, launching
from rapport.campaigns.planning.editing import CampaignSettings
from rapport.campaigns.planning.results import (
    campaign_results,
    difference_of_means,
    difference_of_proportions,
    reading,
)
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from tests.campaigns.planning.factories import (
    frozen_clock,
    make_customer,
    make_segment,
    write_template,
)
from tests.orders.factories import CHIANTI, seed_catalog


def _order(db: Session, customer_id: str, quantity: int = 1) -> None:
    total = 1200 * quantity
    orders.place_order(
        db,
        order=OrderIn.model_validate(
            {
                "customer_id": customer_id,
                "channel": "web",
                "fulfilment": "ship",
                "currency": "EUR",
                "lines": [{"sku": CHIANTI, "quantity": quantity, "unit_price_minor": 1200}],
                "subtotal_minor": total,
                "total_minor": total,
                "payments": [{"method": "card", "amount_minor": total}],
            }
        ),
    )


def test_results_match_a_hand_computed_case(db: Session) -> None:
    clock = frozen_clock()
    seed_catalog(db, stock=50)
    people = [make_customer(db) for _ in range(14)]
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Hand", segment_id=make_segment(db), control_percent=50, conversion_days=7
        ),
    )
    write_template(db, campaign.id)
    loyalty.earn(db, customer_id=people[0], points=500, reason="welcome")
    _order(db, people[1])  # before the campaign: does not count
    clock.advance(timedelta(hours=1))
    launching.launch_campaign(db, campaign_id=campaign.id)
    groups = {
        str(customer_id): group
        for customer_id, group in db.execute(
            select(Delivery.customer_id, Delivery.grp).where(Delivery.campaign_id == campaign.id)
        )
    }
    treated = sorted(c for c, g in groups.items() if g == "treated")
    control = sorted(c for c, g in groups.items() if g == "control")
    assert len(treated) >= 2
    assert len(control) >= 2

    clock.advance(timedelta(days=1))
    _order(db, treated[0], quantity=2)  # 2400
    _order(db, treated[0])  # 1200 more; still one converted customer
    _order(db, treated[1])  # 1200
    _order(db, control[0])  # 1200
    if people[0] in treated or people[0] in control:
        loyalty.redeem(db, customer_id=people[0], points=200, reason="reward")
    clock.advance(timedelta(days=7))
    _order(db, control[1])  # after the window: does not count

    found = campaign_results(db, campaign_id=campaign.id, min_control=2)

    assert found.state == "ok"
    assert found.complete
    assert found.treated.customers == len(treated)
    assert found.control.customers == len(control)
    assert found.treated.converted == 2
    assert found.control.converted == 1
    assert found.treated.revenue_minor == 4800
    assert found.control.revenue_minor == 1200
    assert found.treated.conversion.value == pytest.approx(2 / len(treated))
    assert found.treated.revenue_per_customer.value == pytest.approx(4800 / len(treated))
    # one order among zeros: the t interval would dip below zero; a customer's spend cannot
    assert found.control.revenue_per_customer.low == 0.0
    assert found.control.revenue_per_customer.high is not None
    assert found.control.revenue_per_customer.high > 1200 / len(control)
    expected = difference_of_proportions((2, len(treated)), (1, len(control)))
    assert found.conversion_uplift == expected
    known = 2 / len(treated) - 1 / len(control)
    assert found.conversion_uplift.low is not None
    assert found.conversion_uplift.high is not None
    assert found.conversion_uplift.low <= known <= found.conversion_uplift.high
    spend_t = [3600.0, 1200.0] + [0.0] * (len(treated) - 2)
    spend_c = [1200.0] + [0.0] * (len(control) - 1)
    assert found.revenue_uplift.value == pytest.approx(difference_of_means(spend_t, spend_c).value)
    assert found.revenue_uplift.low == pytest.approx(difference_of_means(spend_t, spend_c).low)
    redeemed_by = 200 if people[0] in treated else 0
    assert found.treated.points_redeemed == redeemed_by
    assert found.control.points_redeemed == (200 if people[0] in control else 0)
    assert "conversion" in reading(found).lower()


def test_without_enough_control_customers_the_results_say_so(db: Session) -> None:
    frozen_clock()
    for _ in range(3):
        make_customer(db)
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(name="Small", segment_id=make_segment(db), control_percent=30),
    )
    write_template(db, campaign.id)
    assert campaign_results(db, campaign_id=campaign.id).state == "not_launched"
    launching.launch_campaign(db, campaign_id=campaign.id)
    found = campaign_results(db, campaign_id=campaign.id)
    assert found.state == "too_few_control"
    assert "Not enough customers in the control group" in found.note
    assert found.conversion_uplift.value is None
    assert reading(found) == found.note
    assert not found.complete  # the window is still open

    none = editing.create_campaign(
        db, settings=CampaignSettings(name="All in", segment_id=make_segment(db))
    )
    write_template(db, none.id)
    launching.launch_campaign(db, campaign_id=none.id)
    assert campaign_results(db, campaign_id=none.id).state == "no_control"
