"""given-up invitations: a survey invitation whose email the campaigns domain gave up on for
its own reasons (held out in the control group; suppressed, dead or bounced: no email address,
an address suppressed after a hard bounce, a gate's refusal) is withdrawn and no longer counts
for fatigue. Those given up before this version are marked from their email, when it last
changed; one answered, or made through the API (stage ``manual``, its link handed out), stays.

Revision ID: c25000000006
Revises: c25000000005
Create Date: 2026-12-07 20:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c25000000006"
down_revision: str | None = "c25000000005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The invitation's email (the survey system campaign's delivery) when it ended unsent.
_GIVEN_UP = (
    "SELECT MAX(d.updated_at) FROM campaign_deliveries AS d"
    " JOIN campaigns AS c ON c.id = d.campaign_id"
    " WHERE c.key = 'feedback.survey_invitation'"
    " AND d.occasion = 'invitation:' || feedback_invitations.invitation_id"
    " AND d.status IN ('held_out', 'suppressed', 'dead', 'bounced')"
)


def upgrade() -> None:
    op.execute(
        f"UPDATE feedback_invitations SET withdrawn_at = ({_GIVEN_UP})"
        " WHERE answered_at IS NULL AND withdrawn_at IS NULL AND stage <> 'manual'"
        f" AND ({_GIVEN_UP}) IS NOT NULL"
    )


def downgrade() -> None:
    """Nothing to undo: the column stays, and an invitation marked stays withdrawn."""
