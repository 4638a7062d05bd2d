"""Customer shapes on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from rapport.platform.schemas import ReadModel, StrictModel

Purpose = Literal["analytics", "personalization", "marketing_email", "marketing_push", "location"]


class CustomerIn(StrictModel):
    external_id: str | None = Field(default=None, min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()\-]{5,40}$")
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    locale: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    home_city: str | None = Field(default=None, max_length=120)
    home_latitude: float | None = Field(default=None, ge=-90, le=90)
    home_longitude: float | None = Field(default=None, ge=-180, le=180)
    consents: dict[Purpose, bool] = Field(default_factory=dict)


class ConsentIn(StrictModel):
    granted: bool
    source: str = Field(default="api", min_length=1, max_length=60)


class ConsentOut(ReadModel):
    purpose: str
    granted: bool
    source: str
    updated_at: datetime


class CustomerOut(ReadModel):
    customer_id: str
    external_id: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    locale: str
    home_city: str | None
    home_latitude: float | None
    home_longitude: float | None
    created_at: datetime
    updated_at: datetime
    consents: list[ConsentOut] = Field(default_factory=list)
