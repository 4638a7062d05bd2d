"""CX-target alerts to staff: ``score_below_target`` (feedback, raised at most once a day per
target) becomes a staff message to the addresses in ``RAPPORT_CX_ALERT_EMAILS`` (every admin
user when it is empty), and, when ``RAPPORT_CX_ALERT_WEBHOOK`` names an active webhook
endpoint, one webhook delivery to it (a chat or paging system). One delivery per address,
target and day, whatever runs twice. The delivery keeps the feedback pages' path
(``admin_path``); the address (``occasion.admin_url``) is built when the alert is sent, under
``RAPPORT_PUBLIC_BASE_URL`` as it is then.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.models import WebhookEndpoint
from rapport.campaigns.producers.messages import CX_ALERT, CX_ALERT_WEBHOOK, system_campaign
from rapport.events.service import LoggedEvent
from rapport.platform import clock
from rapport.platform.models import AdminUser
from rapport.platform.settings import get_settings

log = logging.getLogger(__name__)


def alert_addresses(db: Session) -> list[str]:
    """The configured alert addresses, else every admin user's email."""
    configured = [a.strip() for a in get_settings().cx_alert_emails.split(",") if a.strip()]
    if configured:
        return sorted(set(configured))
    return list(db.scalars(select(AdminUser.email).order_by(AdminUser.email)))


def on_score_below_target(db: Session, event: LoggedEvent) -> None:
    props = event.properties or {}
    kind = str(props.get("kind") or "")
    scope = str(props.get("scope") or "all")
    scope_value = str(props.get("scope_value") or "")
    day = clock.as_utc(event.occurred_at).date().isoformat()
    context = {
        "kind": kind,
        "scope": scope,
        "scope_value": scope_value,
        "scope_label": "the whole business" if scope == "all" else f"{scope} {scope_value}",
        "target": props.get("target"),
        "score": props.get("score"),
        "responses": props.get("responses"),
        "day": day,
        # The path only: the dispatcher renders it under RAPPORT_PUBLIC_BASE_URL as it stands
        # when the alert goes out (``occasion.admin_url``, rendering.with_links).
        "admin_path": "/admin/feedback",
    }
    occasion = f"{kind}:{scope}:{scope_value}:{day}"
    queue_deliveries(
        db,
        campaign=system_campaign(db, CX_ALERT),
        recipients=[
            Recipient(customer_id=None, address=address, occasion=occasion, context=context)
            for address in alert_addresses(db)
        ],
    )
    endpoint = _alert_endpoint(db)
    if endpoint is not None:
        queue_deliveries(
            db,
            campaign=system_campaign(db, CX_ALERT_WEBHOOK, webhook_endpoint_id=endpoint.id),
            recipients=[
                Recipient(
                    customer_id=None,
                    address=f"webhook:{endpoint.name}",
                    occasion=occasion,
                    context=context,
                )
            ],
        )


def _alert_endpoint(db: Session) -> WebhookEndpoint | None:
    name = get_settings().cx_alert_webhook.strip()
    if not name:
        return None
    endpoint = db.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.name == name, WebhookEndpoint.active)
    )
    if endpoint is None:
        log.warning("RAPPORT_CX_ALERT_WEBHOOK names no active webhook endpoint: %r", name)
    return endpoint
