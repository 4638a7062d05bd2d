"""A category whose name holds a comma survives a loyalty form saved with its list as shown:
the earning rule's exclusions and a reward's categories (platform.admin.list_text), where
the form split "Beer, Wine & Spirits" in two."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty.program import versions as program_versions
from rapport.loyalty.rewards import catalogue as reward_catalogue
from tests.platform.admin_forms import page_form, post_form, said_after, typed

COMMA = "Beer, Wine & Spirits"


def test_an_earning_rule_saved_from_its_form_keeps_a_comma_category(
    admin: TestClient, db: Session
) -> None:
    # given a spend rule excluding a category whose name holds a comma
    rule = {
        "id": "base-earn",
        "name": "1 per euro",
        "kind": "spend",
        "points_per_unit": "1",
        "exclude_categories": [COMMA, "Gift cards"],
    }
    program_versions.save(db, "rules", {"rules": [rule]}, changed_by="test")
    db.commit()
    action = "/admin/loyalty/program/rules/base-earn"
    # when its form is saved with only the name changed
    fields = page_form(admin.get(action).text, action=action)
    answer = post_form(admin, action, typed(fields, "name", "One per euro"))
    # then the exclusions are as they were
    assert "saved" in (said_after(admin, answer) or "")
    db.expire_all()
    (stored,) = program_versions.current(db, "rules").document["rules"]
    assert stored["name"] == "One per euro"
    assert stored["exclude_categories"] == [COMMA, "Gift cards"]


def test_a_reward_saved_from_its_form_keeps_a_comma_category(
    admin: TestClient, db: Session
) -> None:
    # given a reward for a category whose name holds a comma
    reward_catalogue.save_reward(
        db,
        reward_id="big-20",
        name="20 off",
        points_cost=2000,
        coupon_kind="amount",
        coupon_value=2000,
        min_subtotal_minor=0,
        categories=[COMMA],
        stackable=True,
        valid_days=30,
        active=True,
    )
    db.commit()
    action = "/admin/loyalty/rewards/big-20"
    # when its form is saved with only the name changed
    fields = page_form(admin.get(action).text, action="/admin/loyalty/rewards")
    assert ("categories", f'["{COMMA}"]') in fields
    answer = post_form(admin, "/admin/loyalty/rewards", typed(fields, "name", "Twenty off"))
    # then the category is one category still
    assert "saved" in (said_after(admin, answer) or "")
    db.expire_all()
    reward = reward_catalogue.get_reward(db, reward_id="big-20")
    assert reward is not None
    assert (reward.name, reward.categories) == ("Twenty off", [COMMA])


def test_a_list_typed_as_broken_json_is_said_beside_the_field(
    admin: TestClient, db: Session
) -> None:
    program_versions.save(
        db,
        "rules",
        {"rules": [{"id": "base-earn", "name": "1", "kind": "spend", "points_per_unit": "1"}]},
        changed_by="test",
    )
    db.commit()
    action = "/admin/loyalty/program/rules/base-earn"
    fields = page_form(admin.get(action).text, action=action)
    answer = post_form(admin, action, typed(fields, "exclude_categories", '["Beer, Wine'))
    assert answer.status_code == 422
    assert "read as JSON" in answer.text
    db.expire_all()
    assert "exclude_categories" not in program_versions.current(db, "rules").document["rules"][0]
