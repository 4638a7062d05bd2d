"""Customer lifetime value: how many more purchases, how likely still a customer, worth how
much, and where in the customer hierarchy.

The pieces (one module each):

- ``bgnbd``: the BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005): fit,
  probability alive, expected purchases over a horizon;
- ``gamma_gamma``: the Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005):
  fit, expected spend per future purchase;
- ``summary``: purchases to the per-customer (frequency, recency, age, monetary) summary;
- ``tiers``: value tiers "top1", "top5", "top20", "rest" by rank of predicted value;
- ``serving``: fitted on the orders Rapport holds, stored in ``customer_values`` and
  ``customer_value_fits``, read and selected through ``rapport.orders.service``.

Written from the papers' formulas with numpy and scipy (the ``lifetimes`` package is no longer
maintained); ``bench/clv_eval.py`` checks the published CDNOW parameters.
"""

from __future__ import annotations

from rapport.orders.customer_value.bgnbd import (
    BgNbdParams,
    PurchaseSummary,
    expected_purchases,
    fit_bgnbd,
    probability_alive,
    probability_purchase,
)
from rapport.orders.customer_value.gamma_gamma import (
    GammaGammaParams,
    expected_average_spend,
    fit_gamma_gamma,
)
from rapport.orders.customer_value.summary import summarise_purchases
from rapport.orders.customer_value.tiers import TIER_SHARES, VALUE_TIERS, value_tiers

__all__ = [
    "TIER_SHARES",
    "VALUE_TIERS",
    "BgNbdParams",
    "GammaGammaParams",
    "PurchaseSummary",
    "expected_average_spend",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "probability_alive",
    "probability_purchase",
    "summarise_purchases",
    "value_tiers",
]
