"""The program's configuration versions as the code reads them: a version is parsed once, and
what is parsed is always the document stored, whichever database held a version of that id."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from rapport.loyalty.models import ProgramConfig
from rapport.loyalty.program import versions as program_versions
from tests.loyalty.factories import frozen_clock


def _rules(points_per_unit: str) -> dict[str, object]:
    return {
        "rules": [{"id": "a", "name": "A", "kind": "spend", "points_per_unit": points_per_unit}]
    }


def test_a_version_is_read_as_stored_when_its_id_and_moment_come_again(db: Session) -> None:
    # given version 1 saved and read, then gone (a database made again: tests, a reinstall)
    frozen_clock()
    program_versions.save(db, "rules", _rules("1"), changed_by="test")
    assert str(program_versions.rule_set(db)[1].rules[0].points_per_unit) == "1"  # type: ignore[union-attr]
    db.execute(delete(ProgramConfig))
    db.commit()
    # when another document is saved at the same moment (SQLite gives it id 1 again)
    program_versions.save(db, "rules", _rules("3"), changed_by="test")
    # then the rules in force are the new document's
    assert str(program_versions.rule_set(db)[1].rules[0].points_per_unit) == "3"  # type: ignore[union-attr]
