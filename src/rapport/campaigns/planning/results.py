"""A campaign's results: what the customers it reached did, against the control group it held
out, with the uplift and its 95% interval.

A customer counts from when they entered the campaign (their first delivery row was queued,
treated or held out alike, so both groups are measured over the same stretch of time) for
``conversion_days``. Treated customers are every customer in the treated group, sent or not
(a message suppressed for want of consent is part of what the campaign does: "intent to
treat"), so the comparison stays between two random halves of one audience.

- conversion: the share with at least one order in their window; the uplift's interval is
  Newcombe's hybrid score interval for a difference of proportions (from the two Wilson
  intervals), which behaves at 0% and 100% where the Wald interval does not;
- revenue per customer (order totals, minor units) and points redeemed per customer: means
  over every customer of the group (zero for those who bought or redeemed nothing), with a t
  interval whose lower bound is at least 0 (no customer spends or redeems less than nothing);
  the uplift's interval is Welch's t interval for a difference of means (it may be negative).

Without a control group, or with fewer than ``min_control`` customers in it, the results
say so and give no uplift."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from scipy import stats
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.campaigns.models import Campaign, Delivery
from rapport.campaigns.planning.editing import get_campaign
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.formatting import minor_to_major, minor_unit_digits

CONFIDENCE = 0.95
MIN_CONTROL = 30
_Z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))

State = Literal["ok", "not_launched", "no_control", "too_few_control"]


@dataclass(frozen=True)
class Interval:
    """An estimate and its 95% interval (None where there is nothing to estimate)."""

    value: float | None
    low: float | None
    high: float | None

    @classmethod
    def none(cls) -> Interval:
        return cls(None, None, None)


@dataclass(frozen=True)
class GroupResult:
    customers: int
    sent: int  # deliveries actually sent (treated); 0 for the control group
    converted: int
    conversion: Interval  # share of customers with an order in their window
    revenue_minor: int
    revenue_per_customer: Interval  # minor units
    points_redeemed: int
    points_per_customer: Interval


@dataclass(frozen=True)
class CampaignResults:
    campaign_id: int
    state: State
    note: str
    conversion_days: int
    # Until when the last customer's window runs; results may still move before then.
    window_closes_at: datetime | None
    complete: bool
    treated: GroupResult
    control: GroupResult
    conversion_uplift: Interval  # treated - control, as a share (0.02 = 2 points)
    revenue_uplift: Interval  # per customer, minor units
    points_uplift: Interval  # per customer
    currency: str = "EUR"  # the shop's (the loyalty program's): what the revenue is read in


# ---------------------------------------------------------------------------- arithmetic


def wilson(successes: int, n: int, z: float = _Z) -> Interval:
    """A proportion and its Wilson score interval."""
    if n <= 0:
        return Interval.none()
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0 or n successes the bound is exactly 0 or 1; rounding leaves a 1e-18 otherwise.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high)


def difference_of_proportions(
    treated: tuple[int, int], control: tuple[int, int], z: float = _Z
) -> Interval:
    """p_treated - p_control with Newcombe's hybrid score interval (his method 10)."""
    (x1, n1), (x2, n2) = treated, control
    first, second = wilson(x1, n1, z), wilson(x2, n2, z)
    if first.value is None or second.value is None:
        return Interval.none()
    assert first.low is not None
    assert first.high is not None
    assert second.low is not None
    assert second.high is not None
    p1, p2 = first.value, second.value
    difference = p1 - p2
    low = difference - math.sqrt((p1 - first.low) ** 2 + (second.high - p2) ** 2)
    high = difference + math.sqrt((first.high - p1) ** 2 + (p2 - second.low) ** 2)
    return Interval(difference, low, high)


def mean_interval(values: Sequence[float], *, floor: float | None = None) -> Interval:
    """A mean and its t interval; with ``floor``, a lower bound below it is raised to it (a
    mean of amounts that are never negative, revenue or points per customer, has no negative
    lower bound: the symmetric t interval of a few large orders among many zeros would
    give one)."""
    n = len(values)
    if n == 0:
        return Interval.none()
    mean = sum(values) / n
    if n < 2:
        return Interval(mean, None, None)
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * math.sqrt(variance / n)
    low = mean - half if floor is None else max(floor, mean - half)
    return Interval(mean, low, mean + half)


def difference_of_means(treated: Sequence[float], control: Sequence[float]) -> Interval:
    """mean(treated) - mean(control) with Welch's t interval (unequal variances)."""
    n1, n2 = len(treated), len(control)
    if n1 == 0 or n2 == 0:
        return Interval.none()
    m1, m2 = sum(treated) / n1, sum(control) / n2
    difference = m1 - m2
    if n1 < 2 or n2 < 2:
        return Interval(difference, None, None)
    v1 = sum((v - m1) ** 2 for v in treated) / (n1 - 1)
    v2 = sum((v - m2) ** 2 for v in control) / (n2 - 1)
    a, b = v1 / n1, v2 / n2
    standard_error = math.sqrt(a + b)
    if standard_error == 0:
        return Interval(difference, difference, difference)
    freedom = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, freedom)) * standard_error
    return Interval(difference, difference - half, difference + half)


# ---------------------------------------------------------------------------- reading


@dataclass
class _Member:
    group: str
    start: datetime
    sent: bool


def _members(db: Session, campaign_id: int) -> dict[str, _Member]:
    """Each customer of the campaign once: their group and when they entered it (their first
    delivery), and whether any of their messages was sent."""
    rows = db.execute(
        select(
            Delivery.customer_id,
            Delivery.grp,
            func.min(Delivery.queued_at),
            func.max(Delivery.sent_at),
        )
        .where(Delivery.campaign_id == campaign_id, Delivery.customer_id.is_not(None))
        .group_by(Delivery.customer_id, Delivery.grp)
    )
    members: dict[str, _Member] = {}
    for customer_id, group, first, last_sent in rows:
        if customer_id is None:
            continue
        start = clock.as_utc(first)
        known = members.get(customer_id)
        # The group is stable per customer; a change of control share mid-way could still
        # put one customer in both: the earliest entry decides.
        if known is None or start < known.start:
            members[customer_id] = _Member(group=group, start=start, sent=last_sent is not None)
    return members


def audience_sizes(db: Session, *, campaign_ids: Sequence[int]) -> dict[int, int]:
    """Per campaign, the customers who have entered it, treated and held out: the results'
    treated plus control customers (each customer counts once, whatever their deliveries),
    for triggered and Rapport's own campaigns as for one-offs. Campaigns nobody entered are
    left out."""
    if not campaign_ids:
        return {}
    rows = db.execute(
        select(Delivery.campaign_id, func.count(func.distinct(Delivery.customer_id)))
        .where(Delivery.campaign_id.in_(list(campaign_ids)), Delivery.customer_id.is_not(None))
        .group_by(Delivery.campaign_id)
    )
    return {int(campaign_id): int(count) for campaign_id, count in rows}


def _outcomes(
    db: Session, members: dict[str, _Member], days: int
) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """(orders, spend) and points redeemed per customer in their own window; customers who
    entered at the same moment (one launch batch, one event) are read together."""
    by_start: dict[datetime, list[str]] = defaultdict(list)
    for customer_id, member in members.items():
        by_start[member.start].append(customer_id)
    bought: dict[str, tuple[int, int]] = {}
    redeemed: dict[str, int] = {}
    for start, customer_ids in by_start.items():
        until = start + timedelta(days=days)
        for customer_id, totals in orders.order_totals_in_window(
            db, customer_ids=customer_ids, since=start, until=until
        ).items():
            bought[customer_id] = (totals.orders, totals.spend_minor)
        redeemed.update(
            loyalty.points_redeemed_in_window(
                db, customer_ids=customer_ids, since=start, until=until
            )
        )
    return bought, redeemed


def _group(
    customer_ids: list[str],
    members: dict[str, _Member],
    bought: dict[str, tuple[int, int]],
    redeemed: dict[str, int],
) -> tuple[GroupResult, list[float], list[float], int]:
    spend = [float(bought.get(c, (0, 0))[1]) for c in customer_ids]
    points = [float(redeemed.get(c, 0)) for c in customer_ids]
    converted = sum(1 for c in customer_ids if bought.get(c, (0, 0))[0] > 0)
    result = GroupResult(
        customers=len(customer_ids),
        sent=sum(1 for c in customer_ids if members[c].sent),
        converted=converted,
        conversion=wilson(converted, len(customer_ids)),
        revenue_minor=int(sum(spend)),
        revenue_per_customer=mean_interval(spend, floor=0.0),
        points_redeemed=int(sum(points)),
        points_per_customer=mean_interval(points, floor=0.0),
    )
    return result, spend, points, converted


def campaign_results(
    db: Session, *, campaign_id: int, min_control: int = MIN_CONTROL
) -> CampaignResults:
    """The campaign's results for its treated and control groups, with the uplifts."""
    campaign = get_campaign(db, campaign_id=campaign_id)
    members = _members(db, campaign.id)
    bought, redeemed = _outcomes(db, members, campaign.conversion_days)
    treated_ids = sorted(c for c, m in members.items() if m.group == "treated")
    control_ids = sorted(c for c, m in members.items() if m.group == "control")
    treated, treated_spend, treated_points, treated_converted = _group(
        treated_ids, members, bought, redeemed
    )
    control, control_spend, control_points, control_converted = _group(
        control_ids, members, bought, redeemed
    )
    window_closes_at = (
        max(m.start for m in members.values()) + timedelta(days=campaign.conversion_days)
        if members
        else None
    )
    state, note = _state(campaign, members, len(control_ids), min_control)
    if state == "ok":
        conversion_uplift = difference_of_proportions(
            (treated_converted, len(treated_ids)), (control_converted, len(control_ids))
        )
        revenue_uplift = difference_of_means(treated_spend, control_spend)
        points_uplift = difference_of_means(treated_points, control_points)
    else:
        conversion_uplift = revenue_uplift = points_uplift = Interval.none()
    return CampaignResults(
        campaign_id=campaign.id,
        state=state,
        note=note,
        conversion_days=campaign.conversion_days,
        window_closes_at=window_closes_at,
        complete=window_closes_at is not None and window_closes_at <= clock.now(),
        treated=treated,
        control=control,
        conversion_uplift=conversion_uplift,
        revenue_uplift=revenue_uplift,
        points_uplift=points_uplift,
        currency=loyalty.get_program(db).currency,
    )


def _state(
    campaign: Campaign, members: dict[str, _Member], control_size: int, min_control: int
) -> tuple[State, str]:
    if not members:
        return "not_launched", "Nobody has entered this campaign yet."
    if campaign.control_percent <= 0 and control_size == 0:
        return "no_control", (
            "This campaign holds out no control group, so what it changed cannot be told "
            "apart from what customers would have done anyway."
        )
    if control_size < min_control:
        return "too_few_control", (
            f"Not enough customers in the control group: {control_size} "
            f"(at least {min_control} are needed for an interval worth reading)."
        )
    return "ok", ""


def plain_amount(minor: float, currency: str) -> str:
    """Minor units of ``currency`` as a plain amount in its major unit, with its ISO 4217
    decimals: 107.3 EUR cents → "1.07", 107.3 yen → "107", 1073 fils (KWD) → "1.073"."""
    digits = minor_unit_digits(currency)
    return f"{minor_to_major(minor, currency):.{digits}f}"


def money_uplift(uplift: Interval, money: Callable[[float], str]) -> tuple[str, str, str] | None:
    """The revenue uplift's value and its interval's ends as text, with ``money`` writing an
    amount of minor units (the admin's: "€1.07", "-€1.57"): the value signed before the
    currency ("+€1.07"), the ends as amounts ("-€1.57", "€3.72"). The results table and
    :func:`reading` both write it so. None when there is no uplift."""
    if uplift.value is None or uplift.low is None or uplift.high is None:
        return None
    sign = "+" if uplift.value >= 0 else ""
    return sign + money(uplift.value), money(uplift.low), money(uplift.high)


def reading(results: CampaignResults, *, money: Callable[[float], str] | None = None) -> str:
    """The results in a sentence or two of plain language (the results page); ``money`` writes
    amounts of minor units (unless given, as in the API, plain amounts of the results'
    currency: "1.07" for EUR, "107" for JPY)."""
    if money is None:
        currency = results.currency
        money = lambda minor: plain_amount(minor, currency)  # noqa: E731
    if results.state != "ok":
        return results.note
    uplift = results.conversion_uplift
    assert uplift.value is not None
    points = uplift.value * 100
    parts: list[str] = []
    if uplift.low is not None and uplift.high is not None:
        low, high = uplift.low * 100, uplift.high * 100
        if low > 0:
            parts.append(
                f"The campaign raised conversion by {points:.1f} points "
                f"(95% interval {low:.1f} to {high:.1f}): more customers bought than would have."
            )
        elif high < 0:
            parts.append(
                f"Conversion was {-points:.1f} points lower than in the control group "
                f"(95% interval {low:.1f} to {high:.1f}): the campaign put customers off."
            )
        else:
            parts.append(
                f"Conversion differs by {points:+.1f} points from the control group, but the "
                f"95% interval ({low:.1f} to {high:.1f}) includes zero: no clear effect yet."
            )
    revenue = results.revenue_uplift
    written = money_uplift(revenue, money)
    if written is not None and revenue.low is not None and revenue.high is not None:
        clear = revenue.low > 0 or revenue.high < 0
        value, low_end, high_end = written
        parts.append(
            f"Revenue per customer {'changed' if clear else 'moved'} by {value}"
            f" (95% interval {low_end} to {high_end}){'' if clear else ', within chance'}."
        )
    if not results.complete:
        parts.append("Some customers' conversion windows are still open; figures may move.")
    return " ".join(parts)
