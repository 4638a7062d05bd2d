"""The baseline to beat: the customer's own smoothed past return rate."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np

from rapport.orders.return_risk.baskets import Basket, LabelledBasket
from rapport.orders.return_risk.features import (
    BasketFeatures,
    FloatArray,
    HistoryConfig,
    ReturnHistory,
)

# --- baseline ------------------------------------------------------------------------------


class HistoryBaseline:
    """The customer's own past return rate, pulled toward the overall rate.

    The score is the mean of a beta posterior: ``(r + k p) / (n + k)`` for a customer with
    ``r`` returned out of ``n`` closed baskets, overall training rate ``p`` and prior strength
    ``k``. A new customer (``n = 0``) gets exactly ``p``.

    Parameters
    ----------
    prior_strength : float, optional
        ``k``. When omitted, :meth:`fit_features` picks it from a small grid by training
        log-likelihood, so the baseline is as good as it honestly can be.
    """

    STRENGTHS: Final = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)

    def __init__(self, *, prior_strength: float | None = None) -> None:
        self.prior_strength = prior_strength
        self.rate: float | None = None

    def fit(
        self, labelled_baskets: Iterable[LabelledBasket], config: HistoryConfig | None = None
    ) -> HistoryBaseline:
        """Learn the overall rate (and ``k`` if not given) from past baskets.

        Parameters
        ----------
        labelled_baskets : iterable of LabelledBasket
            Training baskets.
        config : HistoryConfig, optional
            Label window used to decide which past labels a basket may see.

        Returns
        -------
        HistoryBaseline
            ``self``.
        """
        items = list(labelled_baskets)
        rows = ReturnHistory.stream(items, config)
        return self.fit_features(rows, [item.returned for item in items])

    def fit_features(
        self, rows: Sequence[BasketFeatures], returned: Sequence[bool]
    ) -> HistoryBaseline:
        """Like :meth:`fit`, from features already built by :class:`ReturnHistory`."""
        return self.fit_counts(
            [row.closed_baskets for row in rows], [row.returned_baskets for row in rows], returned
        )

    def fit_counts(
        self,
        closed_baskets: Sequence[int],
        returned_baskets: Sequence[int],
        returned: Sequence[bool],
    ) -> HistoryBaseline:
        """Like :meth:`fit_features`, from each basket's customer record alone (closed
        baskets before it, and how many came back): all the baseline reads, and what
        :meth:`ReturnHistory.replay` keeps."""
        if not returned or not len(closed_baskets) == len(returned_baskets) == len(returned):
            raise ValueError("need one label per row and at least one row")
        labels = np.asarray(returned, dtype=np.float64)
        closed = np.asarray(closed_baskets, dtype=np.float64)
        came_back = np.asarray(returned_baskets, dtype=np.float64)
        self.rate = float(labels.mean())
        if self.prior_strength is None:
            rate = self.rate
            scores = {
                strength: _log_likelihood(_smoothed(came_back, closed, rate, strength), labels)
                for strength in self.STRENGTHS
            }
            self.prior_strength = max(self.STRENGTHS, key=lambda strength: scores[strength])
        return self

    def predict_proba(self, basket: Basket, history: ReturnHistory) -> float:
        """Probability that something in ``basket`` comes back, from the customer's record."""
        return float(self.predict_features([history.features(basket)])[0])

    def predict_features(self, rows: Sequence[BasketFeatures]) -> FloatArray:
        """Scores for many baskets at once, from their features."""
        if self.rate is None or self.prior_strength is None:
            raise RuntimeError("fit the baseline first")
        return self._score(rows, self.rate, self.prior_strength)

    @staticmethod
    def _score(rows: Sequence[BasketFeatures], rate: float, strength: float) -> FloatArray:
        returned = np.array([row.returned_baskets for row in rows], dtype=np.float64)
        closed = np.array([row.closed_baskets for row in rows], dtype=np.float64)
        return _smoothed(returned, closed, rate, strength)


def _smoothed(returned: FloatArray, closed: FloatArray, rate: float, strength: float) -> FloatArray:
    """The beta posterior mean ``(r + k p) / (n + k)``."""
    smoothed: FloatArray = (returned + strength * rate) / (closed + strength)
    return smoothed


def _log_likelihood(probabilities: FloatArray, labels: FloatArray) -> float:
    clipped = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return float(np.sum(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))
