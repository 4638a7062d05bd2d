"""spend by currency: a customer's traits keep their net spend in each currency on its own
(``customer_traits.spend_by_currency``, by ISO 4217 code), where ``spend_minor`` added orders
in different currencies and labelled the sum with the latest order's. ``spend_minor`` becomes
the spend in that currency only; segments and RFM read the program's currency's entry.

Existing traits: a customer whose logged orders are all in one currency keeps their spend as
it was, under that currency. One whose orders are in several gets it worked out again from the
log, as the profile processor folds it (orders placed less returns and cancellations, each in
its order's currency; a return in the currency of the order it names).

Revision ID: c25000000013
Revises: c25000000012
Create Date: 2026-12-07 22:40:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from rapport.platform.db import JsonDocument

revision: str = "c25000000013"
down_revision: str | None = "c25000000012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Traits rows written at a time.
BATCH = 5_000
NO_CURRENCY = "XXX"  # customers.traits.NO_CURRENCY: an amount whose event named none

_events = sa.table(
    "events",
    sa.column("position", sa.BigInteger),
    sa.column("type", sa.String),
    sa.column("customer_id", sa.String),
    sa.column("properties", JsonDocument),
)
_traits = sa.table(
    "customer_traits",
    sa.column("customer_id", sa.String),
    sa.column("order_count", sa.Integer),
    sa.column("spend_minor", sa.BigInteger),
    sa.column("currency", sa.String),
    sa.column("spend_by_currency", JsonDocument),
)


class _Spend:
    """One customer's order events folded as ``customers.traits.apply_event`` folds them."""

    def __init__(self) -> None:
        self.latest: str | None = None
        self.by_currency: dict[str, int] = {}
        self.orders: dict[str, str] = {}  # order id -> currency
        self.currencies: set[str] = set()

    def add(self, currency: str | None, minor: int) -> None:
        key = currency or NO_CURRENCY
        self.by_currency[key] = self.by_currency.get(key, 0) + minor

    def fold(self, kind: str, properties: dict[str, Any]) -> None:
        currency = properties.get("currency")
        if kind == "order_placed":
            self.latest = currency or self.latest
            if self.latest:
                self.currencies.add(self.latest)
                if properties.get("order_id"):
                    self.orders[str(properties["order_id"])] = self.latest
            self.add(self.latest, int(properties.get("total_minor", 0)))
        elif kind == "order_returned":
            order = self.orders.get(str(properties.get("order_id")))
            self.add(currency or order or self.latest, -int(properties.get("refund_minor", 0)))
        else:
            self.add(currency or self.latest, -int(properties.get("total_minor", 0)))


def _mixed(bind: sa.Connection) -> dict[str, _Spend]:
    """The customers whose logged orders are in more than one currency, their spend folded."""
    mixed: dict[str, _Spend] = {}
    customer: str | None = None
    spend = _Spend()
    rows = bind.execute(
        sa.select(_events.c.customer_id, _events.c.type, _events.c.properties)
        .where(
            _events.c.type.in_(("order_placed", "order_returned", "order_cancelled")),
            _events.c.customer_id.is_not(None),
        )
        .order_by(_events.c.customer_id, _events.c.position)
        .execution_options(yield_per=BATCH)
    )
    for customer_id, kind, properties in rows:
        if customer_id != customer:
            if customer is not None and len(spend.currencies) > 1:
                mixed[customer] = spend
            customer, spend = customer_id, _Spend()
        spend.fold(kind, properties if isinstance(properties, dict) else {})
    if customer is not None and len(spend.currencies) > 1:
        mixed[customer] = spend
    return mixed


def upgrade() -> None:
    op.add_column("customer_traits", sa.Column("spend_by_currency", JsonDocument, nullable=True))
    bind = op.get_bind()
    mixed = _mixed(bind)
    after = ""
    while True:
        rows = bind.execute(
            sa.select(
                _traits.c.customer_id,
                _traits.c.order_count,
                _traits.c.spend_minor,
                _traits.c.currency,
            )
            .where(_traits.c.customer_id > after)
            .order_by(_traits.c.customer_id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        changed = []
        for customer_id, orders, spend_minor, currency in rows:
            folded = mixed.get(customer_id)
            if folded is not None:
                by_currency = folded.by_currency
                spend_minor = by_currency.get(currency or NO_CURRENCY, 0)
            elif orders or spend_minor:
                by_currency = {currency or NO_CURRENCY: int(spend_minor or 0)}
            else:
                by_currency = {}
            changed.append({"held_by": customer_id, "spends": by_currency, "spend": spend_minor})
        bind.execute(
            _traits.update()
            .where(_traits.c.customer_id == sa.bindparam("held_by"))
            .values(spend_by_currency=sa.bindparam("spends"), spend_minor=sa.bindparam("spend")),
            changed,
        )
        after = rows[-1].customer_id
    with op.batch_alter_table("customer_traits") as batch:
        batch.alter_column("spend_by_currency", existing_type=JsonDocument, nullable=False)


def downgrade() -> None:
    """Back to one sum: every currency's spend added again, as before this version."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(_traits.c.customer_id, _traits.c.spend_by_currency)).all()
    changed = [
        {"held_by": customer_id, "spend": sum(int(v) for v in (spends or {}).values())}
        for customer_id, spends in rows
    ]
    if changed:
        bind.execute(
            _traits.update()
            .where(_traits.c.customer_id == sa.bindparam("held_by"))
            .values(spend_minor=sa.bindparam("spend")),
            changed,
        )
    with op.batch_alter_table("customer_traits") as batch:
        batch.drop_column("spend_by_currency")
