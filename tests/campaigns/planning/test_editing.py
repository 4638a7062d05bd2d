"""Campaign settings are checked together; system campaigns are created once and keep the
retailer's edits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.campaigns.models import Campaign, CampaignTemplate
from rapport.campaigns.planning import editing
from rapport.campaigns.planning.editing import CampaignSettings
from rapport.platform.errors import InvalidInput, NotFound
from tests.campaigns.planning.factories import make_segment


def test_a_campaign_is_created_as_a_draft_and_changes_only_what_is_named(db: Session) -> None:
    segment_id = make_segment(db)
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(name="Spring", segment_id=segment_id, control_percent=10),
        created_by="tester",
    )
    assert campaign.status == "draft"
    assert campaign.kind == "one_off"

    changed = editing.update_campaign(db, campaign_id=campaign.id, changes={"name": "Spring 2"})
    assert changed.name == "Spring 2"
    assert changed.control_percent == 10
    assert changed.segment_id == segment_id


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"name": "x", "segment_id": 999}, "segment_id"),
        ({"name": "x", "channel": "webhook"}, "webhook_endpoint_id"),
        ({"name": "x", "channel": "webhook", "webhook_endpoint_id": 5}, "webhook_endpoint_id"),
        ({"name": "x", "kind": "triggered"}, "trigger"),
        (
            {
                "name": "x",
                "kind": "triggered",
                "trigger": {"event_type": "venue_event", "radius_km": -1},
            },
            "trigger.radius_km",
        ),
        (
            {
                "name": "x",
                "kind": "triggered",
                "trigger": {"event_type": "venue_event", "extra": 1},
            },
            "trigger.extra",
        ),
        ({"name": "x", "trigger": {"event_type": "venue_event"}}, "trigger"),
        ({"name": "x", "store_id": "nowhere", "radius_km": 5, "categories": ["Tools"]}, "store_id"),
        ({"name": "x", "categories": ["Tools"]}, "store_id"),
    ],
)
def test_settings_that_do_not_fit_are_refused_naming_the_field(
    db: Session, settings: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        editing.create_campaign(db, settings=CampaignSettings.model_validate(settings))
    assert refused.value.field == field
    assert db.scalar(select(func.count()).select_from(Campaign)) == 0


def test_control_group_and_window_ranges_are_refused_on_update(db: Session) -> None:
    campaign = editing.create_campaign(db, settings=CampaignSettings(name="Ranges"))
    for changes, field in (
        ({"control_percent": 95}, "control_percent"),
        ({"conversion_days": 0}, "conversion_days"),
        ({"conversion_days": 91}, "conversion_days"),
        ({"colour": "red"}, "colour"),
    ):
        with pytest.raises(InvalidInput) as refused:
            editing.update_campaign(db, campaign_id=campaign.id, changes=changes)
        assert refused.value.field == field
    with pytest.raises(NotFound):
        editing.get_campaign(db, campaign_id=campaign.id + 100)


def test_a_triggered_campaign_keeps_its_trigger_normalised(db: Session) -> None:
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Match day",
            kind="triggered",
            trigger={"event_type": "venue_event", "radius_km": 80, "filters": {"result": "won"}},
        ),
    )
    assert campaign.trigger == {
        "event_type": "venue_event",
        "filters": {"result": "won"},
        "radius_km": 80.0,
        "within_minutes": 120,
    }


def test_a_system_campaign_is_created_once_and_never_overwrites_an_edited_template(
    db: Session,
) -> None:
    templates = {("email", "en"): ("Your order is late", "Sorry {{ customer.first_name }}")}
    first = editing.ensure_system_campaign(
        db,
        key="orders.late",
        name="Late delivery",
        purpose="service",
        channel="email",
        templates=templates,
    )
    db.commit()
    assert first.kind == "transactional"
    assert first.status == "active"
    editing.set_template(
        db, campaign_id=first.id, channel="email", locale="en", subject="Edited", body="Edited body"
    )
    again = editing.ensure_system_campaign(
        db,
        key="orders.late",
        name="Late delivery",
        purpose="service",
        channel="email",
        templates={**templates, ("email", "fr"): ("En retard", "Désolé")},
    )
    db.commit()
    assert again.id == first.id
    stored = {
        (t.locale, t.subject)
        for t in db.scalars(
            select(CampaignTemplate).where(CampaignTemplate.campaign_id == first.id)
        )
    }
    assert stored == {("en", "Edited"), ("fr", "En retard")}

    # The retailer may give it a control group and rename it; its channel stays Rapport's.
    held = editing.update_campaign(
        db, campaign_id=first.id, changes={"control_percent": 10, "name": "Late notice"}
    )
    assert (held.control_percent, held.name) == (10, "Late notice")
    with pytest.raises(InvalidInput) as refused:
        editing.update_campaign(db, campaign_id=first.id, changes={"channel": "inbox"})
    assert refused.value.field == "channel"


def test_a_sent_campaign_changes_only_its_name_and_window(db: Session) -> None:
    segment_id = make_segment(db)
    campaign = editing.create_campaign(
        db, settings=CampaignSettings(name="Done", segment_id=segment_id)
    )
    campaign.status, campaign.started_at = "sent", campaign.created_at
    db.commit()
    changed = editing.update_campaign(
        db, campaign_id=campaign.id, changes={"name": "Done well", "conversion_days": 30}
    )
    assert (changed.name, changed.conversion_days) == ("Done well", 30)
    # Sending back what it already holds is no change.
    editing.update_campaign(db, campaign_id=campaign.id, changes={"segment_id": segment_id})
    with pytest.raises(InvalidInput) as refused:
        editing.update_campaign(db, campaign_id=campaign.id, changes={"channel": "inbox"})
    assert refused.value.field == "channel"


def test_changing_the_kind_takes_the_trigger_along(db: Session) -> None:
    campaign = editing.create_campaign(
        db,
        settings=CampaignSettings(
            name="Was triggered", kind="triggered", trigger={"event_type": "venue_event"}
        ),
    )
    changed = editing.update_campaign(db, campaign_id=campaign.id, changes={"kind": "one_off"})
    assert changed.trigger == {}
    with pytest.raises(InvalidInput) as refused:
        editing.update_campaign(db, campaign_id=campaign.id, changes={"kind": "triggered"})
    assert refused.value.field == "trigger"
