"""The control group: which customers a campaign holds out, stable per campaign and customer.

A customer's place is a hash of the campaign and the customer, not a random draw, so a launch
that runs again (or resumes after a crash, or a triggered campaign firing on its tenth event)
puts every customer in the same group every time, without storing anything first."""

from __future__ import annotations

import hashlib

# 2**64 buckets: far finer than any percentage anyone sets.
_BUCKETS = float(1 << 64)


def control_position(campaign_id: int, customer_id: str) -> float:
    """Where the customer falls for this campaign, uniform in [0, 100)."""
    digest = hashlib.sha256(f"{campaign_id}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _BUCKETS * 100.0


def in_control_group(campaign_id: int, customer_id: str, percent: float) -> bool:
    """Whether the campaign holds this customer out (``percent`` of customers, 0 to 100)."""
    if percent <= 0:
        return False
    return control_position(campaign_id, customer_id) < percent
