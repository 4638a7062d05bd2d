"""Return risk before the sale: how likely is something in this basket to come back, and why.

The pieces, in the order they are used (one module each: ``baskets``, ``features``, ``model``
with ``reasons``, ``baseline``, ``incentives``; ``serving`` trains and scores on the orders
Rapport holds):

- plain records (:class:`BasketLine`, :class:`Basket`, :class:`LabelledBasket`) that the orders
  domain builds from its tables and importers build from CSV files;
- :class:`ReturnHistory`, a streaming feature builder that walks baskets in time order and
  describes each one using only what was known when it was placed (the customer's record and
  returns, bracketing, discount depth, smoothed SKU, product-family and category rates);
- :class:`ReturnRiskModel`, calibrated boosted trees, a calibrated logistic regression or the
  mean of the two (the blend) over those features, whichever has the highest PR AUC on a
  validation window at the end of the training period, with :meth:`ReturnRiskModel.explain`
  for short human-readable reasons;
- :class:`HistoryBaseline`, the customer's own smoothed past return rate, to beat;
- :func:`suggest_incentive`, which turns a risk into an offer only where it pays.

A basket's return label is only *known* once its label window (30 days by default) has closed:
until then "not returned yet" is not the same as "kept". The history therefore counts a past
basket's label in return rates only from ``placed_at + label_window`` on, for the customer,
the SKUs, the product families and the categories alike; a return that was made
(``LabelledBasket.returned_at``) is known as an event from just after that moment. Those two
rules are what keep features free of the future.

Saved models are ``.npz`` files of plain arrays plus a JSON header, read with
``allow_pickle=False``: loading never runs code from the file, and serving needs numpy only.
"""

from __future__ import annotations

from rapport.orders.return_risk.baseline import HistoryBaseline
from rapport.orders.return_risk.baskets import Basket, BasketLine, LabelledBasket
from rapport.orders.return_risk.features import BasketFeatures, HistoryConfig, ReturnHistory
from rapport.orders.return_risk.incentives import IncentiveSuggestion, Offer, suggest_incentive
from rapport.orders.return_risk.model import BoostingParams, FitReport, ReturnRiskModel

__all__ = [
    "Basket",
    "BasketFeatures",
    "BasketLine",
    "BoostingParams",
    "FitReport",
    "HistoryBaseline",
    "HistoryConfig",
    "IncentiveSuggestion",
    "LabelledBasket",
    "Offer",
    "ReturnHistory",
    "ReturnRiskModel",
    "suggest_incentive",
]
