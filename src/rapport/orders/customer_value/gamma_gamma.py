# ruff: noqa: RUF002, RUF003  (the papers' notation: α, γ, Γ and the minus sign)
"""The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV:
using iso-value curves for customer base analysis", Journal of Marketing Research 42(4); and
Fader & Hardie's note "The Gamma-Gamma model of monetary value", 2013).

A customer's transaction values are Gamma(p, ν) around their own mean p/ν, and ν varies
across customers as Gamma(q, γ). Only customers with at least one repeat purchase carry
information (x ≥ 1 and their mean repeat value z̄); their likelihood is

    Γ(px + q) / (Γ(px) Γ(q)) · γ^q · z̄^(px−1) · x^(px) / (γ + x z̄)^(px + q)

The fit works in log space over log-parameters (L-BFGS-B within bounds), with the amounts
divided by their mean so that γ starts near 1 whatever the currency's minor unit; γ is scaled
back to the caller's unit. p and q are unitless.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from rapport.orders.customer_value.bgnbd import _weighted_sum

FloatArray = NDArray[np.float64]

_LOG_BOUNDS = (np.log(1e-6), np.log(1e6))
# q must stay above 1 for the population's mean spend, γp / (q − 1), to exist.
_LOG_Q_BOUNDS = (np.log(1.0 + 1e-6), np.log(1e6))


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float
    log_likelihood: float = float("nan")

    @property
    def population_mean(self) -> float:
        """The mean spend per transaction across customers, γp / (q − 1)."""
        return self.gamma * self.p / (self.q - 1.0)


def _log_likelihood(
    p: float, q: float, gamma: float, x: FloatArray, mean_value: FloatArray
) -> FloatArray:
    px = p * x
    result: FloatArray = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(mean_value)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * mean_value)
    )
    return result


def _log_likelihood_and_gradient(
    p: float,
    q: float,
    gamma: float,
    x: FloatArray,
    mean_value: FloatArray,
    weights: FloatArray,
    x_levels: tuple[FloatArray, NDArray[np.intp]] | None = None,
) -> tuple[float, FloatArray]:
    """The weighted total log-likelihood and its exact gradient in (p, q, γ); the special
    functions depend on x only, so they are computed once per distinct x."""
    levels, at = x_levels if x_levels is not None else np.unique(x, return_inverse=True)
    px = p * x
    log_pooled = np.log(gamma + x * mean_value)
    log_value = np.log(mean_value)
    log_x = np.log(x)
    value = _weighted_sum(
        weights,
        (gammaln(p * levels + q) - gammaln(p * levels) - gammaln(q))[at]
        + q * np.log(gamma)
        + (px - 1.0) * log_value
        + px * log_x
        - (px + q) * log_pooled,
    )
    psi_pxq = digamma(p * levels + q)
    d_p = x * ((psi_pxq - digamma(p * levels))[at] + log_value + log_x - log_pooled)
    d_q = (psi_pxq - digamma(q))[at] + np.log(gamma) - log_pooled
    d_gamma = q / gamma - (px + q) / (gamma + x * mean_value)
    gradient = np.array([_weighted_sum(weights, d) for d in (d_p, d_q, d_gamma)])
    return value, gradient


def _repeat_customers(frequency: ArrayLike, monetary: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    if x.shape != m.shape:
        raise ValueError("frequency and monetary must have the same shape")
    keep = (x > 0) & (m > 0)
    return x[keep], m[keep]


def fit_gamma_gamma(
    frequency: ArrayLike,
    monetary: ArrayLike,
    *,
    initial: tuple[float, float, float] = (1.0, 2.0, 1.0),
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from the customers with at least one repeat
    purchase of positive value (the others are left out, as in the paper)."""
    x, m = _repeat_customers(frequency, monetary)
    if x.size == 0:
        raise ValueError("no repeat customers to fit spend on")
    scale = float(np.mean(m))
    # Spend is continuous: rows rarely repeat, so they are not folded.
    ux, um = x, m / scale
    weights = np.ones_like(ux)

    levels = np.unique(ux, return_inverse=True)

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        p, q, gamma = np.exp(log_params)
        value, gradient = _log_likelihood_and_gradient(
            p, q, gamma, ux, um, weights, x_levels=levels
        )
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return 1e300, np.zeros(3)
        return -value, -gradient * np.exp(log_params)

    best = minimize(
        objective,
        np.log(np.asarray(initial, dtype=np.float64)),
        jac=True,
        method="L-BFGS-B",
        bounds=[_LOG_BOUNDS, _LOG_Q_BOUNDS, _LOG_BOUNDS],
        options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10},
    )
    p, q, gamma = (float(v) for v in np.exp(best.x))
    gamma *= scale
    in_unit = _log_likelihood(p, q, gamma, ux, um * scale)
    return GammaGammaParams(p=p, q=q, gamma=gamma, log_likelihood=_weighted_sum(weights, in_unit))


def expected_average_spend(
    params: GammaGammaParams, frequency: ArrayLike, monetary: ArrayLike
) -> FloatArray:
    """E[M | x, z̄]: the customer's expected spend per future transaction, a weighted mean of
    the population's mean and their own repeat mean (weight px / (px + q − 1)); customers
    without a repeat purchase get the population's mean."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    own = np.where((x > 0) & (m > 0), 1.0, 0.0)
    px = params.p * x * own
    weight = px / (px + params.q - 1.0)
    result: FloatArray = (1.0 - weight) * params.population_mean + weight * np.where(
        own > 0, m, 0.0
    )
    return result
