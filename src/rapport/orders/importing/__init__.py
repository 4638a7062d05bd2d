"""Import order lines (transactions) from a CSV file through a column mapping.

The file is streamed, never held: memory grows with the number of orders, products and
cancellations in it, not with its lines. The modules, in the order an import uses them:

- ``mapping``: how a file's columns map to orders (:class:`TransactionMapping`), the limits,
  and :class:`MalformedFile`;
- ``presets``: ready-made mappings for public datasets (:data:`PRESETS`);
- ``reading`` and ``olist``: reading a delimited file, or the Olist tables, into rows;
- ``checking``: the check pass (every row parsed before anything is written) and the match
  pass (each cancellation to the purchase it returns);
- ``writing``: the load pass, :func:`import_transactions_file` and its :class:`ImportSummary`.
"""

from __future__ import annotations

from rapport.orders.importing.mapping import (
    CONSENT_PREFIX,
    FixedItem,
    MalformedFile,
    TransactionMapping,
)
from rapport.orders.importing.presets import PRESETS
from rapport.orders.importing.reading import (
    SKIP_ADJUSTMENT,
    SKIP_FREE_GUEST,
    SKIP_NEGATIVE_PRICE,
    SKIP_NON_PRODUCT,
    SKIP_ZERO_QUANTITY,
    UNMATCHED_GUEST,
    UNMATCHED_NO_PURCHASE,
)
from rapport.orders.importing.writing import ImportSummary, import_transactions_file

__all__ = [
    "CONSENT_PREFIX",
    "PRESETS",
    "SKIP_ADJUSTMENT",
    "SKIP_FREE_GUEST",
    "SKIP_NEGATIVE_PRICE",
    "SKIP_NON_PRODUCT",
    "SKIP_ZERO_QUANTITY",
    "UNMATCHED_GUEST",
    "UNMATCHED_NO_PURCHASE",
    "FixedItem",
    "ImportSummary",
    "MalformedFile",
    "TransactionMapping",
    "import_transactions_file",
]
