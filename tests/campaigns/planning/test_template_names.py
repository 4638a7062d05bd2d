"""The retailer's campaigns' templates are checked at save against what their messages get,
as Rapport's own are (8c7f070): ``customer.<name>`` only for the customer's fields, and
``occasion.<name>`` only for the occasion's values (a triggered campaign's event and deadline).
A typo is 422 naming the part and the name, and nothing is stored, where it was saved and
every delivery of it went dead."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.campaigns.delivery import webhooks
from rapport.campaigns.models import Campaign
from rapport.campaigns.planning import editing
from rapport.campaigns.planning.editing import CampaignSettings
from tests.campaigns.planning.factories import make_segment
from tests.conftest import auth, command
from tests.platform.admin_forms import page_form, post_form, typed

TRIGGER = {"event_type": "venue_event", "within_minutes": 60}


def _triggered(db: Session, channel: str = "email") -> int:
    endpoint_id = None
    if channel == "webhook":
        endpoint = webhooks.create_endpoint(db, name="Push", url="https://push.example/hooks")
        endpoint_id = endpoint.endpoint.id
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Match won",
            kind="triggered",
            trigger=TRIGGER,
            channel=channel,  # type: ignore[arg-type]
            webhook_endpoint_id=endpoint_id,
        ),
    )
    return campaign.id


def _stored_one_off(db: Session, body: str) -> Campaign:
    """A one-off campaign whose email body was stored as ``body``, unchecked (as before the
    check refused it)."""
    segment_id = make_segment(db, definition={"conditions": []})
    campaign = editing.create_campaign(
        db, settings=CampaignSettings(name="Autumn", segment_id=segment_id)
    )
    editing.set_template(
        db, campaign_id=campaign.id, channel="email", locale="en", subject="Hi", body="Hi"
    )
    editing.get_templates(db, campaign_id=campaign.id)[0].body = body
    db.commit()
    return campaign


@pytest.mark.parametrize(
    ("channel", "part", "source", "named"),
    [
        ("email", "body", "<p>Hi {{ customer.nosuch }}</p>", "customer.nosuch"),
        ("email", "subject", "{{ customer['firstname'] }}", "customer.firstname"),
        ("webhook", "body", '{"who": "{{ customer.nosuch }}"}', "customer.nosuch"),
        ("email", "body", "{{ occasion.venue }}", "venue"),
        ("inbox", "body", "{{ occasion.get('evnt') }}", "evnt"),
    ],
)
def test_a_shops_triggered_template_naming_what_its_messages_lack_is_refused(
    channel: str,
    part: str,
    source: str,
    named: str,
    client: TestClient,
    db: Session,
    api_key: Callable[..., str],
) -> None:
    # given the shop's own triggered campaign
    campaign_id = _triggered(db, channel)
    parts = {"subject": "Hello", "body": "Hi", part: source}
    # when a template naming a customer field or an occasion value that does not exist is saved
    refused = client.put(
        f"/v1/campaigns/{campaign_id}/templates/{channel}/en",
        json=parts,
        headers=auth(api_key("write")),
    )
    # then 422 names the part and the unknown name, says what there is, and stores nothing
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["field"] == part
    assert named in problem["detail"]
    assert "its occasion gives event, expires_at" in problem["detail"]
    assert "customer.first_name, customer.last_name, customer.locale" in problem["detail"]
    assert editing.get_templates(db, campaign_id=campaign_id) == []


def test_what_a_triggered_campaigns_messages_get_is_taken(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    campaign_id = _triggered(db)
    body = (
        "{{ customer.first_name }} {{ customer.last_name }} {{ customer.get('locale') }}"
        " {{ event.venue }} {{ event.any_property_the_event_carries }} {{ occasion.event.name }}"
        " {{ expires_at }} {{ occasion['expires_at'] }} {{ points }} {{ unsubscribe_url }}"
    )
    saved = client.put(
        f"/v1/campaigns/{campaign_id}/templates/email/en",
        json={"subject": "{{ first_name }}", "body": body},
        headers=auth(api_key("write")),
    )
    assert saved.status_code == 200, saved.text


def test_a_one_off_campaign_refuses_a_customer_typo_and_an_occasion_it_never_gets(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    campaign = editing.create_campaign(db, settings=CampaignSettings(name="Spring"))
    path = f"/v1/campaigns/{campaign.id}/templates/email/en"
    write = auth(api_key("write"))
    typo = client.put(
        path, json={"subject": "{{ customer.frist_name }}", "body": "x"}, headers=write
    )
    assert (typo.status_code, typo.json()["field"]) == (422, "subject"), typo.text
    assert "customer.frist_name" in typo.json()["detail"]
    event = client.put(path, json={"subject": "Hi", "body": "{{ occasion.event }}"}, headers=write)
    assert (event.status_code, event.json()["field"]) == (422, "body"), event.text
    assert "its occasion gives nothing" in event.json()["detail"]


def test_the_admin_form_says_the_same_beside_the_body(admin: TestClient, db: Session) -> None:
    campaign_id = _triggered(db)
    action = f"/admin/campaigns/{campaign_id}/templates"
    form = page_form(admin.get(f"/admin/campaigns/{campaign_id}").text, action=action)
    fields = typed(typed(form, "subject", "Hello"), "body", "<p>{{ customer.nosuch }}</p>")
    refused = post_form(admin, action, fields)
    assert refused.status_code == 422
    said = re.search(r'data-field-error="body">([^<]*)<', refused.text)
    assert said is not None
    assert unescape(said.group(1)).startswith(
        "The body uses customer.nosuch, which this campaign's messages do not get; its occasion"
        " gives event, expires_at"
    )
    assert editing.get_templates(db, campaign_id=campaign_id) == []


def test_a_template_stored_before_the_check_is_named_by_template_problem(db: Session) -> None:
    # given a triggered campaign whose message was stored before templates were checked so
    campaign_id = _triggered(db)
    editing.set_template(
        db, campaign_id=campaign_id, channel="email", locale="en", subject="Hi", body="Hi"
    )
    campaign = editing.get_campaign(db, campaign_id=campaign_id)
    assert editing.template_problem(db, campaign) is None
    stored = editing.get_templates(db, campaign_id=campaign_id)[0]
    stored.body = "<p>{{ customer.nosuch }}</p>"
    db.commit()
    # when the launch's checks ask, then the problem names the locale, the part and the name
    problem = editing.template_problem(db, campaign)
    assert problem is not None
    assert problem.field == "templates.email.en.body"
    assert problem.detail.startswith("The email message in 'en': The body uses customer.nosuch")


def test_a_campaign_whose_stored_template_names_an_unknown_field_is_not_launched(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given a one-off campaign whose message was stored before templates were checked so
    campaign = _stored_one_off(db, "<p>{{ customer.nosuch }}</p>")
    # when it is launched
    write = auth(api_key("write"))
    launched = client.post(f"/v1/campaigns/{campaign.id}/launch", headers=command(write))
    # then the launch is refused naming the message, and nothing was queued
    assert launched.status_code == 422, launched.text
    assert launched.json()["field"] == "templates.email.en.body"
    assert "customer.nosuch" in launched.json()["detail"]
    assert editing.get_campaign(db, campaign_id=campaign.id).status == "draft"


# An unknown field reached through an alias, |attr, a macro or an item of the recommendations:
# each was saved and launched, and every delivery then went dead ("'dict object' has no
# attribute 'email'"), where ``customer.email`` itself was refused.
ALIASED = [
    ("{% set c = customer %}{{ c.email }}", "customer.email"),
    ("{% with c = customer %}{{ c.phone }}{% endwith %}", "customer.phone"),
    ("{{ customer|attr('email') }}", "customer.email"),
    ("{% macro m(x) %}{{ x.email }}{% endmacro %}{{ m(customer) }}", "customer.email"),
    ("{% set o = occasion %}{{ o.order_id }}", "occasion.order_id"),
    ("{{ occasion|attr('order_id') }}", "occasion.order_id"),
    ("{% for r in recommendations %}{{ r.nosuch }}{% endfor %}", "recommendation.nosuch"),
    ("{{ recommendations[0].nosuch }}", "recommendation.nosuch"),
]


@pytest.mark.parametrize(("body", "named"), ALIASED)
def test_an_unknown_field_reached_through_an_alias_is_refused_at_save(
    body: str, named: str, client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given the shop's one-off campaign
    campaign = editing.create_campaign(db, settings=CampaignSettings(name="Spring"))
    # when a body reaching a field no message gets by another route is saved
    refused = client.put(
        f"/v1/campaigns/{campaign.id}/templates/email/en",
        json={"subject": "Hi", "body": body},
        headers=auth(api_key("write")),
    )
    # then 422 names the part and the unknown name, and nothing is stored
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["field"] == "body"
    assert f"The body uses {named}, which templates do not get" in refused.json()["detail"]
    assert editing.get_templates(db, campaign_id=campaign.id) == []


@pytest.mark.parametrize(("body", "named"), ALIASED)
def test_a_stored_template_reaching_an_unknown_field_through_an_alias_is_not_launched(
    body: str, named: str, client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given a one-off campaign whose message was stored before templates were checked so
    campaign = _stored_one_off(db, body)
    # when it is launched
    launched = client.post(
        f"/v1/campaigns/{campaign.id}/launch", headers=command(auth(api_key("write")))
    )
    # then the launch is refused naming the message, the part and the name; nothing is queued
    assert launched.status_code == 422, launched.text
    assert launched.json()["field"] == "templates.email.en.body"
    assert named in launched.json()["detail"]
    assert editing.get_campaign(db, campaign_id=campaign.id).status == "draft"


def test_aliases_of_what_messages_get_are_saved(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    campaign = editing.create_campaign(db, settings=CampaignSettings(name="Spring"))
    body = (
        "{% set c = customer %}{{ c.first_name }} {{ c['locale'] }}"
        "{% macro m(x) %}{{ x.last_name }}{% endmacro %}{{ m(customer) }}"
        "{% for r in recommendations %}{{ r.name }} {{ r['sku'] }}{% endfor %}"
        "{{ recommendations|map(attribute='price_minor')|sum }}"
    )
    saved = client.put(
        f"/v1/campaigns/{campaign.id}/templates/email/en",
        json={"subject": "Hi", "body": body},
        headers=auth(api_key("write")),
    )
    assert saved.status_code == 200, saved.text
