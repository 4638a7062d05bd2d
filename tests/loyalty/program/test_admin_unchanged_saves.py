"""A loyalty program form saved unchanged makes no new version and says nothing changed (the
draft compared with the version in force as the program reads them), where every unchanged
save of a rule, the tiers or the checkout caps made a version with implicit defaults written
out ("active": true, 5 as 5.0)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty.program import versions as program_versions
from tests.platform.admin_forms import page_form, post_form, said_after, typed

RULE = {
    "id": "base-earn",
    "name": "1 per euro",
    "kind": "spend",
    "points_per_unit": "1",
    "multipliers": [{"category": "Wine", "factor": "2"}],
    "exclude_categories": ["Gift cards"],
}


@pytest.mark.parametrize(
    ("kind", "page"),
    [
        ("rules", "/admin/loyalty/program/rules/base-earn"),
        ("tiers", "/admin/loyalty/program/tiers/edit"),
        ("checkout", "/admin/loyalty/program/checkout/edit"),
    ],
)
def test_an_unchanged_save_makes_no_version_and_says_so(
    admin: TestClient, db: Session, kind: program_versions.ConfigKind, page: str
) -> None:
    program_versions.save(db, "rules", {"rules": [RULE]}, changed_by="test")
    db.commit()
    before = program_versions.current(db, kind)
    versions = len(program_versions.history(db, kind))
    fields = page_form(admin.get(page).text, action=page)
    answer = post_form(admin, page, fields)
    said = said_after(admin, answer) or ""
    assert "nothing changed" in said, said
    db.expire_all()
    after = program_versions.current(db, kind)
    assert (after.id, after.document) == (before.id, before.document)
    assert len(program_versions.history(db, kind)) == versions


def test_a_changed_rule_is_still_saved_as_a_new_version(admin: TestClient, db: Session) -> None:
    program_versions.save(db, "rules", {"rules": [RULE]}, changed_by="test")
    db.commit()
    before = program_versions.current(db, "rules").id
    page = "/admin/loyalty/program/rules/base-earn"
    fields = page_form(admin.get(page).text, action=page)
    said = said_after(admin, post_form(admin, page, typed(fields, "points_per_unit", "2"))) or ""
    assert "saved: rules version" in said, said
    db.expire_all()
    after = program_versions.current(db, "rules")
    assert after.id != before
    assert after.document["rules"][0]["points_per_unit"] == "2"


@pytest.mark.parametrize(
    ("page", "what"),
    [
        ("/admin/loyalty/program/tiers/edit", "Tiers"),
        ("/admin/loyalty/program/checkout/edit", "Checkout caps"),
    ],
)
def test_an_unchanged_save_on_the_built_in_defaults_says_they_stay(
    admin: TestClient, db: Session, page: str, what: str
) -> None:
    # given a programme whose tiers and checkout caps were never saved
    # when the form is saved unchanged
    fields = page_form(admin.get(page).text, action=page)
    said = said_after(admin, post_form(admin, page, fields)) or ""
    # then it names the built-in defaults, not a version that does not exist
    assert "nothing changed, the built-in defaults stay in force" in said, said
    assert "None" not in said, said
    assert what in said, said
