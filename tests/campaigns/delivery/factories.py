"""Test helpers for deliveries: customers with consents and a time zone, campaigns with
templates, webhook endpoints."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from rapport.campaigns.delivery.policy import update_sending_policy
from rapport.campaigns.models import CHANNELS, Campaign, CampaignTemplate, WebhookEndpoint
from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.platform import clock

_numbers = itertools.count(1)


def make_customer(
    db: Session,
    *,
    consents: dict[str, bool] | None = None,
    first_name: str | None = "Ada",
    time_zone: str | None = None,
    locale: str = "en",
    email: str | None = None,
) -> str:
    n = next(_numbers)
    customer = customers.create_customer(
        db,
        customer=CustomerIn(
            email=email or f"person{n}@example.org",
            first_name=first_name,
            locale=locale,
            time_zone=time_zone,
            consents=consents if consents is not None else {"marketing_email": True},  # type: ignore[arg-type]
        ),
    )
    db.flush()
    return customer.customer_id


def make_campaign(
    db: Session,
    *,
    channel: str = "email",
    purpose: str = "marketing",
    kind: str = "one_off",
    subject: str = "Hello {{ customer.first_name }}",
    body: str = "Hi {{ customer.first_name }}, you have {{ points }} points.",
    webhook_endpoint_id: int | None = None,
    templates: dict[tuple[str, str], tuple[str, str]] | None = None,
    **fields: Any,
) -> Campaign:
    now = clock.now()
    fields.setdefault("name", f"Campaign {next(_numbers)}")
    campaign = Campaign(
        kind=kind,
        purpose=purpose,
        channel=channel,
        webhook_endpoint_id=webhook_endpoint_id,
        status="sending",
        created_at=now,
        updated_at=now,
        **fields,
    )
    db.add(campaign)
    db.flush()
    for (template_channel, locale), (template_subject, template_body) in (
        templates or {(channel, "en"): (subject, body)}
    ).items():
        db.add(
            CampaignTemplate(
                campaign_id=campaign.id,
                channel=template_channel,
                locale=locale,
                subject=template_subject,
                body=template_body,
                updated_at=now,
            )
        )
    db.flush()
    return campaign


def make_endpoint(
    db: Session, *, url: str, secret: str = "whsec-test", max_attempts: int = 3
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        name=f"Gateway {next(_numbers)}",
        url=url,
        secret=secret,
        consent_purpose="marketing_push",
        max_attempts=max_attempts,
        active=True,
        created_at=clock.now(),
    )
    db.add(endpoint)
    db.flush()
    return endpoint


def send_at_any_hour(db: Session) -> None:
    """No quiet hours on any channel (the default 21:00-08:00 would defer the marketing a test
    sends when the suite runs at night). Tests about quiet hours set their own."""
    for channel in CHANNELS:
        update_sending_policy(db, channel=channel, changes={"quiet_start": 0, "quiet_end": 0})
