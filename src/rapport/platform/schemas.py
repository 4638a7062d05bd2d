"""Base classes for API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

# Amounts in minor units (cents) fit the 32-bit INTEGER columns on every database.
MAX_MINOR_UNITS = 2**31 - 1
MinorUnits = Annotated[int, Field(ge=0, le=MAX_MINOR_UNITS, description="Minor units (cents).")]


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReadModel(BaseModel):
    """Response bodies, built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    """A page of results with a cursor for the next one (``None`` on the last page)."""

    items: list[ItemT]
    next_cursor: str | None = Field(default=None)


class ApiKeyIn(StrictModel):
    name: str = Field(min_length=1, max_length=200, examples=["Shop front-end"])
    scopes: list[str] = Field(min_length=1, examples=[["ingest"]])


class ApiKeyOut(ReadModel):
    id: str
    name: str
    key_prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="The key itself. Shown only now; store it safely.")


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
