"""The campaigns domain's face: what other code may call. The code lives in private modules
(``segments/``, ``delivery/``, ``planning/``, ``producers``, ``privacy``); this module
re-exports what is public and lists it in ``__all__``."""

from __future__ import annotations

from rapport.campaigns.privacy import erase_customer_data, export_customer_data

# --- segments ---

# --- delivery ---

# --- planning ---

# --- producers ---

PRIVACY_TABLES: tuple[str, ...] = (
    "campaign_segment_members",
    "campaign_deliveries",
    "campaign_delivery_history",
    "campaign_webhook_attempts",
    "campaign_inbox",
    "campaign_suppressions",
)

__all__ = [
    "PRIVACY_TABLES",
    "erase_customer_data",
    "export_customer_data",
    # --- segments ---
    # --- delivery ---
    # --- planning ---
    # --- producers ---
]
