"""ticket value currency: a ticket keeps the currency its customer value is counted in
(``feedback_tickets.customer_value_currency``), the loyalty program's when it was opened, so the ticket
page shows the amount in it after the program's currency changes. Tickets opened before this
version were counted in the program's currency of the time; they get the program's currency
now (the one Rapport knows; EUR without a program row).

Revision ID: c25000000011
Revises: c25000000010
Create Date: 2026-12-07 22:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c25000000011"
down_revision: str | None = "c25000000010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "feedback_tickets",
        sa.Column("customer_value_currency", sa.String(length=3), nullable=True),
    )
    program = op.get_bind().scalar(sa.text("SELECT currency FROM loyalty_program WHERE id = 1"))
    op.execute(
        sa.text("UPDATE feedback_tickets SET customer_value_currency = :currency").bindparams(
            currency=program or "EUR"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("feedback_tickets") as batch:
        batch.drop_column("customer_value_currency")
