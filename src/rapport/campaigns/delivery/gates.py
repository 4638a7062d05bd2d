"""The gates every delivery passes at SEND time, in bulk for a batch (a few queries per batch,
none per delivery):

1. consent for the purpose and channel, erasure and merges (``customers.contactable``):
   marketing needs the channel's consent (email: ``marketing_email``; webhook: the endpoint's
   ``consent_purpose``; inbox: ``marketing_push``); service messages need a live, unerased
   profile; staff messages have no customer and pass;
2. suppressions (hard bounces, complaints) for the customer and channel;
3. quiet hours in the customer's time zone (marketing only): deferred to the end of the
   quiet hours, not dropped;
4. the frequency cap per customer and channel (marketing only): sent marketing deliveries in
   the policy's window, plus those already passed earlier in the same batch.

A merged-away customer's message goes to the profile it was merged into.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.policy import ChannelPolicy
from rapport.campaigns.delivery.rendering import CHANNEL_PURPOSES
from rapport.campaigns.models import Campaign, Delivery, Suppression, WebhookEndpoint
from rapport.customers import service as customers


@dataclass(frozen=True)
class Pending:
    """A claimed delivery about to be gated."""

    delivery_id: int
    campaign: Campaign
    customer_id: str | None
    channel: str
    endpoint: WebhookEndpoint | None = None


@dataclass(frozen=True)
class Verdict:
    action: str  # "send" | "suppress" | "defer"
    reason: str = ""
    until: datetime | None = None
    # The live profile to send to (after merges); None for staff messages.
    customer_id: str | None = None


def needed_purpose(
    campaign: Campaign, channel: str, endpoint: WebhookEndpoint | None = None
) -> str:
    """The gate purpose a message needs: the channel's marketing consent, or 'service'."""
    if campaign.purpose != "marketing":
        return customers.SERVICE
    if channel == "webhook":
        return endpoint.consent_purpose if endpoint else "marketing_push"
    return CHANNEL_PURPOSES[channel]


def in_quiet_hours(local: datetime, policy: ChannelPolicy) -> datetime | None:
    """The end of the quiet hours (local time) when ``local`` falls inside them, else None."""
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return None
    hour = local.hour
    quiet = start <= hour < end if start < end else (hour >= start or hour < end)
    if not quiet:
        return None
    day = local.date() if hour < end else local.date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, end, tzinfo=local.tzinfo)


def _zone(name: str | None, default: str) -> ZoneInfo:
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def gate_batch(
    db: Session,
    items: Sequence[Pending],
    *,
    policies: dict[str, ChannelPolicy],
    time_zones: dict[str, str | None],
    now: datetime,
) -> dict[int, Verdict]:
    """A verdict per delivery id. ``time_zones`` maps the batch's customers to their zone."""
    verdicts: dict[int, Verdict] = {}
    by_purpose: dict[str, list[Pending]] = defaultdict(list)
    for item in items:
        if item.campaign.purpose == "staff" or item.customer_id is None:
            verdicts[item.delivery_id] = Verdict("send")
        else:
            by_purpose[needed_purpose(item.campaign, item.channel, item.endpoint)].append(item)

    live: dict[int, str] = {}
    for purpose, group in by_purpose.items():
        allowed = customers.contactable(
            db, customer_ids=[i.customer_id for i in group if i.customer_id], purpose=purpose
        )
        refused = [i for i in group if i.customer_id not in allowed]
        reachable: dict[str, str] = {}
        if refused and purpose != customers.SERVICE:
            reachable = customers.contactable(
                db,
                customer_ids=[i.customer_id for i in refused if i.customer_id],
                purpose=customers.SERVICE,
            )
        for item in group:
            assert item.customer_id is not None
            if item.customer_id in allowed:
                live[item.delivery_id] = allowed[item.customer_id]
            elif item.customer_id in reachable:
                verdicts[item.delivery_id] = Verdict("suppress", f"no {purpose} consent")
            else:
                verdicts[item.delivery_id] = Verdict(
                    "suppress", "not contactable (erased, merged away or unknown)"
                )

    gated = [item for item in items if item.delivery_id in live]
    suppressed = _suppressions(db, {(live[i.delivery_id], i.channel) for i in gated})
    marketing: list[Pending] = []
    for item in gated:
        customer_id = live[item.delivery_id]
        reason = suppressed.get((customer_id, item.channel))
        if reason is not None:
            verdicts[item.delivery_id] = Verdict("suppress", f"suppressed: {reason}")
            continue
        if item.campaign.purpose != "marketing":
            verdicts[item.delivery_id] = Verdict("send", customer_id=customer_id)
            continue
        policy = policies[item.channel]
        zone = _zone(time_zones.get(customer_id), policy.default_time_zone)
        quiet_end = in_quiet_hours(now.astimezone(zone), policy)
        if quiet_end is not None:
            verdicts[item.delivery_id] = Verdict(
                "defer",
                f"quiet hours in {zone.key} until {quiet_end:%H:%M}",
                until=quiet_end.astimezone(now.tzinfo),
                customer_id=customer_id,
            )
            continue
        marketing.append(item)

    sent = _recent_marketing(db, marketing, live, policies, now)
    for item in marketing:
        customer_id = live[item.delivery_id]
        policy = policies[item.channel]
        key = (customer_id, item.channel)
        if policy.cap_messages and sent.get(key, 0) >= policy.cap_messages:
            verdicts[item.delivery_id] = Verdict(
                "suppress",
                f"frequency cap: {policy.cap_messages} {item.channel} messages "
                f"in {policy.cap_hours} h",
            )
            continue
        sent[key] = sent.get(key, 0) + 1
        verdicts[item.delivery_id] = Verdict("send", customer_id=customer_id)
    return verdicts


def _suppressions(db: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    ids = sorted({customer_id for customer_id, _ in keys})
    for start in range(0, len(ids), 1000):
        for customer_id, channel, reason in db.execute(
            select(Suppression.customer_id, Suppression.channel, Suppression.reason).where(
                Suppression.customer_id.in_(ids[start : start + 1000])
            )
        ):
            if (customer_id, channel) in keys:
                found[(customer_id, channel)] = reason
    return found


def _recent_marketing(
    db: Session,
    items: list[Pending],
    live: dict[int, str],
    policies: dict[str, ChannelPolicy],
    now: datetime,
) -> dict[tuple[str, str], int]:
    """Sent marketing deliveries per (customer, channel) within each channel's cap window."""
    counts: dict[tuple[str, str], int] = {}
    by_channel: dict[str, set[str]] = defaultdict(set)
    for item in items:
        if policies[item.channel].cap_messages:
            by_channel[item.channel].add(live[item.delivery_id])
    for channel, customer_ids in by_channel.items():
        since = now - timedelta(hours=policies[channel].cap_hours)
        ids = sorted(customer_ids)
        for start in range(0, len(ids), 1000):
            rows = db.execute(
                select(Delivery.customer_id, func.count())
                .join(Campaign, Campaign.id == Delivery.campaign_id)
                .where(
                    Delivery.customer_id.in_(ids[start : start + 1000]),
                    Delivery.channel == channel,
                    Delivery.status == "sent",
                    Delivery.sent_at >= since,
                    Campaign.purpose == "marketing",
                )
                .group_by(Delivery.customer_id)
            )
            for customer_id, count in rows:
                counts[(str(customer_id), channel)] = int(count)
    return counts
