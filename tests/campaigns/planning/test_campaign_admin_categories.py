"""A local invitation's categories survive the campaign editor saved as shown, a category
whose name holds a comma included (platform.admin.list_text), where the editor split
"Beer, Wine & Spirits" in two and the audience changed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.campaigns.planning import editing
from rapport.campaigns.planning.editing import CampaignSettings
from tests.orders.factories import seed_catalog
from tests.platform.admin_forms import page_form, post_form, typed

COMMA = "Beer, Wine & Spirits"


def test_the_local_invitation_editor_keeps_a_comma_category(admin: TestClient, db: Session) -> None:
    seed_catalog(db)
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Tasting", store_id="st-par-01", radius_km=10, categories=[COMMA, "Wine"]
        ),
    )
    action = f"/admin/campaigns/{campaign.id}"
    fields = page_form(admin.get(action).text, action=action, testid="settings-form")
    assert ("categories", f'["{COMMA}", "Wine"]') in fields
    assert post_form(admin, action, typed(fields, "name", "Tasting 2")).status_code == 303
    db.expire_all()
    saved = editing.get_campaign(db, campaign_id=campaign.id)
    assert (saved.name, saved.categories) == ("Tasting 2", [COMMA, "Wine"])


def test_categories_typed_as_broken_json_are_refused_beside_the_field(
    admin: TestClient, db: Session
) -> None:
    seed_catalog(db)
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Tasting", store_id="st-par-01", radius_km=10, categories=["Wine"]
        ),
    )
    action = f"/admin/campaigns/{campaign.id}"
    fields = page_form(admin.get(action).text, action=action, testid="settings-form")
    answer = post_form(admin, action, typed(fields, "categories", '["Beer, Wine'))
    assert answer.status_code in (303, 422)
    db.expire_all()
    assert editing.get_campaign(db, campaign_id=campaign.id).categories == ["Wine"]
