"""The feedback domain's face: the verbs and reads other code calls for surveys, scores,
reviews and tickets. The code lives in private modules by concept (``surveys/``, ``scores/``,
``reviews/``, ``tickets``, ``personal_data``); this module names what is public.

Every write owns its transaction (``commit=False`` joins the caller's) and appends its event
(:mod:`rapport.feedback.events`): ``survey_invited``, ``survey_answered``, ``review_submitted``,
``review_verified`` (which the loyalty program rewards), ``ticket_opened``, ``ticket_resolved``
and ``score_below_target``. Other domains are read only through their services: customers
(locale, consent), orders (delivery dates, what a customer received), loyalty (tier and support
level, apology points).
"""

from __future__ import annotations

from rapport.feedback.customer_view import customer_responses, customer_reviews
from rapport.feedback.personal_data import (
    PRIVACY_TABLES,
    erase_customer_data,
    export_customer_data,
    sweep_free_text,
)
from rapport.feedback.reviews.history import ImportedReview, import_reviews
from rapport.feedback.reviews.moderation import (
    count_reviews,
    get_review,
    moderate_review,
    moderation_queue,
)
from rapport.feedback.reviews.ratings import (
    PRIOR_WEIGHT,
    REMOVED_AT_REQUEST,
    RatingSummary,
    product_reviews,
    rating_summaries,
    rating_summary,
    removed_at_request,
)
from rapport.feedback.reviews.submission import (
    DUPLICATE_CANDIDATES,
    DUPLICATE_LOOKBACK,
    address_digest,
    submit_review,
)
from rapport.feedback.schemas import (
    ActionPlanIn,
    ResponseIn,
    ReviewIn,
    SurveyIn,
    TargetIn,
    TicketIn,
)
from rapport.feedback.scores.plans import (
    count_action_plans,
    get_action_plan,
    list_action_plans,
    save_action_plan,
)
from rapport.feedback.scores.reports import (
    BREAKDOWNS,
    Keyed,
    comment_themes,
    moments,
    overall_score,
    period_of,
    scores_by,
    trend,
)
from rapport.feedback.scores.targets import (
    TargetStatus,
    check_targets,
    recent_alerts,
    set_target,
    target_status,
)
from rapport.feedback.surveys.answers import (
    AlreadyAnswered,
    InvitationWithdrawn,
    LinkExpired,
    answer_invitation,
    record_response,
)
from rapport.feedback.surveys.definitions import get_survey, list_surveys, save_survey
from rapport.feedback.surveys.invitations import (
    InviteDecision,
    Occasion,
    get_invitation,
    invitations_not_sent,
    invitations_not_to_send,
    invite,
    last_invited,
    order_signals,
    sampled,
    withdraw_invitations,
)
from rapport.feedback.surveys.links import path as survey_link_path
from rapport.feedback.surveys.links import url as survey_link_url
from rapport.feedback.surveys.triggers import process_feedback_events
from rapport.feedback.surveys.wording import DEFAULT_LABELS, labels_for, question_text
from rapport.feedback.tickets import (
    HIGH_VALUE_MAJOR,
    ISSUE_WEIGHT,
    LEVEL_SLA_FACTOR,
    LEVEL_WEIGHT,
    SLA_HOURS,
    SlaLine,
    customer_tickets,
    customer_value,
    find_tickets,
    get_ticket,
    open_ticket,
    prioritise,
    resolve_ticket,
    sla_due,
    sla_report,
    ticket_counts,
    ticket_queue,
)
from rapport.platform.idempotency import BeforeCommit

__all__ = [
    "BREAKDOWNS",
    "DEFAULT_LABELS",
    "DUPLICATE_CANDIDATES",
    "DUPLICATE_LOOKBACK",
    "HIGH_VALUE_MAJOR",
    "ISSUE_WEIGHT",
    "LEVEL_SLA_FACTOR",
    "LEVEL_WEIGHT",
    "PRIOR_WEIGHT",
    "PRIVACY_TABLES",
    "REMOVED_AT_REQUEST",
    "SLA_HOURS",
    "ActionPlanIn",
    "AlreadyAnswered",
    "BeforeCommit",
    "ImportedReview",
    "InvitationWithdrawn",
    "InviteDecision",
    "Keyed",
    "LinkExpired",
    "Occasion",
    "RatingSummary",
    "ResponseIn",
    "ReviewIn",
    "SlaLine",
    "SurveyIn",
    "TargetIn",
    "TargetStatus",
    "TicketIn",
    "address_digest",
    "answer_invitation",
    "check_targets",
    "comment_themes",
    "count_action_plans",
    "count_reviews",
    "customer_responses",
    "customer_reviews",
    "customer_tickets",
    "customer_value",
    "erase_customer_data",
    "export_customer_data",
    "find_tickets",
    "get_action_plan",
    "get_invitation",
    "get_review",
    "get_survey",
    "get_ticket",
    "import_reviews",
    "invitations_not_sent",
    "invitations_not_to_send",
    "invite",
    "labels_for",
    "last_invited",
    "list_action_plans",
    "list_surveys",
    "moderate_review",
    "moderation_queue",
    "moments",
    "open_ticket",
    "order_signals",
    "overall_score",
    "period_of",
    "prioritise",
    "process_feedback_events",
    "product_reviews",
    "question_text",
    "rating_summaries",
    "rating_summary",
    "recent_alerts",
    "record_response",
    "removed_at_request",
    "resolve_ticket",
    "sampled",
    "save_action_plan",
    "save_survey",
    "scores_by",
    "set_target",
    "sla_due",
    "sla_report",
    "submit_review",
    "survey_link_path",
    "survey_link_url",
    "sweep_free_text",
    "target_status",
    "ticket_counts",
    "ticket_queue",
    "trend",
    "withdraw_invitations",
]
