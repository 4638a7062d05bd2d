"""Admin pages for the rewards catalogue: the list with category warnings, each reward's edit
page, and saving a reward.

Included by ``loyalty.admin`` under its ``/admin/loyalty`` prefix; forms are CSRF-checked and
call the same verbs as the API. A save changes only the settings its form carried: a setting
a form leaves out keeps its stored value.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    FormFields,
    render,
    settings_after_save,
)
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem

router = APIRouter(include_in_schema=False)


def _back(path: str, message: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'message': message})}", status_code=303)


@router.get("/rewards", response_class=HTMLResponse)
def rewards_page(
    request: Request, db: DbSession, user: CurrentAdmin, message: str = ""
) -> HTMLResponse:
    catalogue = reward_catalogue.list_rewards(db)
    # Categories a reward names that no product is in: kept, but said (it matches nothing yet).
    warnings = [
        (reward.reward_id, warning)
        for reward in catalogue
        for warning in reward_catalogue.category_warnings(db, categories=reward.categories)
    ]
    return render(
        request,
        "loyalty/membership_rewards.html",
        {"user": user, "rewards": catalogue, "message": message, "warnings": warnings},
    )


def _category_list(value: object) -> object:
    # The form shows the categories as one text field, separated by commas.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class RewardForm(BaseModel):
    """A reward's settings as its admin form sends them; each one optional, since a save
    changes only what the form carried."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(default="", min_length=1, max_length=200)
    points_cost: int = Field(default=1, ge=1, le=100_000_000)
    coupon_kind: Literal["amount", "percent"] = "amount"
    coupon_value: int = Field(default=1, ge=1, le=100_000_000)
    min_subtotal_minor: int = Field(default=0, ge=0, le=100_000_000)
    categories: Annotated[list[str], BeforeValidator(_category_list)] = Field(
        default_factory=list, max_length=100
    )
    stackable: bool = True
    valid_days: int = Field(default=90, ge=1, le=reward_coupons.MAX_VALID_DAYS)
    active: bool = True


REWARD_NEEDS = ("name", "points_cost", "coupon_kind", "coupon_value")


@router.get("/rewards/{reward_id}", response_class=HTMLResponse)
def reward_page(
    request: Request, reward_id: str, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    reward = reward_catalogue.get_reward(db, reward_id=reward_id)
    return render(
        request,
        "loyalty/membership_reward_edit.html",
        {"user": user, "reward": reward, "reward_id": reward_id},
        status_code=200 if reward is not None else 404,
    )


@router.post("/rewards", dependencies=[CsrfChecked])
def save_reward(db: DbSession, user: CurrentAdmin, fields: FormFields) -> Response:
    reward_id = fields.get("reward_id", "").strip()
    try:
        settings = settings_after_save(
            RewardForm,
            fields,
            reward_catalogue.get_reward(db, reward_id=reward_id),
            needs=REWARD_NEEDS,
            noun="Reward",
            id_field="reward_id",
        )
        reward_catalogue.save_reward(db, reward_id=reward_id, **settings)
    except Problem as problem:
        return _back("/admin/loyalty/rewards", problem.detail)
    return _back("/admin/loyalty/rewards", f"Reward {reward_id} saved")
