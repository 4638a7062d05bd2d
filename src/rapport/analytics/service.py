"""Figures for the admin overview: how the program and the customer experience are doing,
gathered through each domain's service functions (analytics reads every domain, writes none).

Every figure is computed here, typed, and described in ``docs/analytics.md``; the page only
formats them. Operations (keys, jobs, event processing) are on the settings pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.service import CONSENT_PURPOSES
from rapport.events import service as events
from rapport.events.service import HeldEventView
from rapport.feedback import service as feedback
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.charts import Chart, Series

ACTIVE_DAYS = 90  # a member is active with a points movement or an order this recent
TREND_MONTHS = 12


@dataclass(frozen=True)
class MonthScore:
    """One month of the NPS trend: ``None`` where nobody answered that month."""

    month: str  # YYYY-MM
    nps: float | None
    answers: int


@dataclass(frozen=True)
class Overview:
    as_of: datetime
    # Customers and the program's members (customers with a points account).
    customers: int
    members: int
    active_members: int  # points movement or order in the last ACTIVE_DAYS days
    # Points the program owes, and what they are worth in the program's currency.
    currency: str
    outstanding_points: int
    liability_minor: int
    # Every point issued, redeemed and expired: the loyalty pages' own figures, breakage too.
    points: loyalty.LifetimeFlows
    # NPS per month, oldest first (the last TREND_MONTHS months, this one included), and
    # over those months together.
    nps_trend: list[MonthScore]
    nps_year: float | None
    nps_answers: int
    # Shipped orders whose promised day came in the last 12 months, and those delivered by it.
    deliveries_due: int
    deliveries_on_time: int
    # Orders placed in the last 12 months (cancelled left out) and those with a return.
    orders_placed: int
    orders_returned: int
    # Spend (order totals as placed) in the last 12 months, members against other customers.
    member_spend_minor: int
    non_member_spend_minor: int
    # Tickets still open past their SLA due time, and all open tickets.
    tickets_past_sla: int
    tickets_open: int
    consent_shares: dict[str, float]

    @property
    def active_share(self) -> float | None:
        return self.active_members / self.members if self.members else None

    @property
    def breakage(self) -> float | None:
        """The share of the points ever issued (earned, or added by staff) that expired
        unused: the loyalty pages' own figure (``loyalty.LifetimeFlows.breakage``)."""
        return self.points.breakage

    @property
    def on_time_share(self) -> float | None:
        return self.deliveries_on_time / self.deliveries_due if self.deliveries_due else None

    @property
    def return_rate(self) -> float | None:
        return self.orders_returned / self.orders_placed if self.orders_placed else None

    @property
    def non_members(self) -> int:
        return max(0, self.customers - self.members)

    @property
    def revenue_per_member_minor(self) -> int | None:
        return round(self.member_spend_minor / self.members) if self.members else None

    @property
    def revenue_per_non_member_minor(self) -> int | None:
        if not self.non_members:
            return None
        return round(self.non_member_spend_minor / self.non_members)

    def nps_chart(self) -> Chart:
        return Chart(
            id="nps-trend",
            kind="line",
            labels=[one.month for one in self.nps_trend],
            series=[Series("NPS", [one.nps for one in self.nps_trend])],
            unit="score",
            y_min=-100,
            y_max=100,
            label_heading="Month",
        )

    def revenue_chart(self) -> Chart:
        return Chart(
            id="revenue-per-customer",
            kind="bar",
            labels=["Members", "Non-members"],
            series=[
                Series(
                    "Revenue per customer, last 12 months",
                    [self.revenue_per_member_minor, self.revenue_per_non_member_minor],
                )
            ],
            unit="money",
            currency=self.currency,
            label_heading="Customers",
        )

    def consent_chart(self) -> Chart:
        return Chart(
            id="consent-chart",
            kind="bar",
            labels=[purpose.replace("_", " ") for purpose in self.consent_shares],
            series=[Series("Said yes", list(self.consent_shares.values()))],
            unit="share",
            horizontal=True,
            y_max=100,
            label_heading="Purpose",
        )


def month_starts(now: datetime, months: int) -> list[datetime]:
    """The first instants (UTC) of the ``months`` months ending with ``now``'s, oldest first."""
    year, month = now.year, now.month
    starts = []
    for _ in range(months):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def nps_trend(db: Session, *, now: datetime) -> list[MonthScore]:
    """NPS per month for the last :data:`TREND_MONTHS` months (the feedback domain's
    ``trend``, the figures ``GET /v1/feedback/scores/trend`` serves, rounded as it does)."""
    starts = month_starts(now, TREND_MONTHS)
    found = {
        keyed.key: keyed.score
        for keyed in feedback.trend(db, kind="nps", period="month", since=starts[0])
    }
    trend = []
    for start in starts:
        month = start.strftime("%Y-%m")
        score = found.get(month)
        value = round(score.value, 2) if score is not None and score.value is not None else None
        trend.append(MonthScore(month=month, nps=value, answers=score.n if score else 0))
    return trend


def collect_overview(db: Session) -> Overview:
    now = clock.now()
    year_ago = now - timedelta(days=365)
    customer_count = customers.count_customers(db)
    members = loyalty.member_ids(db)
    recent = loyalty.member_ids(db, moved_since=now - timedelta(days=ACTIVE_DAYS))
    recent |= set(
        orders.order_totals_by_customer(db, since=now - timedelta(days=ACTIVE_DAYS), until=now)
    )
    owed = loyalty.liability(db)
    flows = loyalty.lifetime_flows(db)  # the loyalty page's own breakage figures
    trend = nps_trend(db, now=now)
    year_score = feedback.overall_score(db, kind="nps", since=month_starts(now, TREND_MONTHS)[0])
    kept = orders.promise_kept(db, by="channel", since=year_ago.date())
    placed, returned = orders.orders_returned_in_window(db, since=year_ago, until=now)
    spend = orders.order_totals_by_customer(db, since=year_ago, until=now)
    overdue = sum(line.open_overdue for line in feedback.sla_report(db, now=now))
    granted = customers.consent_counts(db)
    return Overview(
        as_of=now,
        customers=customer_count,
        members=len(members),
        active_members=len(recent & members),
        currency=owed.currency,
        outstanding_points=owed.outstanding_points,
        liability_minor=owed.value_minor,
        points=flows,
        nps_trend=trend,
        nps_year=round(year_score.value, 2) if year_score.value is not None else None,
        nps_answers=year_score.n,
        deliveries_due=sum(row.due for row in kept),
        deliveries_on_time=sum(row.on_time for row in kept),
        orders_placed=placed,
        orders_returned=returned,
        member_spend_minor=sum(t.spend_minor for c, t in spend.items() if c in members),
        non_member_spend_minor=sum(t.spend_minor for c, t in spend.items() if c not in members),
        tickets_past_sla=overdue,
        tickets_open=feedback.ticket_counts(db).get("open", 0),
        consent_shares={
            purpose: (granted.get(purpose, 0) / customer_count if customer_count else 0.0)
            for purpose in CONSENT_PURPOSES
        },
    )


@dataclass(frozen=True)
class Processing:
    """The event log, how far behind each processor is, and the events processors set aside
    (settings: event processing)."""

    events: int
    lag: dict[str, int]
    held_total: int
    held: list[HeldEventView]
    # Of held_total: those waiting, untried, behind an earlier held event of their customer
    # or order.
    held_behind: int = 0


def collect_processing(db: Session) -> Processing:
    held_total, held = events.held_events(db, limit=50)
    return Processing(
        events=events.count_events(db),
        lag=events.processor_lag(db),
        held_total=held_total,
        held=held,
        held_behind=events.count_held_behind(db),
    )
