"""The admin page for webhook subscriptions, its forms submitted as a browser would: adding one
shows its secret once; the edit form changes the event types and the active flag it shows,
saving it untouched changes nothing, and a save that does not carry a setting leaves it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.models import WebhookSubscription
from rapport.campaigns.subscriptions import managing
from tests.platform.admin_forms import (
    csrf_token,
    page_form,
    post_form,
    ticked,
    typed,
)

PAGE = "/admin/webhooks/subscriptions"


def test_an_admin_adds_and_edits_a_subscription(admin: TestClient, db: Session) -> None:
    form = page_form(admin.get(PAGE).text, action=PAGE)
    form = typed(typed(form, "name", "CRM"), "url", "https://hooks.shop-crm.test/rapport")
    # without an event type the form is refused, saying why
    refused = post_form(admin, PAGE, form)
    assert refused.status_code == 422
    assert "at least one event type" in refused.text
    # with two ticked it adds the subscription and shows its secret on that answer only
    added = post_form(
        admin,
        PAGE,
        [*form, ("type_points_earned", "true"), ("type_customer_erased", "true")],
    )
    assert added.status_code == 200
    secret = re.search(r'data-testid="subscription-secret">(whsec_[^<]+)<', added.text)
    assert secret is not None
    assert secret.group(1) not in admin.get(PAGE).text
    subscription = db.scalars(
        select(WebhookSubscription).order_by(WebhookSubscription.id.desc())
    ).first()
    assert subscription is not None
    assert subscription.event_types == ["points_earned", "customer_erased"]
    edit = f"{PAGE}/{subscription.id}"
    # saved untouched, the edit form changes nothing
    untouched = page_form(admin.get(edit).text, action=edit)
    assert post_form(admin, edit, untouched).status_code == 303
    db.refresh(subscription)
    assert (subscription.event_types, subscription.active) == (
        ["points_earned", "customer_erased"],
        True,
    )
    # unticking one type and ticking another changes just those
    changed = ticked(ticked(untouched, "type_points_earned", False), "type_tier_changed", True)
    post_form(admin, edit, changed)
    db.refresh(subscription)
    assert subscription.event_types == ["tier_changed", "customer_erased"]
    assert subscription.active is True
    # a save that carries only the active flag leaves the event types as they were
    post_form(admin, edit, [("csrf_token", csrf_token(admin.get(edit).text)), ("active", "false")])
    db.refresh(subscription)
    assert subscription.active is False
    assert subscription.event_types == ["tier_changed", "customer_erased"]
    # deleting it takes it off the list (where it was, by its URL and edit link)
    listed = admin.get(PAGE).text
    assert "hooks.shop-crm.test" in listed
    assert f'href="{edit}"' in listed
    delete = f"{edit}/delete"
    post_form(admin, delete, page_form(admin.get(edit).text, action=delete))
    # (not its name: a page's random CSRF token may spell "CRM")
    listed = admin.get(PAGE).text
    assert "hooks.shop-crm.test" not in listed
    assert f'href="{edit}"' not in listed


def _said(html: str, field: str) -> str | None:
    found = re.search(rf'data-field-error="{field}">([^<]*)<', html)
    return found.group(1) if found else None


def test_a_refused_subscription_keeps_what_was_typed_with_the_message_beside_it(
    admin: TestClient, db: Session
) -> None:
    managing.create_subscription(
        db, name="CRM", url="https://crm.example/hooks", event_types=["points_earned"]
    )
    form = page_form(admin.get(PAGE).text, action=PAGE)
    form = typed(typed(form, "name", "CRM"), "url", "https://other.example/in")
    form = typed(form, "max_attempts", "9")
    refused = post_form(admin, PAGE, [*form, ("type_tier_changed", "true")])
    assert refused.status_code == 422
    said = _said(refused.text, "name")
    assert said is not None
    assert "is taken" in said
    assert 'name="name" type="text" value="CRM"' in refused.text
    assert 'name="url" type="url" value="https://other.example/in"' in refused.text
    assert 'name="max_attempts" type="number" value="9"' in refused.text
    assert 'name="type_tier_changed" value="true" checked' in refused.text
    assert 'name="type_points_earned" value="true">' in refused.text
    # beside the field, below the list, not only above the page
    assert refused.text.index("data-field-error") > refused.text.index(
        'data-testid="subscription-form"'
    )
    # an address with a space is refused beside the URL
    spaced_form = typed(typed(form, "name", "ERP"), "url", "http://x y.example/")
    spaced = post_form(admin, PAGE, [*spaced_form, ("type_tier_changed", "true")])
    assert spaced.status_code == 422
    assert "without spaces" in (_said(spaced.text, "url") or "")
    assert len(managing.list_subscriptions(db)) == 1


def test_a_subscription_endpoint_needs_no_marketing_consent_on_the_endpoint_pages(
    admin: TestClient, db: Session
) -> None:
    created = managing.create_subscription(
        db, name="CRM", url="https://crm.example/hooks", event_types=["points_earned"]
    )
    listed = admin.get("/admin/webhooks").text
    cell = re.search(r'data-testid="endpoint-consent">([^<]*)<', listed)
    assert cell is not None
    assert cell.group(1) == "none: an event subscription (purpose service)"
    detail = admin.get(f"/admin/webhooks/{created.endpoint.id}").text
    assert "Marketing push" not in detail
    assert "none: an event subscription (purpose service)" in detail


def test_every_refused_field_is_said_at_once(admin: TestClient, db: Session) -> None:
    # given a subscription named "CRM sync"
    managing.create_subscription(
        db, name="CRM sync", url="https://crm.example/hooks", event_types=["points_earned"]
    )
    # when the form is sent with that name, an address with a space and no tries
    form = page_form(admin.get(PAGE).text, action=PAGE)
    form = typed(typed(form, "name", "CRM sync"), "url", "http://x y.example/")
    form = typed(form, "max_attempts", "0")
    refused = post_form(admin, PAGE, [*form, ("type_tier_changed", "true")])
    # then each of the three is said beside its field, on the one answer
    assert refused.status_code == 422
    assert "is taken" in (_said(refused.text, "name") or "")
    assert "without spaces" in (_said(refused.text, "url") or "")
    assert "from 1 to 20" in (_said(refused.text, "max_attempts") or "")
    assert _said(refused.text, "event_types") is None
    # with what was typed and ticked kept, and nothing added
    assert 'name="url" type="url" value="http://x y.example/"' in refused.text
    assert 'name="max_attempts" type="number" value="0"' in refused.text
    assert 'name="type_tier_changed" value="true" checked' in refused.text
    assert len(managing.list_subscriptions(db)) == 1
    # and with nothing ticked and tries that are no number, those two are said as well
    worse = typed(form, "max_attempts", "six")
    all_four = post_form(admin, PAGE, worse)
    assert all_four.status_code == 422
    fields = ["name", "url", "max_attempts", "event_types"]
    assert [field for field in fields if _said(all_four.text, field)] == fields
    assert len(managing.list_subscriptions(db)) == 1
