"""The campaigns domain's face: what other code may call. The code lives in private modules
(``segments/``, ``delivery/``, ``planning/``, ``producers``, ``subscriptions/``, ``privacy``);
this module re-exports what is public and lists it in ``__all__``."""

from __future__ import annotations  # noqa: I001 (one block of imports per part, in part order)

from rapport.campaigns.privacy import erase_customer_data, export_customer_data

# --- segments ---
from rapport.campaigns.segments.conditions import (
    CONDITION_KINDS,
    Condition,
    SegmentDefinition,
    parse_definition,
)
from rapport.campaigns.segments.evaluation import (
    SegmentPreview,
    near_point_query,
    preview_segment,
    segment_query,
)
from rapport.campaigns.segments.membership import (
    create_segment,
    delete_segment,
    get_segment,
    iter_audience,
    list_segments,
    refresh_all_segments,
    refresh_customers,
    refresh_segment,
    segment_members,
    update_segment,
)

# --- delivery ---
from rapport.campaigns.delivery.inbox import inbox_messages, mark_read
from rapport.campaigns.delivery.policy import sending_policy, update_sending_policy
from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.rendering import (
    RenderedMessage,
    render_message,
    unsubscribe_url,
    validate_template,
)
from rapport.campaigns.delivery.sending import dispatch_due, drain, send_test
from rapport.campaigns.delivery.webhooks import (
    create_endpoint,
    list_endpoints,
    replay_delivery,
    verify_signature,
)

# --- planning ---
from rapport.campaigns.planning.control import in_control_group
from rapport.campaigns.planning.editing import (
    CampaignPage,
    CampaignSettings,
    TriggerSpec,
    create_campaign,
    ensure_system_campaign,
    get_campaign,
    get_templates,
    list_campaigns,
    set_template,
    update_campaign,
)
from rapport.campaigns.planning.gates import planning_verdict
from rapport.campaigns.planning.launching import (
    cancel_campaign,
    launch_campaign,
    launch_due,
    pause_campaign,
    resume_campaign,
    schedule_campaign,
    start_campaign,
)
from rapport.campaigns.planning.results import CampaignResults, campaign_results
from rapport.campaigns.planning.triggers import process_trigger_events

# --- producers ---
from rapport.campaigns.producers.alerts import alert_addresses
from rapport.campaigns.producers.messages import SYSTEM_CAMPAIGNS, SystemCampaign, system_campaign
from rapport.campaigns.producers.processor import produce_messages

# --- subscriptions ---
from rapport.campaigns.subscriptions.managing import (
    EVENT_TYPES as WEBHOOK_EVENT_TYPES,
    CreatedSubscription,
    SubscriptionView,
    create_subscription,
    delete_subscription,
    get_subscription,
    list_subscriptions,
    update_subscription,
)

PRIVACY_TABLES: tuple[str, ...] = (
    "campaign_segment_members",
    "campaign_deliveries",
    "campaign_delivery_history",
    "campaign_webhook_attempts",
    "campaign_inbox",
    "campaign_suppressions",
)

__all__ = [  # noqa: RUF022 (one block of names per part)
    "PRIVACY_TABLES",
    "erase_customer_data",
    "export_customer_data",
    # --- segments ---
    "CONDITION_KINDS",
    "Condition",
    "SegmentDefinition",
    "SegmentPreview",
    "create_segment",
    "delete_segment",
    "get_segment",
    "iter_audience",
    "list_segments",
    "near_point_query",
    "parse_definition",
    "preview_segment",
    "refresh_all_segments",
    "refresh_customers",
    "refresh_segment",
    "segment_members",
    "segment_query",
    "update_segment",
    # --- delivery ---
    "Recipient",
    "RenderedMessage",
    "create_endpoint",
    "dispatch_due",
    "drain",
    "inbox_messages",
    "list_endpoints",
    "mark_read",
    "queue_deliveries",
    "render_message",
    "replay_delivery",
    "send_test",
    "sending_policy",
    "unsubscribe_url",
    "update_sending_policy",
    "validate_template",
    "verify_signature",
    # --- planning ---
    "CampaignPage",
    "CampaignSettings",
    "TriggerSpec",
    "create_campaign",
    "ensure_system_campaign",
    "get_campaign",
    "get_templates",
    "in_control_group",
    "list_campaigns",
    "set_template",
    "update_campaign",
    "CampaignResults",
    "campaign_results",
    "cancel_campaign",
    "launch_campaign",
    "launch_due",
    "pause_campaign",
    "planning_verdict",
    "process_trigger_events",
    "resume_campaign",
    "schedule_campaign",
    "start_campaign",
    # --- producers ---
    "SYSTEM_CAMPAIGNS",
    "SystemCampaign",
    "alert_addresses",
    "produce_messages",
    "system_campaign",
    # --- subscriptions ---
    "WEBHOOK_EVENT_TYPES",
    "CreatedSubscription",
    "SubscriptionView",
    "create_subscription",
    "delete_subscription",
    "get_subscription",
    "list_subscriptions",
    "update_subscription",
]
