"""erased merge reasons: the free-text reason of a merge (``customer_merges.reason``, what staff
wrote: "phoned from +44 7700 900999") becomes ``erased`` where either profile of the merge is
an erased person's (erased, or merged into an erased profile), as an erasure now does
(customers.privacy.erase_customer_data). Before this version an erasure scrubbed the reason
from the merge's events and the stored idempotent answer but left it in the merge's audit row.

Revision ID: c25000000016
Revises: c25000000015
Create Date: 2026-12-07 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c25000000016"
down_revision: str | None = "c25000000015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ERASED = "erased"

_customers = sa.table(
    "customers",
    sa.column("customer_id", sa.String),
    sa.column("status", sa.String),
    sa.column("merged_into", sa.String),
)
_merges = sa.table(
    "customer_merges",
    sa.column("source_customer_id", sa.String),
    sa.column("target_customer_id", sa.String),
    sa.column("reason", sa.String),
)


def upgrade() -> None:
    erased = sa.select(_customers.c.customer_id).where(_customers.c.status == "erased")
    theirs = sa.select(_customers.c.customer_id).where(
        sa.or_(_customers.c.status == "erased", _customers.c.merged_into.in_(erased))
    )
    op.get_bind().execute(
        _merges.update()
        .where(
            _merges.c.reason != ERASED,
            sa.or_(
                _merges.c.source_customer_id.in_(theirs),
                _merges.c.target_customer_id.in_(theirs),
            ),
        )
        .values(reason=ERASED)
    )


def downgrade() -> None:
    """Nothing to undo: the reasons were erased, as an erasure erases them."""
