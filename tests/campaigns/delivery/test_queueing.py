"""Queueing: one delivery per (campaign, recipient, occasion) whatever runs twice; the control
group is held out; each new row starts its history."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.models import Delivery, DeliveryStatus
from tests.campaigns.delivery.factories import make_campaign, make_customer


def test_queueing_twice_adds_each_recipient_once_and_holds_out_the_control_group(
    db: Session,
) -> None:
    campaign = make_campaign(db)
    treated = [make_customer(db) for _ in range(3)]
    control = make_customer(db)
    recipients = [Recipient(customer_id=c) for c in treated] + [
        Recipient(customer_id=control, group="control")
    ]

    assert queue_deliveries(db, campaign=campaign, recipients=recipients) == 4
    # A second run, with a duplicate inside the same batch, adds nothing.
    assert queue_deliveries(db, campaign=campaign, recipients=recipients + recipients[:1]) == 0
    # Another occasion is another delivery; a staff address is a recipient too.
    assert (
        queue_deliveries(
            db,
            campaign=campaign,
            recipients=[
                Recipient(customer_id=treated[0], occasion="order:1", context={"order": "1"}),
                Recipient(customer_id=None, address="ops@example.org"),
            ],
        )
        == 2
    )

    statuses = dict(
        db.execute(
            select(Delivery.recipient_key, Delivery.status).where(
                Delivery.campaign_id == campaign.id, Delivery.occasion == ""
            )
        ).all()
    )
    assert statuses[control] == "held_out"
    assert statuses["staff:ops@example.org"] == "queued"
    assert {statuses[c] for c in treated} == {"queued"}
    history = db.scalar(
        select(func.count())
        .select_from(DeliveryStatus)
        .join(Delivery, Delivery.id == DeliveryStatus.delivery_id)
        .where(Delivery.campaign_id == campaign.id)
    )
    assert history == 6
