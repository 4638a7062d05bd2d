"""A test send and a preview render a real customer's message for staff: a test email carries
no List-Unsubscribe, the unsubscribe link in its body (and in the preview) is an inert sample
whose page says so and changes nothing, and its Message-ID is a proper one of its own."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.rendering import unsubscribe_url
from rapport.customers import service as customers
from tests.campaigns.delivery.factories import make_campaign, make_customer
from tests.campaigns.receivers import ReceivedMail, SmtpSink
from tests.conftest import auth, command
from tests.platform.admin_forms import page_form, post_form, typed

BODY = '<p>Hi {{ first_name }}</p>\n<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
SAMPLE = "http://testserver/u/sample"
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


def _body_link(mail: ReceivedMail) -> str:
    found = re.search(r'href="([^"]+)"', mail.html)
    assert found is not None
    return found.group(1)


def _clicking_changes_nothing(client: TestClient, db: Session, customer_id: str, link: str) -> None:
    """The link's page (opened, and one-click posted as a mail client does) says it is a test
    link, and the customer's consent and its history are as they were."""
    before = len(customers.consent_history(db, customer_id=customer_id))
    path = urlsplit(link).path
    page = client.get(path)
    assert page.status_code == 200
    assert "This is a test link" in page.text
    clicked = client.post(path, content="List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert clicked.status_code == 200
    assert "This is a test link" in clicked.text
    assert "You are unsubscribed" not in clicked.text
    db.expire_all()
    assert customers.has_consent(db, customer_id=customer_id, purpose="marketing_email")
    assert len(customers.consent_history(db, customer_id=customer_id)) == before


def test_a_test_send_carries_no_list_unsubscribe_and_its_link_changes_no_consent(
    db: Session, client: TestClient, api_key: Callable[..., str], smtp_sink: SmtpSink
) -> None:
    # given a customer who takes marketing email and a campaign showing the unsubscribe link
    person = make_customer(db, consents={"marketing_email": True})
    campaign = make_campaign(db, body=BODY)
    path = f"/v1/campaigns/{campaign.id}/test-send"
    body = {"customer_id": person, "to_address": "qa.staff@shop.example"}

    # when staff send themselves a test rendered for that customer
    sent = client.post(path, json=body, headers=command(api_key("write")))

    # then the email offers the mail client no one-click unsubscribe
    assert sent.status_code == 200, sent.text
    [mail] = smtp_sink.messages
    assert mail.to == "qa.staff@shop.example"
    assert mail.message["List-Unsubscribe"] is None
    assert mail.message["List-Unsubscribe-Post"] is None
    # and the body's link is the sample, which changes nothing when clicked
    assert _body_link(mail) == sent.json()["unsubscribe_url"] == SAMPLE
    assert unsubscribe_url(person, "marketing_email") not in mail.data.decode()
    _clicking_changes_nothing(client, db, person, _body_link(mail))


def test_each_test_send_has_a_well_formed_message_id_of_its_own(
    db: Session, client: TestClient, api_key: Callable[..., str], smtp_sink: SmtpSink
) -> None:
    person = make_customer(db)
    path = f"/v1/campaigns/{make_campaign(db).id}/test-send"
    body = {"customer_id": person, "to_address": "qa.staff@shop.example"}
    write = api_key("write")

    # two tests sent within the same second
    for _ in range(2):
        assert client.post(path, json=body, headers=command(write)).status_code == 200

    ids = [str(mail.message["Message-ID"]) for mail in smtp_sink.messages]
    assert len(ids) == 2
    assert ids[0] != ids[1]
    for value in ids:  # one address (no spaces or commas) at the sending domain
        assert re.fullmatch(r"<[^<>@\s,]+@localhost>", value), value


def test_the_admin_preview_and_send_test_show_the_sample_link_not_the_customers_own(
    db: Session, admin: TestClient, api_key: Callable[..., str], smtp_sink: SmtpSink
) -> None:
    person = make_customer(db, consents={"marketing_email": True})
    campaign = make_campaign(db, body=BODY)
    live = unsubscribe_url(person, "marketing_email")

    # the API's preview and the editor's preview show the sample link
    preview = admin.get(
        f"/v1/campaigns/{campaign.id}/preview",
        params={"customer_id": person},
        headers=auth(api_key("read")),
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["unsubscribe_url"] == SAMPLE
    assert live not in preview.text
    page = admin.get(f"/admin/campaigns/{campaign.id}", params={"preview_customer": person})
    assert page.status_code == 200
    assert f"Unsubscribe link: {SAMPLE}" in page.text
    assert live not in page.text

    # the editor's "Send test" form sends an email without List-Unsubscribe, with the sample
    action = f"/admin/campaigns/{campaign.id}/test-send"
    fields = typed(page_form(page.text, action=action), "to_address", "qa.staff@shop.example")
    assert post_form(admin, action, fields).status_code == 303
    [mail] = smtp_sink.messages
    assert mail.message["List-Unsubscribe"] is None
    assert _body_link(mail) == SAMPLE
    _clicking_changes_nothing(admin, db, person, _body_link(mail))
