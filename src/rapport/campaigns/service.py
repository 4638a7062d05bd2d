"""The campaigns domain's face: what other code may call. The code lives in private modules
(``segments/``, ``delivery/``, ``planning/``, ``producers``, ``privacy``); this module
re-exports what is public and lists it in ``__all__``."""

from __future__ import annotations  # noqa: I001 (one block of imports per part, in part order)

from rapport.campaigns.privacy import erase_customer_data, export_customer_data

# --- segments ---

# --- delivery ---

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

# --- producers ---

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
    # --- delivery ---
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
    # --- producers ---
]
