"""The campaign editor's refusals keep what was typed: a message whose template is refused,
or a time to send in the past, comes back in its own form as typed with the reason beside
the field (422); Cancel asks first on a page of its own; a launched campaign's messages
show read-only."""

from __future__ import annotations

import re
from html import unescape

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.campaigns.planning import editing, launching
from rapport.campaigns.planning.editing import CampaignSettings
from tests.campaigns.planning.factories import make_customer, make_segment, write_template
from tests.orders.factories import seed_catalog
from tests.platform.admin_forms import page_form, post_form, said_after, typed


def _said(html: str, field: str) -> str:
    found = re.search(rf'data-field-error="{field}">([^<]*)<', html)
    assert found is not None, f"nothing said beside {field}"
    return unescape(found.group(1))


def _draft(db: Session) -> int:
    campaign = editing.create_campaign(
        db, settings=CampaignSettings(name="Spring", segment_id=make_segment(db))
    )
    return campaign.id


def test_a_refused_new_message_comes_back_as_typed(admin: TestClient, db: Session) -> None:
    campaign_id = _draft(db)
    action = f"/admin/campaigns/{campaign_id}/templates"
    form = page_form(admin.get(f"/admin/campaigns/{campaign_id}").text, action=action)
    fields = typed(typed(form, "subject", "Hi {{ firstname }}"), "body", "<p>Spring is here</p>")
    refused = post_form(admin, action, fields)
    assert refused.status_code == 422
    assert "firstname" in _said(refused.text, "subject")
    again = page_form(refused.text, action=action, testid="new-template")
    assert ("subject", "Hi {{ firstname }}") in again
    assert ("body", "<p>Spring is here</p>") in again
    assert editing.get_templates(db, campaign_id=campaign_id) == []

    fields = typed(fields, "subject", "Hi {{ first_name }}")
    broken = post_form(admin, action, typed(fields, "body", "{% if tier %}Gold{% endif %"))
    assert broken.status_code == 422
    assert _said(broken.text, "body")
    again = page_form(broken.text, action=action, testid="new-template")
    assert ("body", "{% if tier %}Gold{% endif %") in again
    # mended, the same form saves it
    saved = post_form(admin, action, fields)
    assert saved.status_code == 303
    assert said_after(admin, saved) == "Message for email (en) saved"


def test_a_refused_edit_keeps_the_edit_not_the_stored_body(admin: TestClient, db: Session) -> None:
    campaign_id = _draft(db)
    write_template(db, campaign_id)
    action = f"/admin/campaigns/{campaign_id}/templates"
    form = page_form(
        admin.get(f"/admin/campaigns/{campaign_id}").text, action=action, testid="template-email-en"
    )
    refused = post_form(admin, action, typed(form, "body", "<p>{{ frist_name }}</p>"))
    assert refused.status_code == 422
    assert "frist_name" in _said(refused.text, "body")
    again = page_form(refused.text, action=action, testid="template-email-en")
    assert ("body", "<p>{{ frist_name }}</p>") in again
    db.expire_all()
    [stored] = editing.get_templates(db, campaign_id=campaign_id)
    assert stored.body == "<p>Hello {{ first_name }}</p>"


def test_a_time_in_the_past_comes_back_as_typed(admin: TestClient, db: Session) -> None:
    campaign_id = _draft(db)
    make_customer(db)
    write_template(db, campaign_id)
    action = f"/admin/campaigns/{campaign_id}/schedule"
    form = page_form(admin.get(f"/admin/campaigns/{campaign_id}").text, action=action)
    refused = post_form(admin, action, typed(form, "scheduled_at", "2001-02-03T04:05"))
    assert refused.status_code == 422
    assert _said(refused.text, "scheduled_at") == "The time to send must be in the future"
    assert ("scheduled_at", "2001-02-03T04:05") in page_form(refused.text, action=action)
    db.expire_all()
    assert editing.get_campaign(db, campaign_id=campaign_id).status == "draft"


def test_cancel_asks_first_on_a_page_of_its_own(admin: TestClient, db: Session) -> None:
    campaign_id = _draft(db)
    editor = admin.get(f"/admin/campaigns/{campaign_id}").text
    action = f"/admin/campaigns/{campaign_id}/cancel"
    assert f'href="{action}"' in editor
    assert f'action="{action}"' not in editor  # one click on the editor cancels nothing
    confirm = admin.get(action)
    assert confirm.status_code == 200
    assert "final" in confirm.text
    assert editing.get_campaign(db, campaign_id=campaign_id).status == "draft"
    answer = post_form(admin, action, page_form(confirm.text, action=action))
    assert said_after(admin, answer) == "Campaign cancelled"
    db.expire_all()
    assert editing.get_campaign(db, campaign_id=campaign_id).status == "cancelled"
    assert 'data-testid="not-cancellable"' in admin.get(action).text


def test_a_launched_campaigns_messages_show_read_only(admin: TestClient, db: Session) -> None:
    campaign_id = _draft(db)
    make_customer(db)
    write_template(db, campaign_id)
    action = f"/admin/campaigns/{campaign_id}/templates"
    form = page_form(
        admin.get(f"/admin/campaigns/{campaign_id}").text, action=action, testid="template-email-en"
    )
    launching.launch_campaign(db, campaign_id=campaign_id)
    page = admin.get(f"/admin/campaigns/{campaign_id}").text
    assert 'data-testid="messages-fixed"' in page
    assert f'action="{action}"' not in page
    assert "Hello {{ first_name }}" in unescape(page)
    # a form left open from before the launch changes nothing
    refused = post_form(admin, action, typed(form, "body", "<p>Changed</p>"))
    assert refused.status_code == 409
    assert 'data-testid="messages-fixed"' in refused.text
    db.expire_all()
    [stored] = editing.get_templates(db, campaign_id=campaign_id)
    assert stored.body == "<p>Hello {{ first_name }}</p>"


def test_refused_settings_come_back_as_typed_each_beside_its_field(
    admin: TestClient, db: Session
) -> None:
    """The settings form keeps what was typed on a refusal (422), every refused field said
    beside it in words, the form's bounds and the service's rules alike."""
    seed_catalog(db)
    campaign_id = _draft(db)
    action = f"/admin/campaigns/{campaign_id}"
    form = page_form(admin.get(action).text, action=action, testid="settings-form")
    fields = typed(typed(form, "name", "Spring promo (typed)"), "conversion_days", "0")
    fields = typed(typed(fields, "radius_km", "7.5"), "categories", "Wine, Kitchen/Tools")
    refused = post_form(admin, action, typed(fields, "control_percent", "150"))
    assert refused.status_code == 422
    said = {
        "conversion_days": "Conversion window: give a whole number of days from 1 to 90",
        "control_percent": "Control group: give a share from 0 to 90 %",
    }
    for field, words in said.items():
        assert _said(refused.text, field) == words
    assert "Input should" not in refused.text
    again = page_form(refused.text, action=action, testid="settings-form")
    for name, value in [
        ("name", "Spring promo (typed)"),
        ("conversion_days", "0"),
        ("control_percent", "150"),
        ("radius_km", "7.5"),
        ("categories", "Wine, Kitchen/Tools"),
    ]:
        assert (name, value) in again
    # the service's own rule (a radius needs its store) is said beside its field too
    fields = typed(typed(again, "conversion_days", "7"), "control_percent", "10")
    no_store = post_form(admin, action, fields)
    assert no_store.status_code == 422
    assert _said(no_store.text, "store_id") == "A radius needs the store it is around"
    assert ("name", "Spring promo (typed)") in page_form(
        no_store.text, action=action, testid="settings-form"
    )
    db.expire_all()
    stored = editing.get_campaign(db, campaign_id=campaign_id)
    assert (stored.name, stored.conversion_days, stored.control_percent) == ("Spring", 7, 0)
