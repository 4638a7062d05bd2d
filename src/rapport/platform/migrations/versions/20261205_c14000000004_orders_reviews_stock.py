"""orders reviews stock: one review per reviewer, product and purchase; restocked returns

Revision ID: c14000000004
Revises: c14000000003
Create Date: 2026-12-05 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c14000000004"
down_revision: str | None = "c14000000003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback_reviews") as batch_op:
        batch_op.add_column(
            sa.Column("purchase_key", sa.String(length=80), nullable=False, server_default="")
        )
    # Reviews already written: a verified one is of the first line delivered to its author
    # (in the order it names, if it names one); others are of no purchase.
    op.execute(
        """
        UPDATE feedback_reviews SET purchase_key = COALESCE((
            SELECT ol.order_id || '#' || ol.line_no
            FROM order_lines ol JOIN orders o ON o.order_id = ol.order_id
            WHERE o.customer_id = feedback_reviews.customer_id
              AND ol.sku = feedback_reviews.sku
              AND o.delivered_at IS NOT NULL
              AND o.status <> 'cancelled'
              AND (feedback_reviews.order_id IS NULL OR ol.order_id = feedback_reviews.order_id)
            ORDER BY o.delivered_at, ol.order_id, ol.line_no
            LIMIT 1
        ), '')
        WHERE customer_id IS NOT NULL AND verified
        """
    )
    # Repeats already there (the farming this closes) are kept as history under a key of
    # their own, so the unique index can be built; the earliest keeps the purchase.
    op.execute(
        """
        UPDATE feedback_reviews SET purchase_key = 'legacy:' || review_id
        WHERE customer_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM feedback_reviews earlier
            WHERE earlier.customer_id = feedback_reviews.customer_id
              AND earlier.sku = feedback_reviews.sku
              AND earlier.purchase_key = feedback_reviews.purchase_key
              AND (earlier.created_at < feedback_reviews.created_at
                   OR (earlier.created_at = feedback_reviews.created_at
                       AND earlier.review_id < feedback_reviews.review_id))
        )
        """
    )
    op.create_index(
        op.f("uq_feedback_reviews_purchase"),
        "feedback_reviews",
        ["customer_id", "sku", "purchase_key"],
        unique=True,
    )
    with op.batch_alter_table("return_lines") as batch_op:
        batch_op.add_column(sa.Column("restocked_to", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("return_lines") as batch_op:
        batch_op.drop_column("restocked_to")
    op.drop_index(op.f("uq_feedback_reviews_purchase"), table_name="feedback_reviews")
    with op.batch_alter_table("feedback_reviews") as batch_op:
        batch_op.drop_column("purchase_key")
