"""The rewards catalogue: what points buy (each reward issues a coupon on its terms), with
warnings for categories no product is in."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.loyalty.ledger.journal import MAX_POINTS_PER_COMMAND
from rapport.loyalty.models import Reward
from rapport.loyalty.rewards.coupons import MAX_VALID_DAYS, check_coupon_terms
from rapport.platform import clock
from rapport.platform.errors import InvalidInput


def category_warnings(
    db: Session, *, categories: Sequence[str], field: str = "categories"
) -> list[catalog.CategoryWarning]:
    """Warnings for the categories a reward or coupon names that no product is in (saved all
    the same: the catalogue may load later). A category covers everything under it."""
    return catalog.category_warnings(
        db, named=[(f"{field}.{index}", category) for index, category in enumerate(categories)]
    )


def save_reward(
    db: Session,
    *,
    reward_id: str,
    name: str,
    points_cost: int,
    coupon_kind: str,
    coupon_value: int,
    min_subtotal_minor: int = 0,
    categories: Sequence[str] = (),
    stackable: bool = True,
    valid_days: int = 90,
    active: bool = True,
) -> Reward:
    """Create the reward or change it. Coupons already issued keep their own terms."""
    if (
        not reward_id
        or len(reward_id) > 60
        or not all(c.isalnum() or c in "-_." for c in reward_id)
    ):
        raise InvalidInput(
            "reward_id must be 1-60 letters, digits, '-', '_' or '.'", field="reward_id"
        )
    if not name.strip() or len(name) > 200:
        raise InvalidInput("name must be 1-200 characters", field="name")
    if isinstance(points_cost, bool) or not 1 <= points_cost <= MAX_POINTS_PER_COMMAND:
        raise InvalidInput(
            f"points_cost must be between 1 and {MAX_POINTS_PER_COMMAND}",
            field="points_cost",
        )
    check_coupon_terms(
        kind=coupon_kind,
        value=coupon_value,
        min_subtotal_minor=min_subtotal_minor,
        categories=categories,
    )
    if not 1 <= valid_days <= MAX_VALID_DAYS:
        raise InvalidInput(f"valid_days must be between 1 and {MAX_VALID_DAYS}", field="valid_days")
    reward = db.get(Reward, reward_id)
    if reward is None:
        reward = Reward(reward_id=reward_id, created_at=clock.now())
        db.add(reward)
    reward.name = name.strip()
    reward.points_cost = points_cost
    reward.coupon_kind = coupon_kind
    reward.coupon_value = coupon_value
    reward.min_subtotal_minor = min_subtotal_minor
    reward.categories = list(categories)
    reward.stackable = stackable
    reward.valid_days = valid_days
    reward.active = active
    db.commit()
    return reward


def get_reward(db: Session, *, reward_id: str) -> Reward | None:
    return db.get(Reward, reward_id)


def list_rewards(db: Session, *, active_only: bool = False) -> list[Reward]:
    query = select(Reward).order_by(Reward.points_cost, Reward.reward_id)
    if active_only:
        query = query.where(Reward.active.is_(True))
    return list(db.scalars(query))
