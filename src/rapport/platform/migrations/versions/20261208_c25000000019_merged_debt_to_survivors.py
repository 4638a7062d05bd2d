"""merged debt to survivors: a merged-away member's debt from returns (their account's ``debt``
and open ``loyalty_debts`` records) becomes the surviving profile's, as a merge now moves it
(loyalty.earning.processor.move_merged_member), so that the survivor's later earning pays it.
Before this version the debt stayed on the merged-away account, where nothing ever paid it.
The survivor's account is opened (no points, no debt) when they had none. A survivor that was
erased is left alone: erasure closed their account and wrote their debt off.

Revision ID: c25000000019
Revises: c25000000018
Create Date: 2026-12-08 01:45:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "c25000000019"
down_revision: str | None = "c25000000018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_customers = sa.table(
    "customers",
    sa.column("customer_id", sa.String),
    sa.column("status", sa.String),
    sa.column("merged_into", sa.String),
)
_accounts = sa.table(
    "loyalty_accounts",
    sa.column("account_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("customer_id", sa.String),
    sa.column("balance", sa.BigInteger),
    sa.column("debt", sa.BigInteger),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_debts = sa.table(
    "loyalty_debts",
    sa.column("customer_id", sa.String),
    sa.column("remaining", sa.BigInteger),
)


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    survivors = sa.alias(_customers, "survivor")
    owing = bind.execute(
        sa.select(_accounts.c.account_id, _customers.c.merged_into, _accounts.c.debt)
        .join(_customers, _customers.c.customer_id == _accounts.c.account_id)
        .join(survivors, survivors.c.customer_id == _customers.c.merged_into)
        .where(
            _accounts.c.kind == "member",
            _accounts.c.debt > 0,
            _customers.c.status == "merged",
            survivors.c.status == "active",
        )
    ).all()
    for source, target, debt in owing:
        held = bind.scalar(sa.select(_accounts.c.kind).where(_accounts.c.account_id == target))
        if held is None:
            bind.execute(
                _accounts.insert().values(
                    account_id=target,
                    kind="member",
                    customer_id=target,
                    balance=0,
                    debt=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        elif held != "member":
            continue
        bind.execute(
            _debts.update()
            .where(_debts.c.customer_id == source, _debts.c.remaining > 0)
            .values(customer_id=target)
        )
        bind.execute(
            _accounts.update()
            .where(_accounts.c.account_id == source)
            .values(debt=0, updated_at=now)
        )
        bind.execute(
            _accounts.update()
            .where(_accounts.c.account_id == target)
            .values(debt=_accounts.c.debt + debt, updated_at=now)
        )


def downgrade() -> None:
    """Nothing to undo: the debt is owed where a merge now puts it."""
