"""withdrawn home points: a profile whose standing choice on ``location`` is no keeps no home
point (``home_latitude``, ``home_longitude``; the home city stays), as a withdrawal by any door
and a merge whose choice is no now empty it (customers.consent.forget_location). Before this
version the point survived a withdrawal and a merge carried a duplicate's onto a survivor that
said no. The times the point was said go with it.

Revision ID: c25000000010
Revises: c25000000009
Create Date: 2026-12-07 22:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rapport.platform.db import JsonDocument

revision: str = "c25000000010"
down_revision: str | None = "c25000000009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Profiles read at a time, by customer id.
BATCH = 5_000
HOME_POINT = ("home_latitude", "home_longitude")

_customers = sa.table(
    "customers",
    sa.column("customer_id", sa.String),
    sa.column("home_latitude", sa.Float),
    sa.column("home_longitude", sa.Float),
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
            sa.select(_customers.c.customer_id, _customers.c.field_times)
            .join(_consents, _consents.c.customer_id == _customers.c.customer_id)
            .where(
                _consents.c.purpose == "location",
                _consents.c.granted.is_(False),
                sa.or_(
                    _customers.c.home_latitude.is_not(None),
                    _customers.c.home_longitude.is_not(None),
                ),
                _customers.c.customer_id > after,
            )
            .order_by(_customers.c.customer_id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        bind.execute(
            _customers.update()
            .where(_customers.c.customer_id == sa.bindparam("held_by"))
            .values(home_latitude=None, home_longitude=None, field_times=sa.bindparam("times")),
            [
                {
                    "held_by": customer_id,
                    "times": (
                        {k: v for k, v in field_times.items() if k not in HOME_POINT}
                        if isinstance(field_times, dict)
                        else field_times
                    ),
                }
                for customer_id, field_times in rows
            ],
        )
        after = rows[-1].customer_id


def downgrade() -> None:
    """Nothing to undo: the points were emptied, as a withdrawal empties them."""
