"""canonical phones: a profile's contact phone reads as its phone identity does, '+' and
digits (+33 6 12 34 56 78, 0033 6 12 34 56 78 and +33 (6) 12-34-56-78 all become
+33612345678), as every door now stores one (platform.identity.canonical_phone): sign-up and
CRM imports kept the number as typed, and tracking kept a spaced one so.

Two profiles may so come to hold the same contact phone (one signed up with +33 6 12 34 56
78, another imported with +33612345678). They stay two profiles: a phone identifies a
customer through its phone identity, which one profile alone holds (the one that gave the
number first; the other's import or identify left it unlinked) and which this leaves as it
is. Whether the two are one person is the shop's to say (POST /v1/customers/merge), as
tracking never merges two known customers.

A number with no such form stays as it was: a national one (06 12 34 56 78, or +06… from
before December 2026) names no country, and an import's 'ask reception' is no number. It is
no identity, and erasing its holder no longer takes it for one: the digest such a number put
on the suppression list (that of no number at all, which every national number in a later
event matched, refusing it as an erased person's) is removed.

Revision ID: c25000000002
Revises: c25000000001
Create Date: 2026-12-07 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rapport.platform.identity import canonical_phone, identity_digest

revision: str = "c25000000002"
down_revision: str | None = "c25000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Profiles read at a time, by customer id.
BATCH = 5_000
# The digest of a number that names no country: that of no number.
NO_NUMBER_DIGEST = identity_digest("phone", "")

_customers = sa.table(
    "customers", sa.column("customer_id", sa.String), sa.column("phone", sa.String)
)


def upgrade() -> None:
    bind = op.get_bind()
    after = ""
    while True:
        rows = bind.execute(
            sa.select(_customers.c.customer_id, _customers.c.phone)
            .where(_customers.c.phone.is_not(None), _customers.c.customer_id > after)
            .order_by(_customers.c.customer_id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        changed = []
        for customer_id, phone in rows:
            try:
                number = canonical_phone(phone)
            except ValueError:
                continue  # national, or no number: stays as it was
            if number != phone:
                changed.append({"held_by": customer_id, "number": number})
        if changed:
            bind.execute(
                _customers.update()
                .where(_customers.c.customer_id == sa.bindparam("held_by"))
                .values(phone=sa.bindparam("number")),
                changed,
            )
        after = rows[-1].customer_id
    op.execute(
        sa.text("DELETE FROM suppressed_identities WHERE digest = :digest").bindparams(
            digest=NO_NUMBER_DIGEST
        )
    )


def downgrade() -> None:
    """Nothing to undo: the numbers read as before are the same numbers."""
