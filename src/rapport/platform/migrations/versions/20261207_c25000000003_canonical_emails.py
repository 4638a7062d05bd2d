"""canonical emails: a profile's contact email reads as its email identity does, trimmed and
lower-cased (Ana@Example.COM becomes ana@example.com), as every door now stores one
(platform.identity.canonical_email): sign-up and tracking's identify traits kept the
capitals as typed, while imports and the identities lower-cased it.

Two profiles may so come to hold the same contact email (one signed up as Ana@Example.com,
another imported as ana@example.com). They stay two profiles, as migration c25000000002
decided for phones: an email identifies a customer through its email identity, which one
profile alone holds and which this leaves as it is. Whether the two are one person is the
shop's to say (POST /v1/customers/merge).

Revision ID: c25000000003
Revises: c25000000002
Create Date: 2026-12-07 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rapport.platform.identity import canonical_email

revision: str = "c25000000003"
down_revision: str | None = "c25000000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Profiles read at a time, by customer id.
BATCH = 5_000

_customers = sa.table(
    "customers", sa.column("customer_id", sa.String), sa.column("email", sa.String)
)


def upgrade() -> None:
    # Lower-cased in Python, as the identities were (SQLite's lower() knows ASCII only).
    bind = op.get_bind()
    after = ""
    while True:
        rows = bind.execute(
            sa.select(_customers.c.customer_id, _customers.c.email)
            .where(_customers.c.email.is_not(None), _customers.c.customer_id > after)
            .order_by(_customers.c.customer_id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        changed = [
            {"held_by": customer_id, "address": canonical_email(email)}
            for customer_id, email in rows
            if canonical_email(email) != email
        ]
        if changed:
            bind.execute(
                _customers.update()
                .where(_customers.c.customer_id == sa.bindparam("held_by"))
                .values(email=sa.bindparam("address")),
                changed,
            )
        after = rows[-1].customer_id


def downgrade() -> None:
    """Nothing to undo: the addresses read as before are the same addresses."""
