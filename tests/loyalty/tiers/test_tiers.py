"""Tiers: upgrade at once, downgrade only at the review date after the grace period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rapport.loyalty.tiers.policy import DEFAULT_TIERS, TierStanding, parse_tier_policy, review
from rapport.platform.errors import InvalidInput

START = datetime(2026, 1, 15, tzinfo=UTC)
POLICY = parse_tier_policy(DEFAULT_TIERS)


def test_default_ladder_and_benefits() -> None:
    assert [tier.id for tier in POLICY.tiers] == ["member", "silver", "gold"]
    assert POLICY.tier("gold").benefits.free_shipping_over_minor == 0
    assert POLICY.tier(None).id == "member"
    assert POLICY.qualifying_tier(49_999).id == "member"
    assert POLICY.qualifying_tier(50_000).id == "silver"


@pytest.mark.parametrize(
    ("tiers", "field"),
    [
        ([{"id": "base", "name": "Base", "threshold": 10}], "tiers"),
        (
            [
                {"id": "base", "name": "Base", "threshold": 0},
                {"id": "up", "name": "Up", "threshold": 0},
            ],
            "tiers",
        ),
        (
            [{"id": "base", "name": "Base", "threshold": 0, "benefits": {"points_multiplier": 0}}],
            "tiers.0.benefits.points_multiplier",
        ),
    ],
)
def test_invalid_ladders_are_refused_naming_the_field(tiers: object, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_tier_policy({"tiers": tiers})
    assert refused.value.field == field


def test_upgrade_is_immediate_and_starts_a_new_review_period() -> None:
    silver = TierStanding("silver", START, START + timedelta(days=365))
    later = START + timedelta(days=40)
    result = review(POLICY, silver, 150_000, later)
    assert result.change == "upgrade"
    assert (result.standing.tier_id, result.standing.since) == ("gold", later)
    assert result.standing.review_at > later + timedelta(days=360)


def test_downgrade_waits_for_review_date_and_grace_period() -> None:
    gold = TierStanding("gold", START, START + timedelta(days=365))
    # a quiet spell before the review date keeps gold
    assert review(POLICY, gold, 10_000, START + timedelta(days=200)).change is None
    # at the review date, within the grace period, still gold
    in_grace = review(POLICY, gold, 10_000, START + timedelta(days=380))
    assert (in_grace.change, in_grace.standing.tier_id) == (None, "gold")
    # after the grace period: down to what the window earns
    after = review(POLICY, gold, 60_000, START + timedelta(days=396))
    assert (after.change, after.standing.tier_id) == ("downgrade", "silver")


def test_a_member_who_requalifies_is_renewed_at_the_review_date() -> None:
    gold = TierStanding("gold", START, START + timedelta(days=365))
    result = review(POLICY, gold, 200_000, START + timedelta(days=366))
    assert result.change == "renewed"
    assert result.standing.since == START
    assert result.standing.review_at > START + timedelta(days=700)


def test_first_review_places_a_new_member() -> None:
    result = review(POLICY, None, 0, START)
    assert (result.change, result.standing.tier_id) == ("upgrade", "member")
