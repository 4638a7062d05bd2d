"""Local invitations: the customers near the store whose purchases match the categories,
each invited once, with the store in the message."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.models import Delivery
from rapport.campaigns.planning import editing, gates, launching
from rapport.campaigns.planning.editing import CampaignSettings
from rapport.customers import service as customers
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform.errors import InvalidInput
from tests.campaigns.planning.factories import make_customer, make_segment, write_template
from tests.orders.factories import CHIANTI, CORKSCREW, seed_catalog

PARIS = (48.857, 2.352)


def _bought(db: Session, customer_id: str, sku: str, price: int) -> None:
    orders.place_order(
        db,
        order=OrderIn.model_validate(
            {
                "customer_id": customer_id,
                "channel": "store",
                "fulfilment": "in_store",
                "store_id": "st-par-01",
                "currency": "EUR",
                "lines": [{"sku": sku, "quantity": 1, "unit_price_minor": price}],
                "subtotal_minor": price,
                "total_minor": price,
                "payments": [{"method": "card", "amount_minor": price}],
            }
        ),
    )


def test_a_local_invitation_reaches_nearby_buyers_of_its_categories(db: Session) -> None:
    seed_catalog(db, stock=20)
    located = {"marketing_email": True, "location": True, "personalization": True}
    paris, lyon = {"home_latitude": 48.87, "home_longitude": 2.36}, (45.757, 4.832)
    nearby_tools = make_customer(db, consents=located, **paris)
    nearby_wine = make_customer(db, consents=located, **paris)
    far_tools = make_customer(db, consents=located, home_latitude=lyon[0], home_longitude=lyon[1])
    # a buyer living nearby who never granted location: their home is not used
    unlocated_tools = make_customer(db, **paris)
    _bought(db, nearby_tools, CORKSCREW, 900)
    _bought(db, nearby_wine, CHIANTI, 1200)
    _bought(db, far_tools, CORKSCREW, 900)
    _bought(db, unlocated_tools, CORKSCREW, 900)

    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Corkscrew workshop",
            store_id="st-par-01",
            radius_km=25,
            categories=["Kitchen"],
        ),
    )
    editing.set_template(
        db,
        campaign_id=campaign.id,
        channel="email",
        locale="en",
        subject="A workshop at {{ store.name }}",
        body="<p>Join us in {{ store.city }}, {{ first_name }}</p>",
    )
    assert launching.launch_campaign(db, campaign_id=campaign.id) == 1
    (delivery,) = db.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id))
    assert delivery.customer_id == nearby_tools
    assert delivery.context["store"]["name"] == "Paris Rivoli"
    assert launching.launch_campaign(db, campaign_id=campaign.id) == 0


def test_a_local_invitation_names_its_store_radius_and_categories(db: Session) -> None:
    seed_catalog(db)
    with pytest.raises(InvalidInput) as refused:
        editing.create_campaign(
            db, settings=CampaignSettings(name="x", store_id="st-par-01", categories=["Kitchen"])
        )
    assert refused.value.field == "radius_km"
    with pytest.raises(InvalidInput) as refused:
        editing.create_campaign(
            db, settings=CampaignSettings(name="x", store_id="st-par-01", radius_km=10)
        )
    assert refused.value.field == "categories"
    with pytest.raises(InvalidInput) as refused:
        editing.create_campaign(
            db,
            settings=CampaignSettings(
                name="x", store_id="web", radius_km=10, categories=["Kitchen"]
            ),
        )
    assert refused.value.field == "store_id"
    # A local invitation may also be narrowed to a segment; the template may use the store.
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="ok",
            store_id="st-par-01",
            radius_km=10,
            categories=["Kitchen"],
            segment_id=make_segment(db),
        ),
    )
    write_template(db, campaign.id)


def _corkscrew_workshop(db: Session) -> int:
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Corkscrew class", store_id="st-par-01", radius_km=25, categories=["Kitchen"]
        ),
    )
    editing.set_template(
        db,
        campaign_id=campaign.id,
        channel="email",
        locale="en",
        subject="A class at {{ store.name }}",
        body="<p>Join us, {{ first_name }}</p>",
    )
    return campaign.id


def test_a_local_invitation_picks_buyers_only_with_their_personalization_grant(
    db: Session,
) -> None:
    seed_catalog(db, stock=20)
    paris = {"home_latitude": 48.87, "home_longitude": 2.36}
    # given two nearby buyers of the category, one of whom never granted personalization
    granted = make_customer(
        db, consents={"marketing_email": True, "location": True, "personalization": True}, **paris
    )
    ungranted = make_customer(db, consents={"marketing_email": True, "location": True}, **paris)
    _bought(db, granted, CORKSCREW, 900)
    _bought(db, ungranted, CORKSCREW, 900)
    # when the invitation is launched, then only the one who grants it is invited
    first = _corkscrew_workshop(db)
    assert launching.launch_campaign(db, campaign_id=first) == 1
    invited = db.scalars(select(Delivery.customer_id).where(Delivery.campaign_id == first))
    assert list(invited) == [granted]
    # and after a grant, the other is invited too
    customers.set_consent(
        db, customer_id=ungranted, purpose="personalization", granted=True, source="app"
    )
    db.commit()
    second = _corkscrew_workshop(db)
    assert launching.launch_campaign(db, campaign_id=second) == 2


def test_a_withdrawal_after_the_launch_stops_a_waiting_invitation(db: Session) -> None:
    seed_catalog(db, stock=20)
    paris = {"home_latitude": 48.87, "home_longitude": 2.36}
    buyer = make_customer(
        db, consents={"marketing_email": True, "location": True, "personalization": True}, **paris
    )
    _bought(db, buyer, CORKSCREW, 900)
    campaign_id = _corkscrew_workshop(db)
    assert launching.launch_campaign(db, campaign_id=campaign_id) == 1
    (delivery,) = db.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))
    campaign = editing.get_campaign(db, campaign_id=campaign_id)
    assert gates.profiling_withdrawn(db, [(delivery.id, campaign, delivery.occasion)]) == {}
    # when they withdraw personalization before it went out
    customers.set_consent(
        db, customer_id=buyer, purpose="personalization", granted=False, source="app"
    )
    db.commit()
    # then the send-time verdict drops it
    assert gates.profiling_withdrawn(db, [(delivery.id, campaign, delivery.occasion)]) == {
        delivery.id: gates.PROFILING_WITHDRAWN
    }
