"""The sending policy's and the webhook endpoints' admin forms over HTTP: a value refused comes
back beside its field, in words for people, in the form of the channel it concerns, with what
was typed kept, and nothing is saved; the endpoints list names the consent each one needs."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery import webhooks
from rapport.campaigns.delivery.policy import sending_policy, update_sending_policy
from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import WebhookEndpoint
from tests.campaigns.delivery.factories import make_campaign, make_customer
from tests.campaigns.planning.factories import frozen_clock
from tests.campaigns.receivers import SmtpSink
from tests.platform.admin_forms import (
    page_form,
    post_form,
    typed,
)

POLICY = "/admin/deliveries/policy"


def _error(html: str, field: str) -> str | None:
    found = re.search(rf'data-field-error="{field}">([^<]*)<', html)
    return found.group(1) if found else None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cap_messages", "lots", "At most: a whole number of messages from 0 (no cap) to 1,000"),
        ("cap_hours", "0", "Per: a whole number of hours from 1 to 2,160 (90 days)"),
        ("quiet_end", "25", "Until: an hour from 0 to 23"),
        (
            "default_time_zone",
            "Mars/Olympus",
            "Default time zone: a time zone name such as Europe/Paris",
        ),
    ],
)
def test_a_refused_policy_value_is_said_beside_it_in_its_channels_form(
    admin: TestClient, db: Session, field: str, value: str, message: str
) -> None:
    before = sending_policy(db)
    # when the email form is sent with one bad value and another setting changed
    action = f"{POLICY}/email"
    fields = typed(page_form(admin.get(POLICY).text, action=action), field, value)
    other = "quiet_start" if field != "quiet_start" else "cap_hours"
    fields = typed(fields, other, "7")
    answer = post_form(admin, action, fields)

    # then the page comes back with the message beside the field of the email form
    assert answer.status_code == 422
    email = answer.text[answer.text.index('data-testid="policy-email"') :]
    email = email[: email.index("</form>")]
    assert _error(email, field) == message
    assert "Not saved" not in answer.text
    assert "Input should be" not in answer.text
    assert "The email policy was not saved" in answer.text
    # no other channel's form carries a message
    assert answer.text.count("data-field-error=") == 1
    # the email form keeps what was typed, in both fields
    assert re.search(rf'name="{field}" type="(number|text)" value="{value}"', email)
    assert re.search(rf'name="{other}" type="number" value="7"', email)
    # and nothing was saved
    db.expire_all()
    assert sending_policy(db) == before


def test_a_refused_endpoint_keeps_what_was_typed_with_the_message_beside_its_field(
    admin: TestClient, db: Session
) -> None:
    webhooks.create_endpoint(db, name="SMS gateway", url="https://sms.example/hooks")
    page = admin.get("/admin/webhooks").text
    # the list names the consent each endpoint needs, not its code
    listed = page[page.index('data-testid="webhook-endpoints"') :]
    listed = listed[: listed.index("</table>")]
    assert "Marketing push" in listed
    assert "marketing_push" not in listed

    # when an endpoint is added under a name in use, and one with an address that is no URL
    form = page_form(page, action="/admin/webhooks")
    taken = typed(typed(form, "name", "SMS gateway"), "url", "https://other.example/in")
    taken = typed(taken, "consent_purpose", "marketing_email")
    refused = post_form(admin, "/admin/webhooks", taken)
    no_url = post_form(
        admin, "/admin/webhooks", typed(typed(form, "name", "CRM"), "url", "ftp://crm.example")
    )

    # then each comes back beside its field, with what was typed
    assert refused.status_code == 422
    assert _error(refused.text, "name") == (
        "Name: an endpoint is called &#39;SMS gateway&#39; already; choose another name"
    )
    assert 'name="url" type="url" value="https://other.example/in"' in refused.text
    assert re.search(r'<option value="marketing_email" selected>', refused.text)
    assert no_url.status_code == 422
    assert _error(no_url.text, "url") == (
        "URL: An http:// or https:// URL without spaces, such as https://crm.example/hooks"
    )
    assert 'name="name" type="text" value="CRM"' in no_url.text
    # not above the table
    assert no_url.text.index("data-field-error") > no_url.text.index('data-testid="webhook-form"')
    # and nothing was added
    assert db.scalar(select(func.count()).select_from(WebhookEndpoint)) == 1


def test_the_customer_panel_lists_newest_first_by_the_time_it_shows(
    admin: TestClient, db: Session, smtp_sink: SmtpSink
) -> None:
    clock = frozen_clock()  # 12:00 UTC
    update_sending_policy(db, channel="email", changes={"quiet_start": 11, "quiet_end": 13})
    person = make_customer(db)
    early = make_campaign(db, name="Early")
    queue_deliveries(db, campaign=early, recipients=[Recipient(customer_id=person)])
    db.commit()
    dispatch_batch(db, worker="w1")  # deferred to 13:00 by quiet hours
    clock.advance(timedelta(minutes=30))
    update_sending_policy(db, channel="email", changes={"quiet_start": 0, "quiet_end": 0})
    later = make_campaign(db, name="Later")
    queue_deliveries(db, campaign=later, recipients=[Recipient(customer_id=person)])
    db.commit()
    dispatch_batch(db, worker="w1")  # sent at 12:30
    clock.advance(timedelta(minutes=31))
    dispatch_batch(db, worker="w1")  # the early one, sent at 13:01
    panel = admin.get(f"/admin/campaigns/customers/{person}/panel").text
    # queued first but sent last, it is the newest of what the panel shows
    assert panel.index(">Early</a>") < panel.index(">Later</a>")


def test_every_refused_field_is_said_at_once(admin: TestClient, db: Session) -> None:
    """Where the form's bounds and the service's own check (a URL's scheme, a time zone's
    name) each refused a field, only the first group showed; the rest one resubmit later."""
    before = sending_policy(db)
    action = f"{POLICY}/email"
    fields = page_form(admin.get(POLICY).text, action=action)
    for field, value in {
        "cap_messages": "-1",
        "quiet_start": "24",
        "default_time_zone": "Mars/Olympus",
    }.items():
        fields = typed(fields, field, value)
    answer = post_form(admin, action, fields)
    assert answer.status_code == 422
    for field in ("cap_messages", "quiet_start", "default_time_zone"):
        assert _error(answer.text, field), field
    db.expire_all()
    assert sending_policy(db) == before

    form = page_form(admin.get("/admin/webhooks").text, action="/admin/webhooks")
    bad = typed(typed(form, "url", "ftp://x"), "max_attempts", "0")
    refused = post_form(admin, "/admin/webhooks", typed(bad, "name", "CRM"))
    assert refused.status_code == 422
    assert _error(refused.text, "url")
    assert _error(refused.text, "max_attempts")
    assert db.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
