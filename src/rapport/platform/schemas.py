"""Base classes for API shapes."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from rapport.platform import formatting

# Amounts in minor units (cents) fit the 32-bit INTEGER columns on every database.
MAX_MINOR_UNITS = 2**31 - 1
MinorUnits = Annotated[int, Field(ge=0, le=MAX_MINOR_UNITS, description="Minor units (cents).")]


def _legal_tender(code: str) -> str:
    # Reports group money by currency: a made-up code ("QQQ") would be a currency of its own.
    if code not in formatting.currencies():
        raise ValueError(f"{code!r} is not a currency in use (ISO 4217, such as EUR, GBP or USD)")
    return code


CurrencyCode = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", examples=["EUR"], description="ISO 4217 code, such as EUR"),
    AfterValidator(_legal_tender),
]


# C0 control characters other than tab, line feed and carriage return, and DEL: PostgreSQL
# stores no NUL in text or JSONB (SQLite does, so such data could never move over), and the
# others are never meant in a name, a code or a comment. One rule for every request field.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The same rule for OpenAPI, on strings that have no pattern of their own.
NO_CONTROL_CHARACTERS_PATTERN = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F]*$"
CONTROL_CHARACTER_CODE = "control_character"


def control_character_message(text: str) -> str | None:
    """Why ``text`` is refused (which character, where), or None when it has no control
    character."""
    found = CONTROL_CHARACTERS.search(text)
    if found is None:
        return None
    return (
        f"Text may not contain control characters (\\u{ord(found.group()):04x} at position "
        f"{found.start()})"
    )


def _refuse_control_characters(text: str) -> str:
    if text.isprintable():  # the usual case, checked in C: no control character at all
        return text
    message = control_character_message(text)
    if message is not None:
        raise PydanticCustomError(CONTROL_CHARACTER_CODE, message)
    return text


def _refuse_nested_control_characters(value: Any) -> Any:
    """Free-form JSON (``dict[str, Any]`` attributes, opening hours): every string inside."""
    if isinstance(value, str):
        _refuse_control_characters(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nested_control_characters(key)
            _refuse_nested_control_characters(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_nested_control_characters(item)
    return value


def _refuse_numbers_as_times(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError(
            "datetime_type", "Give a date or time as ISO 8601 text, such as 2026-12-07T10:00:00Z"
        )
    return value


# Keys of a core schema that hold no validation schema (serialisers, JSON-schema hints).
_NOT_VALIDATION = frozenset(("serialization", "metadata", "json_schema_input_schema"))


def exact_input(schema: Any) -> Any:
    """``schema`` (a pydantic core schema) made exact for input from JSON: integers, numbers
    and booleans accept only their own JSON type (``"10"``, ``true`` or ``1.0`` are not 10
    points), and no string anywhere may hold a control character (see above)."""
    if isinstance(schema, list):
        return [exact_input(node) for node in schema]
    if isinstance(schema, tuple):
        return tuple(exact_input(node) for node in schema)
    if not isinstance(schema, dict):
        return schema
    node = {
        key: value if key in _NOT_VALIDATION else exact_input(value)
        for key, value in schema.items()
    }
    kind = node.get("type")
    if kind in ("int", "float", "bool"):
        node["strict"] = True
    elif kind in ("datetime", "date"):
        # Pydantic would read a JSON number as seconds since 1970: a time is ISO 8601 text.
        return core_schema.no_info_before_validator_function(_refuse_numbers_as_times, node)
    elif kind == "str":
        if "pattern" not in node:
            # Documents the rule (so generated clients and fuzzers know it); the check
            # below still answers, with a message that names the character.
            metadata = dict(node.get("metadata") or {})
            metadata["pydantic_js_updates"] = {
                **metadata.get("pydantic_js_updates", {}),
                "pattern": NO_CONTROL_CHARACTERS_PATTERN,
            }
            node["metadata"] = metadata
        return core_schema.no_info_after_validator_function(_refuse_control_characters, node)
    elif kind == "any":
        return core_schema.no_info_after_validator_function(_refuse_nested_control_characters, node)
    return node


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped; numbers and booleans
    must be JSON numbers and booleans, and text may not hold control characters (see
    :func:`exact_input`). Forms and query strings, where everything is a string, validate with
    ``model_validate_strings``, which reads ``"10"`` as 10 still."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler, /
    ) -> CoreSchema:
        schema: CoreSchema = exact_input(handler(source))
        return schema


class ReadModel(BaseModel):
    """Response bodies, built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    """A page of results with a cursor for the next one (``None`` on the last page)."""

    items: list[ItemT]
    next_cursor: str | None = Field(default=None)


RowT = TypeVar("RowT")

# The ``cursor`` query parameter of every list that pages by cursor.
PageCursor = Annotated[
    str | None, Query(max_length=64, description="next_cursor of the previous page")
]


def page_of(
    found: Sequence[RowT],
    *,
    limit: int,
    item: Callable[[RowT], ItemT],
    cursor: Callable[[RowT], str],
) -> Page[ItemT]:
    """The page answered from ``found``, read with ``limit + 1`` rows: the row beyond the
    page is not shown, it only says another page follows (whose cursor is the last shown)."""
    shown = found[:limit]
    return Page[ItemT](
        items=[item(row) for row in shown],
        next_cursor=cursor(shown[-1]) if len(found) > limit else None,
    )


class ApiKeyIn(StrictModel):
    name: str = Field(min_length=1, max_length=200, examples=["Shop front-end"])
    scopes: list[str] = Field(min_length=1, examples=[["ingest"]])
    orders_from_tracking: bool = Field(
        default=True,
        description="Segment e-commerce events this key sends (Order Completed, Order Refunded)"
        " become orders and returns, if the key also has the write scope (a server-side key;"
        " a key that may only ingest is readable in a shop's pages); false where the shop posts"
        " its orders to /v1/orders.",
    )


class ApiKeyChange(StrictModel):
    """The settings to change; a field left out keeps its value."""

    orders_from_tracking: bool | None = Field(
        default=None, description="Whether its Segment e-commerce events become orders."
    )
    rate_limit: str | None = Field(
        default=None,
        max_length=100,
        description='Its own request limit, e.g. "100/second;5000/hour"; null: the default.',
    )


class ApiKeyOut(ReadModel):
    id: str
    name: str
    key_prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    rate_limit: str | None
    orders_from_tracking: bool


class ApiKeyCreated(ApiKeyOut):
    secret: str | None = Field(
        description="The key itself. Shown only now; store it safely. A retry with the same"
        " Idempotency-Key answers null: the secret is never stored (revoke the key and create"
        " another if the first answer was lost)."
    )


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


# A day or a moment in a query string is written as ISO 8601 text. Pydantic's lax mode would
# also read a number as seconds since 1970 ("?since=2.5e-111" as 1970-01-01): refused.
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_text(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DAY.match(value):
        raise PydanticCustomError(
            "iso_date_expected", "Write the date as ISO 8601 text, such as 2026-12-05"
        )
    return value


QueryDate = Annotated[date, BeforeValidator(_iso_text)]


# A moment needs its offset ("2026-12-01T08:00Z"): one without ("2026-12-01T08:00", a day
# alone) is refused, as every time in a body is (docs/api.md).
QueryAwareDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
