"""segments: indexes for segment conditions (distance bounding boxes, purchase windows, event
windows)

Revision ID: c16000000003
Revises: c16000000002
Create Date: 2026-12-05 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op

import rapport.platform.db  # noqa: F401

revision: str = "c16000000003"
down_revision: str | None = "c16000000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_customers_home_latitude", "customers", ["home_latitude"])
    op.create_index("ix_customer_traits_last_latitude", "customer_traits", ["last_latitude"])
    op.create_index("ix_events_type_occurred", "events", ["type", "occurred_at"])
    op.create_index("ix_orders_placed_at", "orders", ["placed_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_placed_at", table_name="orders")
    op.drop_index("ix_events_type_occurred", table_name="events")
    op.drop_index("ix_customer_traits_last_latitude", table_name="customer_traits")
    op.drop_index("ix_customers_home_latitude", table_name="customers")
