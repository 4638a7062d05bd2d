"""The campaign editor keeps the settings it does not change: a campaign with every setting
away from its default, one field changed through the page's own form (as a browser submits
it), every other setting as it was; a section the editor does not show keeps its values."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.campaigns.planning import editing, launching
from rapport.campaigns.planning.editing import CampaignSettings
from tests.campaigns.planning.factories import make_customer, make_segment, write_template
from tests.orders.factories import seed_catalog
from tests.platform.admin_forms import (
    page_form,
    post_form,
    said_after,
    typed,
)

SETTINGS = (
    "name",
    "kind",
    "purpose",
    "channel",
    "segment_id",
    "store_id",
    "radius_km",
    "categories",
    "control_percent",
    "conversion_days",
    "trigger",
)


def _settings(db: Session, campaign_id: int) -> dict[str, object]:
    db.expire_all()
    campaign = editing.get_campaign(db, campaign_id=campaign_id)
    return {name: getattr(campaign, name) for name in SETTINGS}


@pytest.mark.parametrize("field", ["control_percent", "trigger_within_minutes"])
def test_the_triggered_editor_changes_only_the_field_changed(
    admin: TestClient, db: Session, field: str
) -> None:
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Match won",
            kind="triggered",
            purpose="service",
            segment_id=make_segment(db),
            control_percent=15,
            conversion_days=3,
            trigger={
                "event_type": "venue_event",
                "radius_km": 80,
                "within_minutes": 90,
                "filters": {"result": "won", "home": True},
            },
        ),
    )
    before = _settings(db, campaign.id)
    action = f"/admin/campaigns/{campaign.id}"
    fields = page_form(admin.get(action).text, action=action, testid="settings-form")
    new_value = {"name": "Match won!", "control_percent": "25", "trigger_within_minutes": "30"}
    answer = post_form(admin, action, typed(fields, field, new_value[field]))
    assert answer.status_code == 303
    assert said_after(admin, answer) == "Campaign saved"

    after = _settings(db, campaign.id)
    expected = dict(before)
    if field == "trigger_within_minutes":
        expected["trigger"] = {**before["trigger"], "within_minutes": 30}  # type: ignore[dict-item]
    else:
        expected[field] = 25.0 if field == "control_percent" else "Match won!"
    assert after == expected


def test_the_local_invitation_editor_keeps_its_store_and_categories(
    admin: TestClient, db: Session
) -> None:
    seed_catalog(db)
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Workshop",
            store_id="st-par-01",
            radius_km=12.5,
            categories=["Kitchen/Tools", "Wine"],
            conversion_days=30,
        ),
    )
    before = _settings(db, campaign.id)
    action = f"/admin/campaigns/{campaign.id}"
    fields = page_form(admin.get(action).text, action=action, testid="settings-form")
    assert post_form(admin, action, typed(fields, "name", "Workshop 2")).status_code == 303
    assert _settings(db, campaign.id) == {**before, "name": "Workshop 2"}


def test_a_post_that_leaves_settings_out_keeps_them(admin: TestClient, db: Session) -> None:
    campaign = editing.create_campaign(
        db, settings=CampaignSettings(name="Lean", control_percent=30, conversion_days=20)
    )
    before = _settings(db, campaign.id)
    action = f"/admin/campaigns/{campaign.id}"
    csrf = [
        (n, v) for n, v in page_form(admin.get(action).text, action=action) if n == "csrf_token"
    ]
    assert post_form(admin, action, [*csrf, ("name", "Leaner")]).status_code == 303
    assert _settings(db, campaign.id) == {**before, "name": "Leaner"}
    # An invalid value is refused beside its field, in words, and changes nothing.
    answer = post_form(admin, action, [*csrf, ("control_percent", "99")])
    assert answer.status_code == 422
    assert 'data-field-error="control_percent">Control group: give a share' in answer.text
    assert _settings(db, campaign.id) == {**before, "name": "Leaner"}


def test_the_preview_takes_the_shops_customer_number(admin: TestClient, db: Session) -> None:
    """Staff know customers by the shop's number as well; the editor's preview takes it as the
    API does."""
    from rapport.customers import service as customers
    from tests.campaigns.delivery.factories import make_campaign, make_customer

    person = make_customer(db, first_name="Ella")
    customers.add_identity(db, customer_id=person, kind="external_id", value="C0000042")
    campaign = make_campaign(db, subject="Hello {{ customer.first_name }}")
    page = admin.get(f"/admin/campaigns/{campaign.id}?preview_customer=C0000042")
    assert page.status_code == 200
    assert "Hello Ella" in page.text


def test_a_new_campaign_without_a_name_is_said_beside_it_keeping_the_kind(
    admin: TestClient, db: Session
) -> None:
    form = page_form(admin.get("/admin/campaigns").text, action="/admin/campaigns")
    refused = post_form(
        admin, "/admin/campaigns", typed(typed(form, "name", "  "), "kind", "triggered")
    )
    assert refused.status_code == 422
    said = re.search(r'data-field-error="name">([^<]*)<', refused.text)
    assert said is not None
    assert said.group(1) == "Name: give the campaign a name of 1 to 200 characters"
    assert "String should" not in refused.text
    assert '<option value="triggered" selected>' in refused.text
    assert editing.list_campaigns(db, offset=0, limit=10).total == 0
    # corrected, the same form creates it, triggered
    created = post_form(
        admin, "/admin/campaigns", typed(typed(form, "name", "Match day"), "kind", "triggered")
    )
    assert created.status_code == 303
    listed = editing.list_campaigns(db, offset=0, limit=10).campaigns
    assert [(c.name, c.kind) for c in listed] == [("Match day", "triggered")]


def test_a_sent_campaign_with_deliveries_waiting_offers_pause_and_cancel(
    admin: TestClient, db: Session
) -> None:
    make_customer(db)
    campaign = editing.create_campaign(
        db, settings=CampaignSettings(name="Quiet", segment_id=make_segment(db))
    )
    write_template(db, campaign.id)
    launching.launch_campaign(db, campaign_id=campaign.id)
    # as an earlier version left it: sent while its delivery still waits
    stored = editing.get_campaign(db, campaign_id=campaign.id)
    stored.status = "sent"
    db.commit()
    page = admin.get(f"/admin/campaigns/{campaign.id}").text
    assert 'data-testid="pause"' in page
    assert 'data-testid="cancel"' in page
    launching.cancel_campaign(db, campaign_id=campaign.id)
    page = admin.get(f"/admin/campaigns/{campaign.id}").text
    assert 'data-testid="pause"' not in page
    assert 'data-testid="cancel"' not in page
