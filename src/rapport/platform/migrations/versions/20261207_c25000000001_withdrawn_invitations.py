"""withdrawn invitations: a survey invitation keeps when its email was given up before it went
out (``feedback_invitations.withdrawn_at``), and such an invitation no longer counts as the
customer's last survey for fatigue. Invitations withdrawn earlier are marked from their email:
unanswered, never sent, and either suppressed by the dispatcher or, never queued, past their
link's expiry.

Revision ID: c25000000001
Revises: c24000000003
Create Date: 2026-12-07 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rapport.platform.db import UTCDateTime

revision: str = "c25000000001"
down_revision: str | None = "c24000000003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The survey invitation's email: the system campaign's deliveries, one per invitation.
_EMAILS = (
    "SELECT {what} FROM campaign_deliveries AS d JOIN campaigns AS c ON c.id = d.campaign_id"
    " WHERE c.key = 'feedback.survey_invitation'"
    " AND d.occasion = 'invitation:' || feedback_invitations.invitation_id"
)


def upgrade() -> None:
    with op.batch_alter_table("feedback_invitations") as batch:
        batch.add_column(sa.Column("withdrawn_at", UTCDateTime(timezone=True), nullable=True))
    suppressed = _EMAILS.format(what="MAX(d.updated_at)") + " AND d.status = 'suppressed'"
    op.execute(
        f"UPDATE feedback_invitations SET withdrawn_at = COALESCE(({suppressed}), expires_at)"
        " WHERE answered_at IS NULL"
        f" AND NOT EXISTS ({_EMAILS.format(what='1')} AND d.sent_at IS NOT NULL)"
        f" AND (EXISTS ({_EMAILS.format(what='1')} AND d.status = 'suppressed')"
        f"  OR (NOT EXISTS ({_EMAILS.format(what='1')}) AND expires_at <= CURRENT_TIMESTAMP))"
    )


def downgrade() -> None:
    with op.batch_alter_table("feedback_invitations") as batch:
        batch.drop_column("withdrawn_at")
