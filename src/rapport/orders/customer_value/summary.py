"""From purchases to the per-customer summary the models take, in one vectorised pass.

A purchase *occasion* is a customer's purchase day: several orders on one day count once (as
in the papers and the R package BTYD), with their values added. ``frequency`` is the number of
occasions after the first, ``recency`` the time from the first occasion to the last, ``age``
the time from the first occasion to the end of the window, and ``monetary`` the mean value of
the repeat occasions (the first is left out: it is often unlike the rest, and the models
describe repeat behaviour).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rapport.orders.customer_value.bgnbd import PurchaseSummary

IntArray = NDArray[np.int64]


def summarise_purchases(
    customer: ArrayLike,
    day: ArrayLike,
    amount: ArrayLike,
    *,
    end_day: float,
    unit_days: float = 1.0,
) -> tuple[IntArray, PurchaseSummary]:
    """Summarise purchases given as parallel arrays: ``customer`` (integer codes), ``day``
    (integer day numbers) and ``amount``. Purchases after ``end_day`` are ignored. Times in
    the summary are in units of ``unit_days`` days (1: days, 7: weeks).

    Returns the customer codes (sorted, one per customer with a purchase) and their summary,
    row for row."""
    codes = np.asarray(customer, dtype=np.int64)
    days = np.asarray(day, dtype=np.int64)
    values = np.asarray(amount, dtype=np.float64)
    keep = days <= end_day
    codes, days, values = codes[keep], days[keep], values[keep]
    empty = np.zeros(0, dtype=np.float64)
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64), PurchaseSummary(empty, empty, empty, empty)

    # One row per (customer, day), values added: the purchase occasions.
    order = np.lexsort((days, codes))
    codes, days, values = codes[order], days[order], values[order]
    new_occasion = np.empty(codes.size, dtype=bool)
    new_occasion[0] = True
    new_occasion[1:] = (codes[1:] != codes[:-1]) | (days[1:] != days[:-1])
    starts = np.flatnonzero(new_occasion)
    occasion_customer = codes[starts]
    occasion_day = days[starts]
    occasion_value = np.add.reduceat(values, starts)

    # Per customer: first and last occasion, count, the first occasion's value, the total.
    first = np.empty(occasion_customer.size, dtype=bool)
    first[0] = True
    first[1:] = occasion_customer[1:] != occasion_customer[:-1]
    customer_starts = np.flatnonzero(first)
    customer_ends = np.append(customer_starts[1:], occasion_customer.size) - 1
    occasions = customer_ends - customer_starts + 1
    total = np.add.reduceat(occasion_value, customer_starts)
    repeat_total = total - occasion_value[customer_starts]

    frequency = (occasions - 1).astype(np.float64)
    first_day = occasion_day[customer_starts].astype(np.float64)
    last_day = occasion_day[customer_ends].astype(np.float64)
    recency = (last_day - first_day) / unit_days
    age = (float(end_day) - first_day) / unit_days
    with np.errstate(divide="ignore", invalid="ignore"):
        monetary = np.where(frequency > 0, repeat_total / np.maximum(frequency, 1.0), 0.0)
    return occasion_customer[customer_starts], PurchaseSummary(
        frequency=frequency, recency=recency, age=age, monetary=monetary
    )
