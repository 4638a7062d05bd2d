"""scattered location attributes: the cleanup of c25000000008 again, with the wider rule of
what a coordinate is (events.without_coordinate_traits): a ``lat``, ``lng``, ``lon``,
``long``, ``latitude`` or ``longitude`` key in any case at any depth of a profile's custom
attributes (``lng``, ``Latitude``, ``geo.latitude``, ``address.lat``). Before this version
those were kept without consent to ``location`` and survived a withdrawal, so a database
already past c25000000008 still holds them on profiles whose standing choice is no. The
times the removed attributes were said go with them; the profiles granting it keep theirs.

Revision ID: c25000000009
Revises: c25000000008
Create Date: 2026-12-07 20:20:00.000000
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

revision: str = "c25000000009"
down_revision: str | None = "c25000000008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The cleanup itself is c25000000008's, which reads the rule from events, not a copy of it.
_CLEANUP = Path(__file__).with_name("20261207_c25000000008_withdrawn_location_attributes.py")


def upgrade() -> None:
    spec = importlib.util.spec_from_file_location("_withdrawn_location_attributes", _CLEANUP)
    assert spec is not None
    assert spec.loader is not None
    cleanup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cleanup)
    cleanup.upgrade()


def downgrade() -> None:
    """Nothing to undo: the coordinates were removed, as a withdrawal removes them."""
