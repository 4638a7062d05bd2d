"""stock below reserved: a store's counted units may fall below those reserved for pick-up (a
reserved unit broke, went missing): the physical count is recorded as it is, the level shows
0 available and how many reserved units it is short. The check ``reserved <= on_hand`` gives
way to ``reserved >= 0`` (on hand stays never negative).

Revision ID: c25000000015
Revises: c25000000014
Create Date: 2026-12-07 23:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c25000000015"
down_revision: str | None = "c25000000014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stock_levels") as batch:
        batch.drop_constraint(op.f("ck_stock_levels_reserved_within_on_hand"), type_="check")
        batch.create_check_constraint(
            op.f("ck_stock_levels_reserved_not_negative"), "reserved >= 0"
        )


def downgrade() -> None:
    # Levels short of their reservations cannot go back under the old check: count them up to
    # what is reserved first.
    op.execute("UPDATE stock_levels SET on_hand = reserved WHERE on_hand < reserved")
    with op.batch_alter_table("stock_levels") as batch:
        batch.drop_constraint(op.f("ck_stock_levels_reserved_not_negative"), type_="check")
        batch.create_check_constraint(
            op.f("ck_stock_levels_reserved_within_on_hand"), "reserved >= 0 AND reserved <= on_hand"
        )
