# ruff: noqa: RUF002, RUF003  (the papers' notation: α, γ, Γ and the minus sign)
"""The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005, "Counting your customers
the easy way: an alternative to the Pareto/NBD model", Marketing Science 24(2)).

While alive, a customer buys as a Poisson process of rate λ ~ Gamma(r, α); after every
purchase they drop out ("die") with probability p ~ Beta(a, b). A customer is summarised by
``frequency`` x (repeat purchases: every purchase day after the first), ``recency`` t_x (time
from the first to the last purchase) and ``age`` T (time from the first purchase to the end of
the observation window). Times are in one unit (weeks for the paper's CDNOW figures, days for
retailers); α is in that unit, r, a and b are unitless.

Everything is computed in log space on whole numpy arrays (one pass for a million customers).
The fit maximises the likelihood (paper, equation 6) over log-parameters with L-BFGS-B within
bounds; customers with the same (x, t_x, T) are folded into one weighted row first, and time is
rescaled so the optimiser sees α near 1 whatever the unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1, roots_jacobi

FloatArray = NDArray[np.float64]

# Parameters are searched in log space within these bounds: wide enough for any retailer,
# narrow enough that gammaln and exp never overflow while the optimiser explores.
_LOG_BOUNDS = (np.log(1e-6), np.log(1e6))


@dataclass(frozen=True)
class BgNbdParams:
    """Fitted BG/NBD parameters; ``log_likelihood`` is the total over the fitted customers."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")


@dataclass(frozen=True)
class PurchaseSummary:
    """Per-customer repeat-purchase summary, arrays of one length (one row per customer)."""

    frequency: FloatArray  # x: repeat purchases (purchase days after the first)
    recency: FloatArray  # t_x: first to last purchase
    age: FloatArray  # T: first purchase to the end of the observation window
    monetary: FloatArray  # mean value of the repeat purchases (0 where x == 0)

    def __len__(self) -> int:
        return int(self.frequency.shape[0])


def _arrays(
    frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64)
    t_x = np.asarray(recency, dtype=np.float64)
    big_t = np.asarray(age, dtype=np.float64)
    if not (x.shape == t_x.shape == big_t.shape):
        raise ValueError("frequency, recency and age must have the same shape")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > big_t + 1e-9):
        raise ValueError("need frequency >= 0 and 0 <= recency <= age")
    return x, t_x, big_t


def _log_dropout_odds(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, big_t: FloatArray
) -> FloatArray:
    """log of [a / (b + x - 1)] · [(α + T) / (α + t_x)]^(r + x): the odds, given the history,
    that the customer dropped out right after their last purchase (−inf when x = 0: a
    customer who never came back cannot have dropped out after a repeat purchase)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = (
            np.log(a)
            - np.log(np.maximum(b + x - 1.0, 1e-300))
            + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
        )
    return np.where(x > 0, odds, -np.inf)


def log_likelihood_terms(
    params: BgNbdParams | tuple[float, float, float, float],
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
) -> FloatArray:
    """Each customer's log-likelihood (paper, equation 6)."""
    r, alpha, a, b = _unpack(params)
    x, t_x, big_t = _arrays(frequency, recency, age)
    return _log_likelihood(r, alpha, a, b, x, t_x, big_t)


def _log_likelihood(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, big_t: FloatArray
) -> FloatArray:
    # log[Γ(r+x) α^r / Γ(r)] + log[B(a, b+x) / B(a, b)]
    common = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x)
        - gammaln(b)
        - gammaln(a + b + x)
    )
    alive_to_t = -(r + x) * np.log(alpha + big_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        died_at_t_x = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1.0, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    result: FloatArray = common + np.logaddexp(alive_to_t, died_at_t_x)
    return result


def _weighted_sum(weights: FloatArray, values: FloatArray) -> float:
    """Σ weights·values without BLAS: ``np.dot`` hands this to a threaded BLAS, which on a
    busy machine spends more time waking threads than adding."""
    return float(np.sum(weights * values))


def _fold_rows(*columns: FloatArray) -> tuple[list[FloatArray], FloatArray]:
    """Identical rows folded into one, with their count as weight (a lexsort and a diff:
    much faster than ``np.unique(axis=0)`` on a million rows)."""
    order = np.lexsort(columns[::-1])
    ordered = [column[order] for column in columns]
    starts = np.ones(order.size, dtype=bool)
    for column in ordered:
        starts[1:] &= column[1:] == column[:-1]
    starts = ~starts
    starts[0] = True
    first = np.flatnonzero(starts)
    weights = np.diff(np.append(first, order.size)).astype(np.float64)
    return [column[first] for column in ordered], weights


def _log_likelihood_and_gradient(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: FloatArray,
    t_x: FloatArray,
    big_t: FloatArray,
    weights: FloatArray,
    x_levels: tuple[FloatArray, NDArray[np.intp]] | None = None,
) -> tuple[float, FloatArray]:
    """The weighted total log-likelihood and its exact gradient in (r, α, a, b): exact
    derivatives let L-BFGS-B converge in tens of evaluations on a million customers. The
    special functions depend on x only, so they are computed once per distinct x."""
    levels, at = x_levels if x_levels is not None else np.unique(x, return_inverse=True)
    repeat = x > 0
    log_alive = -(r + x) * np.log(alpha + big_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_died = np.where(
            repeat,
            np.log(a) - np.log(np.maximum(b + x - 1.0, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    mixed = np.logaddexp(log_alive, log_died)
    w_alive = np.exp(log_alive - mixed)  # the share of each customer's likelihood ...
    w_died = np.exp(log_died - mixed)  # ... from "alive at T" and from "died at t_x"
    common = (
        gammaln(r + levels)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + levels)
        - gammaln(b)
        - gammaln(a + b + levels)
    )[at]
    value = _weighted_sum(weights, common + mixed)
    psi_ab_x = digamma(a + b + levels)[at]
    d_r = (digamma(r + levels) - digamma(r) + np.log(alpha))[at]
    d_r -= w_alive * np.log(alpha + big_t) + w_died * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (w_alive / (alpha + big_t) + w_died / (alpha + t_x))
    d_a = digamma(a + b) - psi_ab_x + w_died / a
    with np.errstate(divide="ignore", invalid="ignore"):
        died_b = np.where(repeat, w_died / np.maximum(b + x - 1.0, 1e-300), 0.0)
    d_b = digamma(a + b) + (digamma(b + levels) - digamma(b))[at] - psi_ab_x - died_b
    gradient = np.array([_weighted_sum(weights, d) for d in (d_r, d_alpha, d_a, d_b)])
    return value, gradient


def _unpack(params: BgNbdParams | tuple[float, float, float, float]) -> tuple[float, ...]:
    if isinstance(params, BgNbdParams):
        return params.r, params.alpha, params.a, params.b
    return tuple(float(v) for v in params)


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    *,
    initial: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters for these customers.

    Customers are folded by identical (x, t_x, T) into weighted rows, and time is divided by
    the mean age so that the optimiser starts near α; α is scaled back to the caller's unit.
    """
    x, t_x, big_t = _arrays(frequency, recency, age)
    if x.size == 0:
        raise ValueError("no customers to fit")
    scale = float(np.mean(big_t)) or 1.0
    (ux, ut_x, ut), weights = _fold_rows(x, t_x / scale, big_t / scale)

    levels = np.unique(ux, return_inverse=True)

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(log_params)
        value, gradient = _log_likelihood_and_gradient(
            r, alpha, a, b, ux, ut_x, ut, weights, x_levels=levels
        )
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return 1e300, np.zeros(4)
        # The negative log-likelihood, and its gradient in log-parameters (chain rule: ·θ).
        return -value, -gradient * np.exp(log_params)

    best = minimize(
        objective,
        np.log(np.asarray(initial, dtype=np.float64)),
        jac=True,
        method="L-BFGS-B",
        bounds=[_LOG_BOUNDS] * 4,
        options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10},
    )
    r, alpha, a, b = (float(v) for v in np.exp(best.x))
    alpha *= scale
    # The likelihood is a density in time (units^-x): report it in the caller's unit.
    in_unit = _log_likelihood(r, alpha, a, b, ux, ut_x * scale, ut * scale)
    return BgNbdParams(r=r, alpha=alpha, a=a, b=b, log_likelihood=_weighted_sum(weights, in_unit))


def probability_alive(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> FloatArray:
    """P(alive | x, t_x, T) (paper, equation 14): 1 for a customer who never came back
    (under BG/NBD one can only drop out right after a purchase)."""
    x, t_x, big_t = _arrays(frequency, recency, age)
    odds = _log_dropout_odds(params.r, params.alpha, params.a, params.b, x, t_x, big_t)
    result: FloatArray = expit(-odds)
    return result


def expected_purchases(
    params: BgNbdParams,
    horizon: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next ``horizon`` time units (paper,
    equation 10)."""
    x, t_x, big_t = _arrays(frequency, recency, age)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-6:
        a = 1.0 + 1e-6  # the formula's removable singularity at a = 1
    if abs(a + b - 1.0) < 1e-6:
        b += 1e-6  # and at a + b = 1 for x = 0 (2F1's c = 0)
    t = float(horizon)
    if t <= 0:
        return np.zeros_like(x)
    bracket = _one_minus_silent_product(r, alpha, a, b, x, big_t, t)
    numerator = (a + b + x - 1.0) / (a - 1.0) * bracket
    failed = ~np.isfinite(numerator)
    if np.any(failed):
        numerator = numerator.copy()
        numerator[failed] = _expected_purchases_if_alive(
            r, alpha, a, b, x[failed], big_t[failed], t
        )
    odds = _log_dropout_odds(r, alpha, a, b, x, t_x, big_t)
    # numerator / (1 + odds), with the odds in log space
    result: FloatArray = numerator * expit(-odds)
    return np.maximum(result, 0.0)


def _one_minus_silent_product(
    r: float, alpha: float, a: float, b: float, x: FloatArray, big_t: FloatArray, t: float
) -> FloatArray:
    """1 − ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; t/(α+T+t)), the bracket of the
    paper's equation 10, in log space; NaN where scipy's 2F1 fails (r + x very large: a
    nearly homogeneous purchase rate), for the caller to integrate instead."""
    log_base = np.log(alpha + big_t) - np.log(alpha + big_t + t)  # log(1 − z)
    with np.errstate(all="ignore"):
        hyper = np.asarray(
            hyp2f1(r + x, b + x, a + b + x - 1.0, t / (alpha + big_t + t)), dtype=np.float64
        )
        good = np.isfinite(hyper) & (hyper != 0)
        log_abs = np.where(good, (r + x) * log_base + np.log(np.abs(hyper)), np.nan)
        # 2F1 is negative when a + b + x − 1 < 0 (tiny a and b): 1 − (−e^L) = 1 + e^L.
        result: FloatArray = np.where(hyper > 0, -np.expm1(log_abs), 1.0 + np.exp(log_abs))
    return result


_QUADRATURE_NODES = 48


def _expected_purchases_if_alive(
    r: float, alpha: float, a: float, b: float, x: FloatArray, big_t: FloatArray, t: float
) -> FloatArray:
    """E[Y(t) | alive at T] by quadrature, where the closed form fails. Alive at T, the rate
    is Gamma(r + x, α + T) and the dropout probability Beta(a, b + x) a posteriori, and a
    customer with rate λ and dropout p buys (1 − e^(−λpt)) / p times on average; so

        E = ∫ (1 − (1 + pt/(α+T))^−(r+x)) / p · Beta(p; a, b + x) dp,

    a smooth integrand under a Beta weight: Gauss-Jacobi nodes, one set per distinct x."""
    result = np.empty_like(x)
    for level in np.unique(x):
        rows = x == level
        nodes, weights = roots_jacobi(_QUADRATURE_NODES, b + level - 1.0, a - 1.0)
        p = (1.0 + nodes) / 2.0  # the Beta(a, b + x) variable on (0, 1)
        scaled = np.outer(t / (alpha + big_t[rows]), p)
        buys = -np.expm1(-(r + level) * np.log1p(scaled))  # 1 − E[e^(−λpt)]
        result[rows] = (buys / p) @ weights / weights.sum()
    return result


def probability_purchase(
    params: BgNbdParams,
    horizon: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
) -> FloatArray:
    """P(at least one purchase in the next ``horizon`` | x, t_x, T).

    Under BG/NBD a customer drops out only right after a purchase, so one who is alive at T
    buys again within t unless their Poisson clock stays silent, which, with the rate's
    posterior Gamma(r + x, α + T), has probability ((α + T) / (α + T + t))^(r + x). Unlike
    P(alive), which is 1 for everyone who never came back, this falls the longer a customer
    has been silent: the figure to read for one-off buyers.
    """
    x, t_x, big_t = _arrays(frequency, recency, age)
    r, alpha = params.r, params.alpha
    alive = probability_alive(params, x, t_x, big_t)
    silent = (r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + float(horizon)))
    result: FloatArray = alive * -np.expm1(silent)
    return result


def total_log_likelihood(params: BgNbdParams, summary: PurchaseSummary) -> float:
    """The sample's log-likelihood under ``params`` (the paper reports −9582.4 on CDNOW)."""
    terms = log_likelihood_terms(params, summary.frequency, summary.recency, summary.age)
    return float(np.sum(terms))
