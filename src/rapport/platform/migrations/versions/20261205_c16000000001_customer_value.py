"""customer value (BG/NBD, Gamma-Gamma)

Revision ID: c16000000001
Revises: c14000000006
Create Date: 2026-12-05 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rapport.platform.db

revision: str = "c16000000001"
down_revision: str | None = "c14000000006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Per-customer lifetime value as last fitted (orders.customer_value), rebuilt whole at
    # every fit, and the fitted parameters (one row per fit; the newest is in use).
    op.create_table(
        "customer_values",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("recency_days", sa.Float(), nullable=False),
        sa.Column("age_days", sa.Float(), nullable=False),
        sa.Column("monetary_minor", sa.Integer(), nullable=False),
        sa.Column("expected_purchases_90d", sa.Float(), nullable=False),
        sa.Column("p_alive", sa.Float(), nullable=False),
        sa.Column("p_purchase_90d", sa.Float(), nullable=False),
        sa.Column("expected_spend_minor", sa.Integer(), nullable=False),
        sa.Column("predicted_value_minor", sa.Integer(), nullable=False),
        sa.Column("value_tier", sa.String(length=8), nullable=False),
        sa.Column("fitted_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "value_tier IN ('top1', 'top5', 'top20', 'rest')",
            name=op.f("ck_customer_values_value_tier_known"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_values")),
    )
    op.create_index("ix_customer_values_tier", "customer_values", ["value_tier"])
    op.create_index("ix_customer_values_predicted", "customer_values", ["predicted_value_minor"])
    op.create_table(
        "customer_value_fits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fitted_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("repeat_customers", sa.Integer(), nullable=False),
        sa.Column("r", sa.Float(), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("a", sa.Float(), nullable=False),
        sa.Column("b", sa.Float(), nullable=False),
        sa.Column("log_likelihood", sa.Float(), nullable=False),
        sa.Column("p", sa.Float(), nullable=True),
        sa.Column("q", sa.Float(), nullable=True),
        sa.Column("gamma", sa.Float(), nullable=True),
        sa.Column("spend_log_likelihood", sa.Float(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_value_fits")),
    )
    op.create_index(op.f("ix_customer_value_fits_fitted_at"), "customer_value_fits", ["fitted_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_customer_value_fits_fitted_at"), table_name="customer_value_fits")
    op.drop_table("customer_value_fits")
    op.drop_index("ix_customer_values_predicted", table_name="customer_values")
    op.drop_index("ix_customer_values_tier", table_name="customer_values")
    op.drop_table("customer_values")
