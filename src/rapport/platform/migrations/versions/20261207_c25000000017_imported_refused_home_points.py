"""imported refused home points: a profile whose standing choice on ``location`` is no keeps no
home point (``home_latitude``, ``home_longitude``; the home city stays). Before this version a
CRM import stored the point of a row refusing ``location`` (sign-up already left it out; both
now apply ``customers.consent.new_home_point``), after ``c25000000010`` had emptied the others.
An import records no time for the point, so there are no times to take out with it.

Revision ID: c25000000017
Revises: c25000000016
Create Date: 2026-12-07 23:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c25000000017"
down_revision: str | None = "c25000000016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_customers = sa.table(
    "customers",
    sa.column("customer_id", sa.String),
    sa.column("home_latitude", sa.Float),
    sa.column("home_longitude", sa.Float),
)
_consents = sa.table(
    "consents",
    sa.column("customer_id", sa.String),
    sa.column("purpose", sa.String),
    sa.column("granted", sa.Boolean),
)


def upgrade() -> None:
    refusing = sa.select(_consents.c.customer_id).where(
        _consents.c.purpose == "location", _consents.c.granted.is_(False)
    )
    op.get_bind().execute(
        _customers.update()
        .where(
            _customers.c.customer_id.in_(refusing),
            sa.or_(
                _customers.c.home_latitude.is_not(None), _customers.c.home_longitude.is_not(None)
            ),
        )
        .values(home_latitude=None, home_longitude=None)
    )


def downgrade() -> None:
    """Nothing to undo: the points were emptied, as a withdrawal empties them."""
