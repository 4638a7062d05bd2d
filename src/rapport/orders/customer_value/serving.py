# ruff: noqa: RUF003  (the papers' notation: α, γ, Γ and the minus sign)
"""Customer lifetime value on the orders Rapport holds: fit, store, read, select.

``fit_customer_value`` reads every known customer's orders (cancelled ones left out), builds
the repeat-purchase summary in days and minor units, fits BG/NBD and Gamma-Gamma, and rewrites
``customer_values`` (one row per customer with an order) and appends the parameters to
``customer_value_fits``, in one transaction. It runs daily (``orders.fit_customer_value``),
from the demo, and from ``rapport orders fit-customer-value``.

The predicted value is the expected number of purchase days in the next 365 days times the
expected spend per purchase day, undiscounted, in minor units of the shop's currency: the one
most orders are in (:func:`fit_currency`); orders in other currencies are left out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import ColumnElement, Select, delete, func, select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
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
from rapport.orders.customer_value.tiers import VALUE_TIERS, tier_at_rank, value_tiers
from rapport.orders.models import CustomerValueFit, CustomerValueScore, Order
from rapport.platform import clock
from rapport.platform.db import read_only, upsert_rows
from rapport.platform.errors import InvalidInput

VALUE_HORIZON_DAYS = 365
SHORT_HORIZON_DAYS = 90
_WRITE_CHUNK = 5000
_ERASED_CHUNK = 5000


@dataclass(frozen=True)
class CustomerValue:
    """One customer's value as last fitted."""

    customer_id: str
    expected_purchases_90d: float
    p_alive: float
    predicted_value_minor: int  # next 365 days
    value_tier: str  # "top1" | "top5" | "top20" | "rest"
    fitted_at: datetime
    frequency: int = 0  # repeat purchase days when fitted
    recency_days: float = 0.0
    age_days: float = 0.0
    monetary_minor: int = 0  # mean value of the repeat purchase days
    expected_spend_minor: int = 0  # per future purchase day
    p_purchase_90d: float = 0.0  # at least one purchase in the next 90 days


@dataclass(frozen=True)
class ValueFit:
    """The parameters of one fit: BG/NBD (time in days) and Gamma-Gamma (minor units; None
    when no customer had a repeat purchase to learn spend from)."""

    fitted_at: datetime
    customers: int
    repeat_customers: int
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    p: float | None
    q: float | None
    gamma: float | None
    spend_log_likelihood: float | None
    seconds: float

    @property
    def bgnbd(self) -> BgNbdParams:
        return BgNbdParams(self.r, self.alpha, self.a, self.b, self.log_likelihood)

    @property
    def gamma_gamma(self) -> GammaGammaParams | None:
        if self.p is None or self.q is None or self.gamma is None:
            return None
        return GammaGammaParams(self.p, self.q, self.gamma, self.spend_log_likelihood or 0.0)


@dataclass(frozen=True)
class TierSummary:
    tier: str
    customers: int
    predicted_value_minor: int
    mean_p_alive: float


# Seconds in a day, and the Julian day of 1970-01-01: purchase times become UTC day numbers in
# SQL, so a million orders never become Python datetimes.
_DAY_SECONDS = 86400.0
_UNIX_EPOCH_JULIAN_DAY = 2440587.5


def _day_number(db: Session) -> ColumnElement[Any]:
    """Days since 1970-01-01 (UTC, fractional) of ``orders.placed_at``, in SQL."""
    if db.get_bind().dialect.name == "sqlite":  # stored as UTC text
        return func.julianday(Order.placed_at) - _UNIX_EPOCH_JULIAN_DAY
    return func.extract("epoch", Order.placed_at) / _DAY_SECONDS


def fit_currency(db: Session) -> str | None:
    """The currency the values are fitted in: the one most of the known customers' orders (not
    cancelled) are in, the shop's, ties to the first by code; ``None`` without orders. Totals
    in other currencies are never added to it (there is no exchange rate): those orders are
    left out of the fit, as the return-risk features leave them out of amounts."""
    orders = func.count()
    return db.scalar(
        select(Order.currency)
        .where(Order.customer_id.is_not(None), Order.status != "cancelled")
        .group_by(Order.currency)
        .order_by(orders.desc(), Order.currency)
        .limit(1)
    )


def _purchases(db: Session) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Every known customer's purchases in :func:`fit_currency` as (ids, customer codes, UTC
    day numbers, amounts)."""
    ids: dict[str, int] = {}
    codes: list[int] = []
    days: list[float] = []
    amounts: list[int] = []
    rows = db.execute(
        select(Order.customer_id, _day_number(db), Order.total_minor).where(
            Order.customer_id.is_not(None),
            Order.status != "cancelled",
            Order.currency == fit_currency(db),
        )
    )
    for customer_id, day, total_minor in rows:
        if customer_id is None:  # excluded by the query; here for the type checker
            continue
        codes.append(ids.setdefault(customer_id, len(ids)))
        days.append(float(day))
        amounts.append(int(total_minor))
    return (
        list(ids),
        np.asarray(codes, dtype=np.int64),
        np.floor(np.asarray(days, dtype=np.float64)).astype(np.int64),
        np.asarray(amounts, dtype=np.float64),
    )


def _today(now: datetime) -> float:
    """Today's UTC day number, on the scale of ``_day_number``."""
    return float(np.floor(now.timestamp() / _DAY_SECONDS))


def _erased(db: Session, customer_ids: list[str]) -> set[str]:
    erased: set[str] = set()
    for start in range(0, len(customer_ids), _ERASED_CHUNK):
        erased |= customers.erased_among(db, set(customer_ids[start : start + _ERASED_CHUNK]))
    return erased


def fit_customer_value(db: Session) -> ValueFit | None:
    """Fit BG/NBD and Gamma-Gamma on the orders held now and rewrite every customer's value
    and tier. None, and nothing stored, when no known customer has an order yet. Erased
    customers get no row.

    The orders are read in a read-only transaction (on SQLite it neither waits for nor
    blocks writers), and the values are written in chunks of a few thousand, each its own
    short transaction: a million customers never hold SQLite's write lock for more than a
    moment. Until the last chunk, readers see some customers' new values and others' previous
    ones; then the rows of customers who no longer qualify go and the fit is recorded."""
    started = time.perf_counter()
    now = clock.now()
    read_only(db)
    ids, codes, days, amounts = _purchases(db)
    erased = _erased(db, ids)
    db.commit()  # ends the read transaction
    if erased:
        keep = np.asarray([customer_id not in erased for customer_id in ids])[codes]
        codes, days, amounts = codes[keep], days[keep], amounts[keep]
    customer_codes, summary = summarise_purchases(codes, days, amounts, end_day=_today(now))
    if len(summary) == 0:
        db.execute(delete(CustomerValueScore))
        db.commit()
        return None
    bgnbd = fit_bgnbd(summary.frequency, summary.recency, summary.age)
    repeat = int(np.count_nonzero((summary.frequency > 0) & (summary.monetary > 0)))
    spend_params = fit_gamma_gamma(summary.frequency, summary.monetary) if repeat >= 3 else None
    scores = _score(bgnbd, spend_params, summary, float(np.mean(amounts)) if amounts.size else 0.0)
    _write(db, [ids[code] for code in customer_codes], summary, scores, now)
    fit = CustomerValueFit(
        fitted_at=now,
        customers=len(summary),
        repeat_customers=repeat,
        r=bgnbd.r,
        alpha=bgnbd.alpha,
        a=bgnbd.a,
        b=bgnbd.b,
        log_likelihood=bgnbd.log_likelihood,
        p=spend_params.p if spend_params else None,
        q=spend_params.q if spend_params else None,
        gamma=spend_params.gamma if spend_params else None,
        spend_log_likelihood=spend_params.log_likelihood if spend_params else None,
        seconds=round(time.perf_counter() - started, 3),
    )
    db.add(fit)
    db.commit()
    return _fit_out(fit)


@dataclass(frozen=True)
class _Scores:
    expected_90d: np.ndarray
    p_alive: np.ndarray
    p_purchase_90d: np.ndarray
    spend: np.ndarray
    predicted_value: np.ndarray
    tiers: np.ndarray


def _score(
    bgnbd: BgNbdParams,
    spend_params: GammaGammaParams | None,
    summary: PurchaseSummary,
    mean_spend: float,
) -> _Scores:
    x, t_x, age = summary.frequency, summary.recency, summary.age
    expected_90d = expected_purchases(bgnbd, SHORT_HORIZON_DAYS, x, t_x, age)
    expected_year = expected_purchases(bgnbd, VALUE_HORIZON_DAYS, x, t_x, age)
    if spend_params is not None:
        spend = expected_average_spend(spend_params, x, summary.monetary)
    else:
        # Too few repeat customers to learn spend from: everyone's mean order value.
        spend = np.full(len(summary), mean_spend)
    predicted = np.rint(expected_year * spend)
    return _Scores(
        expected_90d=expected_90d,
        p_alive=probability_alive(bgnbd, x, t_x, age),
        p_purchase_90d=probability_purchase(bgnbd, SHORT_HORIZON_DAYS, x, t_x, age),
        spend=spend,
        predicted_value=predicted,
        tiers=value_tiers(predicted),
    )


def _write(
    db: Session,
    customer_ids: list[str],
    summary: PurchaseSummary,
    scores: _Scores,
    now: datetime,
) -> None:
    """Upsert every customer's row, one short transaction per chunk; then delete the rows
    this fit did not write (customers erased, or whose orders were all cancelled)."""
    table = CustomerValueScore.__table__
    columns = [column.name for column in table.columns if column.name != "customer_id"]

    def rows(start: int, stop: int) -> list[dict[str, Any]]:
        return [_row(customer_ids[i], summary, scores, i, now) for i in range(start, stop)]

    for start in range(0, len(customer_ids), _WRITE_CHUNK):
        chunk = rows(start, min(start + _WRITE_CHUNK, len(customer_ids)))
        # Someone erased since the read gets no row back (erasure deleted theirs): checked
        # in the transaction that writes, which on SQLite excludes the erasure's.
        erased = customers.erased_among(db, {row["customer_id"] for row in chunk})
        upsert_rows(
            db,
            table,
            [row for row in chunk if row["customer_id"] not in erased],
            key_columns=["customer_id"],
            update_columns=columns,
        )
        db.commit()
    db.execute(delete(CustomerValueScore).where(CustomerValueScore.fitted_at != now))


def _row(
    customer_id: str, summary: PurchaseSummary, scores: _Scores, i: int, fitted_at: datetime
) -> dict[str, Any]:
    """Row ``i`` of a fit as the columns of ``customer_values``."""
    return {
        "customer_id": customer_id,
        "frequency": int(summary.frequency[i]),
        "recency_days": float(summary.recency[i]),
        "age_days": float(summary.age[i]),
        "monetary_minor": round(float(summary.monetary[i])),
        "expected_purchases_90d": float(scores.expected_90d[i]),
        "p_alive": float(scores.p_alive[i]),
        "p_purchase_90d": float(scores.p_purchase_90d[i]),
        "expected_spend_minor": round(float(scores.spend[i])),
        "predicted_value_minor": int(scores.predicted_value[i]),
        "value_tier": str(scores.tiers[i]),
        "fitted_at": fitted_at,
    }


def merge_customer_value(db: Session, *, source_id: str, target_id: str) -> bool:
    """After a merge moved ``source_id``'s orders to ``target_id``: no value is kept under
    the merged-away id, and the survivor's is worked out again from all their orders as the
    fit in use saw them (its parameters, orders placed by its date; no refit), its tier by
    its rank among the values stored. In the caller's transaction. Nothing is worked out when
    neither profile had a value (no fit yet, or no order when it ran: the next fit gives
    one). Whether the survivor has a value now."""
    rows = list(
        db.scalars(
            select(CustomerValueScore).where(
                CustomerValueScore.customer_id.in_((source_id, target_id))
            )
        )
    )
    fit = value_fit(db)
    for row in rows:
        db.delete(row)
    db.flush()
    if fit is None or not rows:
        return False
    purchases = db.execute(
        select(_day_number(db), Order.total_minor).where(
            Order.customer_id == target_id,
            Order.status != "cancelled",
            Order.currency == fit_currency(db),
        )
    ).all()
    days = np.floor(np.asarray([float(day) for day, _ in purchases], dtype=np.float64))
    amounts = np.asarray([int(total) for _, total in purchases], dtype=np.float64)
    _, summary = summarise_purchases(
        np.zeros(len(purchases), dtype=np.int64),
        days.astype(np.int64),
        amounts,
        end_day=_today(fit.fitted_at),
    )
    if len(summary) == 0:
        return False
    # Without Gamma-Gamma every stored spend is the mean order value the fit saw.
    mean_spend = float(np.mean([row.expected_spend_minor for row in rows]))
    scores = _score(fit.bgnbd, fit.gamma_gamma, summary, mean_spend)
    values = _row(target_id, summary, scores, 0, fit.fitted_at)
    predicted = values["predicted_value_minor"]
    others = int(db.scalar(select(func.count()).select_from(CustomerValueScore)) or 0)
    above = int(
        db.scalar(
            select(func.count())
            .select_from(CustomerValueScore)
            .where(CustomerValueScore.predicted_value_minor > predicted)
        )
        or 0
    )
    values["value_tier"] = tier_at_rank(above + 1, others + 1)
    db.add(CustomerValueScore(**values))
    db.flush()
    return True


def _fit_out(row: CustomerValueFit) -> ValueFit:
    return ValueFit(
        fitted_at=clock.as_utc(row.fitted_at),
        customers=row.customers,
        repeat_customers=row.repeat_customers,
        r=row.r,
        alpha=row.alpha,
        a=row.a,
        b=row.b,
        log_likelihood=row.log_likelihood,
        p=row.p,
        q=row.q,
        gamma=row.gamma,
        spend_log_likelihood=row.spend_log_likelihood,
        seconds=row.seconds,
    )


def value_fit(db: Session) -> ValueFit | None:
    """The parameters in use (the newest fit), or None before the first fit."""
    row = db.scalars(select(CustomerValueFit).order_by(CustomerValueFit.id.desc()).limit(1)).first()
    return _fit_out(row) if row is not None else None


def _value_out(row: CustomerValueScore) -> CustomerValue:
    return CustomerValue(
        customer_id=row.customer_id,
        expected_purchases_90d=row.expected_purchases_90d,
        p_alive=row.p_alive,
        predicted_value_minor=row.predicted_value_minor,
        value_tier=row.value_tier,
        fitted_at=clock.as_utc(row.fitted_at),
        frequency=row.frequency,
        recency_days=row.recency_days,
        age_days=row.age_days,
        monetary_minor=row.monetary_minor,
        expected_spend_minor=row.expected_spend_minor,
        p_purchase_90d=row.p_purchase_90d,
    )


def customer_value(db: Session, *, customer_id: str) -> CustomerValue | None:
    """The customer's value as last fitted; None before a fit or without an order."""
    row = db.get(CustomerValueScore, customer_id)
    return _value_out(row) if row is not None else None


def expected_purchases_within(db: Session, *, customer_id: str, days: float) -> float | None:
    """Expected purchase days in the ``days`` after the last fit, from the fitted parameters
    and the customer's history then; None without a fit or a row."""
    if days < 0:
        raise InvalidInput("days must not be negative", field="days")
    row = db.get(CustomerValueScore, customer_id)
    fit = value_fit(db)
    if row is None or fit is None:
        return None
    value = expected_purchases(fit.bgnbd, days, [row.frequency], [row.recency_days], [row.age_days])
    return float(value[0])


def value_audience(
    *,
    min_predicted_value_minor: int | None = None,
    max_predicted_value_minor: int | None = None,
    value_tiers: Sequence[str] | None = None,
    min_p_alive: float | None = None,
    max_p_alive: float | None = None,
    min_p_purchase_90d: float | None = None,
    max_p_purchase_90d: float | None = None,
) -> Select[tuple[str]]:
    """A SELECT of the customer ids whose stored value matches every bound given (inclusive);
    with no bound, every customer with a value. For segments: run it, or use it as a
    subquery (``customer_id IN (...)``). ``p_purchase_90d`` (a purchase within 90 days) is
    the bound to use for one-off buyers, whose ``p_alive`` is always 1 under BG/NBD."""
    query: Select[tuple[str]] = cast("Select[tuple[str]]", select(CustomerValueScore.customer_id))
    if min_predicted_value_minor is not None:
        query = query.where(CustomerValueScore.predicted_value_minor >= min_predicted_value_minor)
    if max_predicted_value_minor is not None:
        query = query.where(CustomerValueScore.predicted_value_minor <= max_predicted_value_minor)
    if value_tiers is not None:
        unknown = sorted(set(value_tiers) - set(VALUE_TIERS))
        if unknown:
            raise InvalidInput(
                f"unknown value tier {unknown[0]!r}; known: {', '.join(VALUE_TIERS)}",
                field="value_tiers",
            )
        query = query.where(CustomerValueScore.value_tier.in_(list(value_tiers)))
    if min_p_alive is not None:
        query = query.where(CustomerValueScore.p_alive >= min_p_alive)
    if max_p_alive is not None:
        query = query.where(CustomerValueScore.p_alive <= max_p_alive)
    if min_p_purchase_90d is not None:
        query = query.where(CustomerValueScore.p_purchase_90d >= min_p_purchase_90d)
    if max_p_purchase_90d is not None:
        query = query.where(CustomerValueScore.p_purchase_90d <= max_p_purchase_90d)
    return query


def value_tier_summary(db: Session) -> list[TierSummary]:
    """Customers, total predicted value and mean probability alive per tier, top tier first."""
    rows = {
        tier: (count, total, mean)
        for tier, count, total, mean in db.execute(
            select(
                CustomerValueScore.value_tier,
                func.count(),
                func.coalesce(func.sum(CustomerValueScore.predicted_value_minor), 0),
                func.coalesce(func.avg(CustomerValueScore.p_alive), 0.0),
            ).group_by(CustomerValueScore.value_tier)
        )
    }
    return [
        TierSummary(
            tier=tier,
            customers=int(rows.get(tier, (0, 0, 0.0))[0]),
            predicted_value_minor=int(rows.get(tier, (0, 0, 0.0))[1]),
            mean_p_alive=float(rows.get(tier, (0, 0, 0.0))[2]),
        )
        for tier in VALUE_TIERS
    ]


def top_customers(db: Session, *, limit: int = 20) -> list[CustomerValue]:
    """The customers of highest predicted value (at most 200)."""
    limit = max(1, min(limit, 200))
    return [
        _value_out(row)
        for row in db.scalars(
            select(CustomerValueScore)
            .order_by(
                CustomerValueScore.predicted_value_minor.desc(), CustomerValueScore.customer_id
            )
            .limit(limit)
        )
    ]
