"""The events the feedback domain appends to the log: one typed class per event type.

Their fields are the stored ``properties``; the customer, channel and time are the event's
own columns. ``review_verified`` is the one other domains act on (the loyalty program rewards
it); ``ticket_resolved`` prompts the ``after_ticket_closed`` surveys of this domain.
"""

from __future__ import annotations

from typing import ClassVar

from rapport.platform.domain_events import DomainEvent

__all__ = [
    "ReviewPublished",
    "ReviewSubmitted",
    "ReviewVerified",
    "ScoreBelowTarget",
    "SurveyAnswered",
    "SurveyInvited",
    "TicketBreached",
    "TicketOpened",
    "TicketResolved",
]


class SurveyInvited(DomainEvent):
    """A customer was asked a survey (consented, sampled, not asked any survey recently)."""

    event_type: ClassVar[str] = "survey_invited"
    domain: ClassVar[str] = "feedback"

    invitation_id: str
    survey_id: str
    stage: str
    """The journey stage the survey asks about (``after_delivery``, ``after_purchase``, …)."""
    order_id: str | None
    """The order the survey asks about, if any."""


class SurveyAnswered(DomainEvent):
    """A survey was answered, through an invitation or without one (kiosk, app, till)."""

    event_type: ClassVar[str] = "survey_answered"
    domain: ClassVar[str] = "feedback"

    response_id: str
    survey_id: str
    kind: str
    """``nps``, ``csat`` or ``ces``."""
    score: int


class ReviewSubmitted(DomainEvent):
    """A product review was written and screened: published, or held for a moderator."""

    event_type: ClassVar[str] = "review_submitted"
    domain: ClassVar[str] = "feedback"

    review_id: str
    sku: str
    rating: int
    status: str
    """``published`` or ``flagged`` (held for a moderator)."""
    reasons: list[str]
    """The screening rules that held it (empty when published)."""


class ReviewPublished(DomainEvent):
    """A product review became visible to shoppers: at submission when screening held
    nothing, or when a moderator published a held one (again after a take-down)."""

    event_type: ClassVar[str] = "review_published"
    domain: ClassVar[str] = "feedback"

    review_id: str
    sku: str
    rating: int
    verified: bool
    """The reviewer received the product (a verified buyer)."""
    order_id: str | None
    locale: str
    moderated: bool
    """Published by a moderator rather than at submission."""


class ReviewVerified(DomainEvent):
    """A verified buyer's review was published: announced once per review, which the loyalty
    program rewards."""

    event_type: ClassVar[str] = "review_verified"
    domain: ClassVar[str] = "feedback"

    review_id: str
    sku: str
    rating: int


class TicketOpened(DomainEvent):
    """A support ticket was opened (by a customer, an agent or a detractor's answer)."""

    event_type: ClassVar[str] = "ticket_opened"
    domain: ClassVar[str] = "feedback"

    ticket_id: str
    kind: str
    """``complaint``, ``question``, ``return_problem`` or ``delivery_problem``."""
    order_id: str | None
    priority: int


class TicketResolved(DomainEvent):
    """A support ticket was resolved, with how long it took and any apology points."""

    event_type: ClassVar[str] = "ticket_resolved"
    domain: ClassVar[str] = "feedback"

    ticket_id: str
    kind: str
    order_id: str | None
    resolution_hours: float
    """Hours from opening to resolution, to two decimals."""
    within_sla: bool
    apology_points: int
    """Points granted through the loyalty ledger (0 when none)."""


class TicketBreached(DomainEvent):
    """A ticket passed its SLA due time unresolved, announced once per ticket: by the
    scheduled check while it is still open (``open``), or at its resolution when it was
    resolved late before the check saw it. ``occurred_at`` is the due time."""

    event_type: ClassVar[str] = "ticket_breached"
    domain: ClassVar[str] = "feedback"

    ticket_id: str
    kind: str
    order_id: str | None
    priority: int
    support_level: str
    """``standard``, ``priority`` or ``dedicated``."""
    sla_due_at: str
    """The due time that passed (ISO 8601)."""
    open: bool
    """Still open when announced (false: resolved late)."""


class ScoreBelowTarget(DomainEvent):
    """A score over its target's window fell below the target (once a day per target)."""

    event_type: ClassVar[str] = "score_below_target"
    domain: ClassVar[str] = "feedback"

    kind: str
    scope: str
    """``all``, ``store`` or ``channel``."""
    scope_value: str
    """The store or channel (empty for the whole business)."""
    target: float
    score: float
    """The score over the window, to two decimals."""
    responses: int
