"""surveys asked with email consent: invitations are emailed, so a survey gated on push or
analytics consent (which emailed customers who had refused email) now asks email consent

Revision ID: c21000000001
Revises: c20000000001
Create Date: 2026-12-07 10:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c21000000001"
down_revision: str | None = "c20000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE feedback_surveys SET consent_purpose = 'marketing_email' "
        "WHERE consent_purpose <> 'marketing_email'"
    )


def downgrade() -> None:
    # Which surveys asked another consent is not kept: they stay on email consent.
    pass
