"""Announcements ask the consent gate: deliveries only for members who granted a marketing
channel (and on that channel), none for an erased member, a merged member's to the profile
they joined."""

from __future__ import annotations

from datetime import timedelta

from rapport.customers import service as customers
from rapport.flows import privacy
from rapport.loyalty.membership import announcements
from rapport.loyalty.models import TierStanding
from rapport.platform import clock
from tests.loyalty.factories import make_customer


def _gold(db, customer_id: str) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    db.add(
        TierStanding(
            customer_id=customer_id,
            tier_id="gold",
            since=now,
            review_at=now + timedelta(days=365),
            qualifying_value=0,
            updated_at=now,
        )
    )
    db.commit()


def test_gold_announcement_reaches_consenting_members_on_their_channel(db) -> None:
    # given Gold members: e-mail consent, push only, no consent, erased after consenting,
    # and one merged into a consenting customer who is not Gold
    by_email = make_customer(db, consents={"marketing_email": True, "marketing_push": True})
    by_push = make_customer(db, consents={"marketing_push": True})
    silent = make_customer(db)
    refused = make_customer(db, consents={"marketing_email": False})
    erased = make_customer(db, consents={"marketing_email": True})
    merged = make_customer(db)
    survivor = make_customer(db, consents={"marketing_email": True})
    for member in (by_email, by_push, silent, refused, erased, merged):
        _gold(db, member)
    privacy.erase_customer(db, customer_id=erased, requested_by="dpo")
    customers.merge_customers(
        db, source_customer_id=merged, target_customer_id=survivor, reason="same", actor="t"
    )
    # when an announcement goes to Gold members
    announcement, _ = announcements.create_announcement(
        db,
        kind="early_access",
        title="Gold preview",
        body="Shop the sale a day early.",
        audience="tier:gold",
        created_by="ops",
    )
    queued = announcements.deliver_announcement(db, announcement_id=announcement.id)
    # then only consenting live members have it, each on a channel they granted
    deliveries = {
        d.customer_id: d.channel
        for d in announcements.deliveries(db, announcement_id=announcement.id)
    }
    assert deliveries == {by_email: "email", by_push: "push", survivor: "email"}
    assert queued == 3
