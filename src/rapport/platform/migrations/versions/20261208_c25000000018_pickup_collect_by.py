"""pickup collect_by: a pick-up order keeps its collection deadline, the last day it is kept at
its store, as the customer was told it (``orders.collect_by``). Before this version the
deadline was recomputed from ``RAPPORT_PICKUP_HOLD_DAYS`` on every read, so lowering the
setting released orders already promised a later day. Pick-up orders placed before are given
the deadline the rule gives now (the day placed, at the order's offset, plus the hold set for
this run), which is what they were told unless the setting changed since.

Revision ID: c25000000018
Revises: c25000000017
Create Date: 2026-12-08 00:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, timedelta

import sqlalchemy as sa
from alembic import op

from rapport.platform.settings import get_settings

revision: str = "c25000000018"
down_revision: str | None = "c25000000017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_orders = sa.table(
    "orders",
    sa.column("order_id", sa.String),
    sa.column("fulfilment", sa.String),
    sa.column("placed_at", sa.DateTime(timezone=True)),
    sa.column("placed_offset_minutes", sa.Integer),
    sa.column("collect_by", sa.Date),
)


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("collect_by", sa.Date(), nullable=True))
        batch.create_index(
            "ix_orders_waiting_pickups", ["fulfilment", "status", "collect_by"], unique=False
        )
    bind = op.get_bind()
    hold = timedelta(days=get_settings().pickup_hold_days)
    pickups = bind.execute(
        sa.select(_orders.c.order_id, _orders.c.placed_at, _orders.c.placed_offset_minutes).where(
            _orders.c.fulfilment == "pickup_in_store"
        )
    ).all()
    for order_id, placed_at, offset in pickups:
        utc = placed_at.replace(tzinfo=UTC) if placed_at.tzinfo is None else placed_at
        day = (utc.astimezone(UTC) + timedelta(minutes=offset or 0)).date()
        bind.execute(
            sa.update(_orders).where(_orders.c.order_id == order_id).values(collect_by=day + hold)
        )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_waiting_pickups")
        batch.drop_column("collect_by")
