"""Event shapes on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, Field, model_validator

from rapport.platform.schemas import ReadModel, StrictModel

Channel = Literal["web", "app", "store", "call_center", "email"]


class EventIn(StrictModel):
    event_id: str = Field(min_length=1, max_length=100, description="Client-made, unique.")
    type: str = Field(pattern=r"^[a-z][a-z0-9_]{1,59}$", examples=["product_viewed"])
    customer_id: str | None = Field(default=None, max_length=40)
    anonymous_id: str | None = Field(default=None, max_length=100)
    channel: Channel
    occurred_at: AwareDatetime
    properties: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _someone(self) -> EventIn:
        if self.customer_id is None and self.anonymous_id is None:
            raise ValueError("an event needs customer_id or anonymous_id")
        return self


class EventOut(ReadModel):
    position: int
    event_id: str
    type: str
    customer_id: str | None
    anonymous_id: str | None
    channel: str
    occurred_at: datetime
    received_at: datetime
    properties: dict[str, Any]
    context: dict[str, Any]


class EventReceipt(StrictModel):
    event_id: str
    position: int
    duplicate: bool
