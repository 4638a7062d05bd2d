"""The sending policy per channel: the frequency cap (at most ``cap_messages`` marketing
messages per customer in ``cap_hours``; 0 turns the cap off) and quiet hours in the customer's
time zone (``quiet_start`` to ``quiet_end``, local hours; equal hours mean none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.models import CHANNELS, SendingPolicy
from rapport.platform import clock
from rapport.platform.errors import InvalidInput

POLICY_FIELDS = ("cap_messages", "cap_hours", "quiet_start", "quiet_end", "default_time_zone")
DEFAULTS: dict[str, Any] = {
    "cap_messages": 3,
    "cap_hours": 168,
    "quiet_start": 21,
    "quiet_end": 8,
    "default_time_zone": "UTC",
}


@dataclass(frozen=True)
class ChannelPolicy:
    channel: str
    cap_messages: int
    cap_hours: int
    quiet_start: int
    quiet_end: int
    default_time_zone: str


def _frozen(row: SendingPolicy) -> ChannelPolicy:
    return ChannelPolicy(
        channel=row.channel,
        cap_messages=row.cap_messages,
        cap_hours=row.cap_hours,
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        default_time_zone=row.default_time_zone,
    )


def sending_policy(db: Session) -> dict[str, ChannelPolicy]:
    """The policy of every channel (the defaults for a channel never configured)."""
    stored = {row.channel: _frozen(row) for row in db.scalars(select(SendingPolicy))}
    return {
        channel: stored.get(channel) or ChannelPolicy(channel=channel, **DEFAULTS)
        for channel in CHANNELS
    }


def _check(field: str, value: Any) -> Any:
    if field == "default_time_zone":
        if not isinstance(value, str) or not value:
            raise InvalidInput("A time zone is an IANA name such as Europe/Paris", field=field)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise InvalidInput(f"Unknown time zone {value!r}", field=field) from error
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be a whole number", field=field)
    limits = {
        "cap_messages": (0, 1000),
        "cap_hours": (1, 24 * 90),
        "quiet_start": (0, 23),
        "quiet_end": (0, 23),
    }[field]
    if not limits[0] <= value <= limits[1]:
        raise InvalidInput(f"{field} must be between {limits[0]} and {limits[1]}", field=field)
    return value


def check_policy_changes(*, channel: str, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes checked (422 naming the field when one is refused), nothing stored: the
    API checks every channel's changes before it stores any."""
    if channel not in CHANNELS:
        raise InvalidInput(f"Unknown channel {channel!r}", field="channel")
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    return {field: _check(field, value) for field, value in changes.items()}


def update_sending_policy(db: Session, *, channel: str, changes: dict[str, Any]) -> ChannelPolicy:
    """Change the named fields of one channel's policy (fields not named keep their value)
    and commit."""
    checked = check_policy_changes(channel=channel, changes=changes)
    row = db.get(SendingPolicy, channel)
    if row is None:
        row = SendingPolicy(channel=channel, **DEFAULTS, updated_at=clock.now())
        db.add(row)
    for field, value in checked.items():
        setattr(row, field, value)
    row.updated_at = clock.now()
    db.commit()
    return _frozen(row)
