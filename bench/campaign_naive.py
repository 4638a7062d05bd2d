"""The naive way to send a campaign, for the campaigns bench's ratio: one customer at a time.

For each customer: one query (the customer with their consent for the channel), render the
template (compiled once, in the same Jinja2 sandbox Rapport uses), send it on a fresh
connection (a new SMTP session, or a new HTTP connection with a signed JSON body), record the
delivery as sent and commit, durably, before the next customer. It checks less than Rapport's
dispatcher does (no suppressions, frequency cap or quiet hours, no status history), so the
ratio flatters it, if anything.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import smtplib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import create_engine, text

CUSTOMER_WITH_CONSENT = text(
    "SELECT c.email, c.first_name, c.status, "
    "(SELECT s.granted FROM consents s WHERE s.customer_id = c.customer_id "
    "AND s.purpose = :purpose) AS granted, (SELECT a.balance FROM loyalty_accounts a "
    "WHERE a.customer_id = c.customer_id AND a.kind = 'member') AS points "
    "FROM customers c WHERE c.customer_id = :customer_id"
)
RECORD_SENT = text(
    "INSERT INTO campaign_deliveries (campaign_id, customer_id, recipient_key, occasion, grp, "
    "channel, status, reason, context, attempts, next_attempt_at, claimed_by, queued_at, "
    "sent_at, updated_at) VALUES (:campaign_id, :customer_id, :customer_id, '', 'treated', "
    ":channel, 'sent', '', '{}', 1, now(), NULL, now(), now(), now())"
)


@dataclass(frozen=True)
class NaiveRun:
    sent: int
    skipped: int  # no consent, erased, no address
    seconds: float

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def naive_emails(
    database_url: str,
    *,
    campaign_id: int,
    customer_ids: Sequence[str],
    smtp_port: int,
    subject: str,
    body: str,
) -> NaiveRun:
    environment = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
    subject_template = environment.from_string(subject)
    body_template = environment.from_string(body)
    engine = create_engine(database_url)
    sent = skipped = 0
    began = time.perf_counter()
    try:
        for customer_id in customer_ids:
            with engine.connect() as connection:
                row = connection.execute(
                    CUSTOMER_WITH_CONSENT,
                    {"customer_id": customer_id, "purpose": "marketing_email"},
                ).one_or_none()
                if row is None or not row.granted or row.status != "active" or not row.email:
                    skipped += 1
                    continue
                values = _values(customer_id, row.first_name, row.points)
                message = EmailMessage()
                message["From"] = "Larder & Loom <campaigns@bench.example>"
                message["To"] = row.email
                message["Subject"] = subject_template.render(values)
                message["Date"] = formatdate(usegmt=True)
                message["Message-ID"] = f"<naive-{campaign_id}-{customer_id}@bench.example>"
                message.set_content(body_template.render(values), subtype="html")
                with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
                    smtp.send_message(message)
                connection.execute(
                    RECORD_SENT,
                    {"campaign_id": campaign_id, "customer_id": customer_id, "channel": "email"},
                )
                connection.commit()
                sent += 1
    finally:
        engine.dispose()
    return NaiveRun(sent=sent, skipped=skipped, seconds=time.perf_counter() - began)


def naive_webhooks(
    database_url: str,
    *,
    campaign_id: int,
    customer_ids: Sequence[str],
    port: int,
    secret: str,
    body: str,
    purpose: str,
) -> NaiveRun:
    environment = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
    body_template = environment.from_string(body)
    engine = create_engine(database_url)
    sent = skipped = 0
    began = time.perf_counter()
    try:
        for customer_id in customer_ids:
            with engine.connect() as connection:
                row = connection.execute(
                    CUSTOMER_WITH_CONSENT, {"customer_id": customer_id, "purpose": purpose}
                ).one_or_none()
                if row is None or not row.granted or row.status != "active":
                    skipped += 1
                    continue
                payload = json.dumps(
                    {
                        "delivery_id": f"naive-{campaign_id}-{customer_id}",
                        "customer_id": customer_id,
                        "body": body_template.render(
                            _values(customer_id, row.first_name, row.points)
                        ),
                    }
                ).encode()
                stamp = str(int(time.time()))
                signature = hmac.new(
                    secret.encode(), stamp.encode() + b"." + payload, hashlib.sha256
                ).hexdigest()
                exchange = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    exchange.request(
                        "POST",
                        "/hook",
                        body=payload,
                        headers={
                            "Content-Type": "application/json",
                            "Rapport-Signature": f"t={stamp},v1={signature}",
                        },
                    )
                    answer = exchange.getresponse()
                    answer.read()
                finally:
                    exchange.close()
                if answer.status >= 300:
                    skipped += 1
                    continue
                connection.execute(
                    RECORD_SENT,
                    {"campaign_id": campaign_id, "customer_id": customer_id, "channel": "webhook"},
                )
                connection.commit()
                sent += 1
    finally:
        engine.dispose()
    return NaiveRun(sent=sent, skipped=skipped, seconds=time.perf_counter() - began)


def _values(customer_id: str, first_name: str | None, points: int | None) -> dict[str, Any]:
    return {
        "first_name": first_name or "there",
        "customer": {"first_name": first_name or "there"},
        "points": points or 0,
        "tier": "",
        "unsubscribe_url": f"https://shop.example/unsubscribe/{customer_id}",
        "recommendations": [],
        "occasion": {},
    }
