"""API shapes of campaigns' planning: campaigns and their templates, scheduling, previews,
test sends and results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from rapport.campaigns.planning.editing import MAX_RADIUS_KM, RowId, parse_trigger
from rapport.campaigns.planning.results import CampaignResults, GroupResult, Interval
from rapport.customers import service as customers
from rapport.platform.schemas import ReadModel, StrictModel


class CampaignChanges(StrictModel):
    """The settings to change; those left out stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: Literal["one_off", "scheduled", "triggered"] | None = None
    purpose: Literal["marketing", "service"] | None = None
    channel: Literal["email", "webhook", "inbox"] | None = None
    webhook_endpoint_id: RowId | None = None
    segment_id: RowId | None = None
    scheduled_at: AwareDatetime | None = None
    trigger: dict[str, Any] | None = None
    store_id: str | None = Field(default=None, max_length=64)
    radius_km: float | None = Field(default=None, gt=0, le=MAX_RADIUS_KM)
    categories: list[Annotated[str, Field(min_length=1, max_length=300)]] | None = Field(
        default=None, max_length=20
    )

    @field_validator("trigger")
    @classmethod
    def _trigger_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return parse_trigger(value).model_dump() if value else value

    control_percent: float | None = Field(default=None, ge=0, le=90)
    conversion_days: int | None = Field(default=None, ge=1, le=90)


class TemplateIn(StrictModel):
    subject: str = Field(default="", max_length=300)
    body: str = Field(min_length=1, max_length=100_000)


class TemplateOut(ReadModel):
    channel: str
    locale: str
    subject: str
    body: str
    updated_at: datetime


class CampaignOut(ReadModel):
    id: int
    key: str | None
    name: str
    kind: str
    purpose: str
    channel: str
    webhook_endpoint_id: int | None
    segment_id: int | None
    status: str
    scheduled_at: datetime | None
    trigger: dict[str, Any]
    store_id: str | None
    radius_km: float | None
    categories: list[str]
    control_percent: float
    conversion_days: int
    audience_count: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    failure_reason: str | None = Field(
        default=None,
        description="Status failed: why the launch could not go out and what to do (the "
        "setting to fix, then launch again); null otherwise",
    )


class CampaignDetail(CampaignOut):
    templates: list[TemplateOut] = Field(default_factory=list)


class CampaignList(BaseModel):
    items: list[CampaignOut]
    total: int
    offset: int
    limit: int


class ScheduleIn(StrictModel):
    scheduled_at: AwareDatetime = Field(
        description="When to send, with its offset (Z for UTC); in the future. A time without "
        "one is refused (422 naming scheduled_at)"
    )


class TestSendIn(StrictModel):
    customer_id: str = Field(
        min_length=1,
        max_length=customers.CUSTOMER_REF_MAX_LENGTH,
        description=customers.CUSTOMER_REF_DESCRIPTION,
    )
    to_address: str | None = Field(default=None, max_length=320)


class MessageOut(BaseModel):
    subject: str
    body: str
    text: str = ""
    unsubscribe_url: str = ""


class IntervalOut(BaseModel):
    value: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, interval: Interval) -> IntervalOut:
        return cls(value=interval.value, low=interval.low, high=interval.high)


class GroupOut(BaseModel):
    customers: int
    sent: int
    converted: int
    conversion: IntervalOut
    revenue_minor: int
    revenue_per_customer_minor: IntervalOut
    points_redeemed: int
    points_redeemed_per_customer: IntervalOut

    @classmethod
    def of(cls, group: GroupResult) -> GroupOut:
        return cls(
            customers=group.customers,
            sent=group.sent,
            converted=group.converted,
            conversion=IntervalOut.of(group.conversion),
            revenue_minor=group.revenue_minor,
            revenue_per_customer_minor=IntervalOut.of(group.revenue_per_customer),
            points_redeemed=group.points_redeemed,
            points_redeemed_per_customer=IntervalOut.of(group.points_per_customer),
        )


class ResultsOut(BaseModel):
    campaign_id: int
    state: Literal["ok", "not_launched", "no_control", "too_few_control"]
    note: str
    reading: str
    conversion_days: int
    window_closes_at: datetime | None
    complete: bool
    treated: GroupOut
    control: GroupOut
    conversion_uplift: IntervalOut = Field(description="treated - control, as a share")
    revenue_uplift_minor: IntervalOut = Field(description="per customer, minor units")
    points_uplift: IntervalOut = Field(description="points redeemed per customer")

    @classmethod
    def of(cls, results: CampaignResults, reading: str) -> ResultsOut:
        return cls(
            campaign_id=results.campaign_id,
            state=results.state,
            note=results.note,
            reading=reading,
            conversion_days=results.conversion_days,
            window_closes_at=results.window_closes_at,
            complete=results.complete,
            treated=GroupOut.of(results.treated),
            control=GroupOut.of(results.control),
            conversion_uplift=IntervalOut.of(results.conversion_uplift),
            revenue_uplift_minor=IntervalOut.of(results.revenue_uplift),
            points_uplift=IntervalOut.of(results.points_uplift),
        )
