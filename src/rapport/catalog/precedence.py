"""Which of several rules for one place applies: the newest. Price rules of one place
(``catalog.service.price_on``, the consistency checks) and the recommendations' boosts and
buries of one target (``recommend``) all take the rule that began last, then the one made
last; one key orders them."""

from __future__ import annotations

from datetime import UTC, datetime

from rapport.platform import clock

# Where a rule without a start stands: it began before every rule that has one.
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def rule_recency(began: datetime | None, made: int) -> tuple[datetime, int]:
    """The key that orders equally specific rules from oldest to newest: the one that
    began last (``began``; a rule without a start began first), then the one made last
    (``made``, its id). The greatest key is the rule that applies."""
    return (clock.as_utc(began) if began is not None else _EARLIEST, made)
