"""merged memberships to survivors: a merged-away member's paid membership (and the fees it
paid) becomes the surviving profile's, as a merge now moves it
(loyalty.membership.lifecycle.move_merged_membership). Before this version it stayed on the
merged-away profile, renewing and recording fees there while the survivor had no plan. When
the survivor holds a membership that has not lapsed too, the one paid further ahead (the later
period end; the survivor's on a tie) is kept and the other ends now (no refund: the product
has none). A survivor that was erased is left alone (the renewal job now ends a membership
on a merged-away or erased profile at its period's end, charging nothing).

Revision ID: c25000000020
Revises: c25000000019
Create Date: 2026-12-08 03:15:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "c25000000020"
down_revision: str | None = "c25000000019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_customers = sa.table(
    "customers",
    sa.column("customer_id", sa.String),
    sa.column("status", sa.String),
    sa.column("merged_into", sa.String),
)
_memberships = sa.table(
    "loyalty_memberships",
    sa.column("id", sa.BigInteger),
    sa.column("customer_id", sa.String),
    sa.column("status", sa.String),
    sa.column("current_period_end", sa.DateTime(timezone=True)),
    sa.column("auto_renew", sa.Boolean),
    sa.column("ended_at", sa.DateTime(timezone=True)),
)
_payments = sa.table(
    "loyalty_membership_payments",
    sa.column("customer_id", sa.String),
)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    survivors = sa.alias(_customers, "survivor")
    merged = bind.execute(
        sa.select(_customers.c.customer_id, _customers.c.merged_into)
        .join(survivors, survivors.c.customer_id == _customers.c.merged_into)
        .where(_customers.c.status == "merged", survivors.c.status == "active")
        .where(sa.exists().where(_memberships.c.customer_id == _customers.c.customer_id))
        .order_by(_customers.c.customer_id)
    ).all()
    for source, target in merged:
        unlapsed = {
            row.customer_id: row
            for row in bind.execute(
                sa.select(_memberships).where(
                    _memberships.c.customer_id.in_([source, target]),
                    _memberships.c.status != "lapsed",
                )
            )
        }
        theirs, ours = unlapsed.get(source), unlapsed.get(target)
        if theirs is not None and ours is not None:
            ahead = _utc(theirs.current_period_end) > _utc(ours.current_period_end)
            ended = ours if ahead else theirs
            bind.execute(
                _memberships.update()
                .where(_memberships.c.id == ended.id)
                .values(status="lapsed", auto_renew=False, ended_at=now)
            )
        for table in (_memberships, _payments):
            bind.execute(
                table.update().where(table.c.customer_id == source).values(customer_id=target)
            )


def downgrade() -> None:
    """Nothing to undo: the membership is held where a merge now puts it."""
