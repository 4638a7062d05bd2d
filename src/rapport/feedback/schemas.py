"""API shapes of the feedback domain: surveys, answers, scores, reviews and tickets."""

from __future__ import annotations

import ipaddress
from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AwareDatetime, Field, HttpUrl, field_validator

from rapport.customers import service as customers
from rapport.loyalty import service as loyalty
from rapport.platform.schemas import ReadModel, StrictModel

Kind = Literal["nps", "csat", "ces"]
Trigger = Literal[
    "after_delivery", "after_store_visit", "after_ticket_closed", "after_purchase", "manual"
]
TicketKind = Literal["complaint", "question", "return_problem", "delivery_problem"]
Channel = Literal["web", "app", "store", "call_center", "email", "survey"]
# The channels orders are placed in (an after_purchase survey's channel is one of them).
PurchaseChannel = Literal["web", "app", "store", "call_center"]
SURVEY_PURPOSE_MESSAGE = (
    "Survey invitations are sent by email, so a survey is asked only with email consent: "
    "use marketing_email (push or analytics consent does not cover an email)"
)
Locale = Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$", examples=["en", "fr"])]
# Rapport's id or the shop's own (external_id): see docs/api.md, "Customer references".
CustomerRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=customers.CUSTOMER_REF_MAX_LENGTH,
        description=customers.CUSTOMER_REF_DESCRIPTION,
    ),
]


class Labels(StrictModel):
    question: str = Field(min_length=1, max_length=300)
    comment: str = Field(default="Anything you would like to tell us?", max_length=300)
    low: str = Field(default="", max_length=60, description="Label under the lowest score")
    high: str = Field(default="", max_length=60, description="Label under the highest score")


class ExtraQuestion(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    labels: dict[Locale, str] = Field(min_length=1)


class SurveyIn(StrictModel):
    """A survey definition. Labels per locale; a customer sees their locale's, or English."""

    survey_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,59}$", examples=["nps-delivery"])
    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    trigger: Trigger
    channel: PurchaseChannel | None = Field(
        default=None, description="after_purchase: only purchases in this channel"
    )
    sampling_rate: float = Field(default=1.0, ge=0, le=1)
    fatigue_days: int = Field(
        default=30, ge=0, le=365, description="Nobody is asked again within this many days"
    )
    consent_purpose: Literal["marketing_email"] = Field(
        default="marketing_email",
        description="Invitations are emailed, so the consent asked is the email one",
    )
    link_days: int = Field(default=14, ge=1, le=90, description="How long a link stays valid")
    labels: dict[Locale, Labels] | None = Field(
        default=None,
        description="Default wording (English, French, German, Portuguese) if left out",
    )
    questions: list[ExtraQuestion] = Field(default_factory=list, max_length=5)
    active: bool = True

    @field_validator("channel", mode="before")
    @classmethod
    def _a_purchase_channel(cls, value: Any) -> Any:
        if value is not None and value not in get_args(PurchaseChannel):
            raise ValueError(
                f"No purchase channel {value!r}: use one of {', '.join(get_args(PurchaseChannel))}"
            )
        return value

    @field_validator("consent_purpose", mode="before")
    @classmethod
    def _emailed(cls, value: Any) -> Any:
        if value != "marketing_email":
            raise ValueError(SURVEY_PURPOSE_MESSAGE)
        return value


class SurveyOut(ReadModel):
    survey_id: str
    name: str
    kind: str
    trigger: str
    channel: str | None
    sampling_rate: float
    fatigue_days: int
    consent_purpose: str
    link_days: int
    labels: dict[str, Any]
    questions: list[Any]
    active: bool


class InvitationIn(StrictModel):
    """Ask a customer a survey now (the ``manual`` way; triggers do it from the event log)."""

    customer_id: CustomerRef
    order_id: str | None = Field(default=None, max_length=64)
    store_id: str | None = Field(default=None, max_length=40)
    channel: str | None = Field(default=None, max_length=20)


class InvitationOut(StrictModel):
    invitation_id: str | None
    invited: bool
    reason: str
    link: str | None = None
    expires_at: datetime | None = None


class AnswerIn(StrictModel):
    score: int = Field(ge=0, le=10)
    comment: str | None = Field(default=None, max_length=2000)
    answers: dict[str, str] = Field(default_factory=dict, max_length=5)


class ResponseIn(AnswerIn):
    """An answer given without an invitation (a till tablet, a kiosk, the app)."""

    survey_id: str = Field(min_length=1, max_length=60)
    customer_id: CustomerRef | None = None
    channel: str | None = Field(default=None, max_length=20)
    store_id: str | None = Field(default=None, max_length=40)
    order_id: str | None = Field(default=None, max_length=64)
    locale: Locale = "en"
    answered_at: AwareDatetime | None = None


class ResponseOut(ReadModel):
    response_id: str
    survey_id: str
    kind: str
    customer_id: str | None
    score: int
    comment: str | None
    stage: str
    channel: str | None
    store_id: str | None
    tier: str | None
    signals: dict[str, Any]
    ticket_id: str | None
    answered_at: datetime


class ScoreOut(StrictModel):
    key: str
    n: int
    value: float | None
    low: float | None
    high: float | None
    promoters: float | None = None
    passives: float | None = None
    detractors: float | None = None


class TargetIn(StrictModel):
    kind: Kind
    scope: Literal["all", "store", "channel"]
    scope_value: str = Field(default="", max_length=40)
    target: float = Field(ge=-100, le=100)
    window_days: int = Field(default=30, ge=1, le=365)
    min_responses: int = Field(default=10, ge=1, le=100_000)


class TargetOut(StrictModel):
    id: int
    kind: str
    scope: str
    scope_value: str
    target: float
    window_days: int
    score: ScoreOut
    below: bool
    state: Literal["too_few", "below", "on_target"] = Field(
        description="too_few: fewer answers than min_responses (none included), so not judged"
    )


class ActionPlanIn(StrictModel):
    """An action plan: who does what by when, for a score target and/or a comment theme."""

    owner: str = Field(min_length=1, max_length=200)
    action: str = Field(min_length=1, max_length=2000)
    due_on: date
    status: Literal["planned", "in_progress", "done", "dropped"] = "planned"
    target_id: int | None = None
    theme: str = Field(default="", max_length=120)


class ReviewIn(StrictModel):
    customer_id: CustomerRef | None = None
    sku: str = Field(min_length=1, max_length=64)
    order_id: str | None = Field(default=None, max_length=64)
    rating: int = Field(ge=1, le=5)
    title: str = Field(default="", max_length=200)
    text: str = Field(default="", max_length=5000)
    photos: list[HttpUrl] = Field(default_factory=list, max_length=10)
    locale: Locale = "en"
    device_id: str | None = Field(default=None, max_length=120)
    ip_address: str | None = Field(
        default=None, max_length=64, description="The reviewer's address; only a digest is kept"
    )

    @field_validator("ip_address")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        # Screening counts reviews per address: text that is no address would count as one.
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address; send the reviewer's IPv4 or IPv6 address, or "
                "leave it out"
            ) from None


class ReviewOut(ReadModel):
    review_id: str
    customer_id: str | None
    sku: str
    rating: int
    title: str
    body: str
    photos: list[Any]
    locale: str
    verified: bool
    status: str
    reasons: list[Any]
    created_at: datetime
    removed: str | None = Field(
        default=None,
        description=(
            '"removed at the reviewer\'s request" when its author was erased: the title and '
            "body are empty, the rating still counts in the product's summary"
        ),
    )


class ModerationIn(StrictModel):
    decision: Literal["publish", "reject"]


class RatingSummaryOut(StrictModel):
    sku: str
    reviews: int
    verified: int
    average: float | None
    weighted: float | None = Field(
        description="Average pulled towards the shop's mean (few reviews)"
    )
    distribution: dict[str, int]


class TicketIn(StrictModel):
    customer_id: CustomerRef | None = None
    order_id: str | None = Field(default=None, max_length=64)
    kind: TicketKind
    channel: Channel
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=10_000)


# The most apology points one resolution grants, through the API and the admin's form alike:
# loyalty's one cap on points a staff member gives by hand (goodwill points use it too).
APOLOGY_POINTS_MAX = loyalty.MANUAL_POINTS_MAX
RESOLUTION_MAX_LENGTH = 5000


class ResolveIn(StrictModel):
    resolution: str = Field(min_length=1, max_length=RESOLUTION_MAX_LENGTH)
    apology_points: int = Field(default=0, ge=0, le=APOLOGY_POINTS_MAX)


class TicketOut(ReadModel):
    ticket_id: str
    customer_id: str | None
    order_id: str | None
    kind: str
    channel: str
    subject: str
    status: str
    priority: int
    priority_reasons: list[Any]
    tier: str | None
    support_level: str
    sla_due_at: datetime
    opened_at: datetime
    opened_by: str | None = Field(
        description="Who opened it: the admin user's login, api:<key name>; null for a survey's"
    )
    resolved_at: datetime | None
    resolution: str | None
    resolved_by: str | None = Field(description="Who resolved it, as opened_by")
    apology_points: int
    apology_transaction_id: int | None
    response_id: str | None
