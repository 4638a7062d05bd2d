"""Templates: the customer's locale with a fallback, a sandbox, escaping in HTML email, clear
errors at save time naming the field, points and tier from loyalty, recommendations only with
personalization consent, and a test send through the campaign's channel."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.rendering import render_message, validate_template
from rapport.campaigns.delivery.sending import send_test
from rapport.platform.errors import InvalidInput, UpstreamFailed
from tests.campaigns.delivery.factories import make_campaign, make_customer, make_endpoint
from tests.campaigns.receivers import SmtpSink, WebhookReceiver


def test_the_customers_locale_is_chosen_with_a_fallback_to_the_first_template(
    db: Session,
) -> None:
    campaign = make_campaign(
        db,
        templates={
            ("email", "en"): ("Hello {{ first_name }}", "<p>Hi</p>"),
            ("email", "fr"): ("Bonjour {{ first_name }}", "<p>Salut</p>"),
        },
    )
    french = make_customer(db, locale="fr-CA", first_name="Léa")
    german = make_customer(db, locale="de", first_name="Jonas")

    assert render_message(db, campaign=campaign, customer_id=french, context={}).subject == (
        "Bonjour Léa"
    )
    assert render_message(db, campaign=campaign, customer_id=german, context={}).subject == (
        "Hello Jonas"
    )
    forced = render_message(db, campaign=campaign, customer_id=german, context={}, locale="fr")
    assert forced.subject == "Bonjour Jonas"


def test_points_tier_and_no_recommendations_without_personalization_consent(
    db: Session,
) -> None:
    campaign = make_campaign(
        db,
        body="{{ points }} points, tier {{ tier }}, {{ recommendations|length }} picks",
        channel="inbox",
    )
    person = make_customer(db, consents={"marketing_push": True})
    rendered = render_message(db, campaign=campaign, customer_id=person, context={})
    assert rendered.body.startswith("0 points, tier ")
    assert rendered.body.endswith("0 picks")
    assert rendered.unsubscribe_url.startswith("http://testserver/u/")


def test_unknown_names_and_syntax_errors_are_refused_at_save_time_naming_the_field() -> None:
    validate_template("Hi {{ first_name }}", "{{ occasion.order_id }} {{ unsubscribe_url }}")
    validate_template("Order {{ order_id }}", "ok", context_names=["order_id"])
    with pytest.raises(InvalidInput) as unknown:
        validate_template("Hi {{ frist_name }}", "body")
    assert unknown.value.field == "subject"
    assert "frist_name" in unknown.value.detail
    with pytest.raises(InvalidInput) as broken:
        validate_template("Hi", "{% if points %}no end")
    assert broken.value.field == "body"
    with pytest.raises(InvalidInput) as empty:
        validate_template("Hi", "  ")
    assert empty.value.field == "body"


def test_the_sandbox_refuses_reaching_into_python(db: Session) -> None:
    campaign = make_campaign(db, body="{{ customer.__class__.__mro__[1].__subclasses__() }}")
    person = make_customer(db)
    with pytest.raises(InvalidInput) as refused:
        render_message(db, campaign=campaign, customer_id=person, context={})
    assert refused.value.field == "template"


def test_a_test_send_goes_through_the_channel_without_a_delivery(
    db: Session, smtp_sink: SmtpSink, webhook_receiver: WebhookReceiver
) -> None:
    person = make_customer(db, first_name="Ada", consents={"marketing_push": True})
    email = make_campaign(db, subject="Sale for {{ first_name }}")
    send_test(db, campaign=email, customer_id=person, to_address="marketer@example.org")
    [mail] = smtp_sink.messages
    assert (mail.to, mail.subject) == ("marketer@example.org", "[Test] Sale for Ada")

    endpoint = make_endpoint(db, url=webhook_receiver.url)
    push = make_campaign(db, channel="webhook", webhook_endpoint_id=endpoint.id, body="Hi")
    send_test(db, campaign=push, customer_id=person, to_address=None)
    [request] = webhook_receiver.requests
    assert request.headers["rapport-delivery-id"].startswith("test-")
    assert request.json()["subject"].startswith("[Test]")


def test_a_test_send_that_would_reach_the_customer_needs_their_consent(
    db: Session, smtp_sink: SmtpSink, webhook_receiver: WebhookReceiver
) -> None:
    """A test to the customer's own address, or with their data to a webhook endpoint, is a
    real contact: refused, naming customer_id, for a customer who has not consented."""
    silent = make_customer(db, consents={"marketing_email": False})
    email = make_campaign(db)
    with pytest.raises(InvalidInput) as refused:
        send_test(db, campaign=email, customer_id=silent, to_address=None)
    assert refused.value.field == "customer_id"
    assert "to_address" in refused.value.detail
    endpoint = make_endpoint(db, url=webhook_receiver.url)
    push = make_campaign(db, channel="webhook", webhook_endpoint_id=endpoint.id, body="Hi")
    with pytest.raises(InvalidInput, match="marketing_push"):
        send_test(db, campaign=push, customer_id=silent, to_address=None)
    assert smtp_sink.messages == []
    assert webhook_receiver.requests == []

    # Their data may still fill in a test sent to the marketer's own address.
    send_test(db, campaign=email, customer_id=silent, to_address="marketer@example.org")
    willing = make_customer(db, consents={"marketing_email": True}, email="ada@example.org")
    send_test(db, campaign=email, customer_id=willing, to_address=None)
    assert [mail.to for mail in smtp_sink.messages] == ["marketer@example.org", "ada@example.org"]


def test_a_test_the_receiving_server_refuses_is_a_502_to_send_again(
    db: Session, webhook_receiver: WebhookReceiver
) -> None:
    person = make_customer(db, consents={"marketing_push": True})
    endpoint = make_endpoint(db, url=webhook_receiver.url)
    push = make_campaign(db, channel="webhook", webhook_endpoint_id=endpoint.id, body="Hi")
    webhook_receiver.responses = [503]
    with pytest.raises(UpstreamFailed, match="send it again") as failed:
        send_test(db, campaign=push, customer_id=person, to_address=None)
    assert failed.value.status == 502
