"""international phones: a phone identity (and a profile's phone) stored from a number written
with the international 00 prefix reads as the number it is (+0033699887766 becomes
+33699887766), as normalise_identity now reads 0033 … itself; one whose number another
profile already holds so is left as it was. A national number stored before (+06…, from
06 …) names no country and cannot be read again: it stays, and matches nothing new.

Revision ID: c24000000003
Revises: c24000000002
Create Date: 2026-12-07 14:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c24000000003"
down_revision: str | None = "c24000000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE identities SET value = '+' || substr(value, 4)"
        " WHERE kind = 'phone' AND value LIKE '+00%' AND NOT EXISTS ("
        "  SELECT 1 FROM identities AS held WHERE held.kind = 'phone'"
        "  AND held.value = '+' || substr(identities.value, 4))"
    )
    op.execute("UPDATE customers SET phone = '+' || substr(phone, 4) WHERE phone LIKE '+00%'")


def downgrade() -> None:
    """Nothing to undo: the numbers read as before are the same numbers."""
