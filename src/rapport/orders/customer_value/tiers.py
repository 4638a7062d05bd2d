# ruff: noqa: RUF003  (the papers' notation: α, γ, Γ and the minus sign)
"""The customer hierarchy: value tiers by rank of predicted value.

Customers are ranked by predicted value, highest first (ties by the order given, so a fit is
reproducible). The customer at rank k (1-based) of n is in the first tier whose share s has
k ≤ s·n: "top1" (1 %), "top5" (the next, to 5 %), "top20" (to 20 %), and "rest". So a tier never
holds more than its share, and each tier's cumulative count is ⌊s·n⌋.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

VALUE_TIERS = ("top1", "top5", "top20", "rest")
TIER_SHARES = {"top1": 0.01, "top5": 0.05, "top20": 0.20, "rest": 1.0}


def value_tiers(predicted_value: ArrayLike) -> NDArray[np.str_]:
    """The tier of each customer, row for row."""
    values = np.asarray(predicted_value, dtype=np.float64)
    n = values.size
    # A stable sort on the negated values: highest first, ties in the order given.
    order = np.argsort(-values, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    tiers = np.full(n, "rest", dtype="<U5")
    for tier in ("top20", "top5", "top1"):  # narrowest last, so it wins
        tiers[rank <= int(np.floor(TIER_SHARES[tier] * n + 1e-9))] = tier
    return tiers


def tier_at_rank(rank: int, customers: int) -> str:
    """The tier of the customer at ``rank`` (1-based) of ``customers``, as :func:`value_tiers`
    gives it: one customer placed among values already ranked (a merge's survivor)."""
    for tier in ("top1", "top5", "top20"):  # narrowest first
        if rank <= int(np.floor(TIER_SHARES[tier] * customers + 1e-9)):
            return tier
    return "rest"
