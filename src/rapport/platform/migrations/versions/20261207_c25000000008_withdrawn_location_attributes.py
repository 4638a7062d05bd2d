"""withdrawn location attributes: a profile whose standing choice on ``location`` is no keeps
no coordinates in its custom attributes, as a withdrawal by any door now empties them
(customers.consent.forget_location): the ``lat``, ``lon``, ``latitude`` and ``longitude``
tracking's traits left there, and those of a ``location`` object, which keeps the rest (a
city) or goes when empty (events.without_coordinate_traits, the keys ingestion strips without
the grant). Before this version a withdrawal emptied the last known location only, and
segments' trait conditions still found the coordinates. The times the removed attributes
were said go with them.

Revision ID: c25000000008
Revises: c25000000007
Create Date: 2026-12-07 19:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rapport.events.service import without_coordinate_traits
from rapport.platform.db import JsonDocument

revision: str = "c25000000008"
down_revision: str | None = "c25000000007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Profiles read at a time, by customer id.
BATCH = 5_000

_customers = sa.table(
    "customers",
    sa.column("customer_id", sa.String),
    sa.column("attributes", JsonDocument),
    sa.column("field_times", JsonDocument),
)
_consents = sa.table(
    "consents",
    sa.column("customer_id", sa.String),
    sa.column("purpose", sa.String),
    sa.column("granted", sa.Boolean),
)


def upgrade() -> None:
    bind = op.get_bind()
    after = ""
    while True:
        rows = bind.execute(
            sa.select(_customers.c.customer_id, _customers.c.attributes, _customers.c.field_times)
            .join(_consents, _consents.c.customer_id == _customers.c.customer_id)
            .where(
                _consents.c.purpose == "location",
                _consents.c.granted.is_(False),
                _customers.c.customer_id > after,
            )
            .order_by(_customers.c.customer_id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        changed = []
        for customer_id, attributes, field_times in rows:
            if not isinstance(attributes, dict):
                continue
            kept = without_coordinate_traits(attributes)
            if kept is attributes:
                continue
            gone = {f"attributes.{name}" for name in set(attributes) - set(kept)}
            times = (
                {name: said for name, said in field_times.items() if name not in gone}
                if isinstance(field_times, dict)
                else field_times
            )
            changed.append({"held_by": customer_id, "kept": dict(kept), "times": times})
        if changed:
            bind.execute(
                _customers.update()
                .where(_customers.c.customer_id == sa.bindparam("held_by"))
                .values(attributes=sa.bindparam("kept"), field_times=sa.bindparam("times")),
                changed,
            )
        after = rows[-1].customer_id


def downgrade() -> None:
    """Nothing to undo: the coordinates were removed, as a withdrawal removes them."""
