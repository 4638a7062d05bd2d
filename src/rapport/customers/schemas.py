"""Customer shapes on the wire."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from rapport.customers.events import ConsentPurpose, ConsentSource
from rapport.customers.references import CUSTOMER_REF_MAX_LENGTH
from rapport.platform import clock
from rapport.platform.errors import FieldInvalid
from rapport.platform.identity import (
    EARLIEST_BIRTHDAY,
    EMAIL_PATTERN,
    IDENTITY_MAX_LENGTHS,
    PHONE_PATTERN,
    TIME_ZONE_MAX_LENGTH,
    canonical_email,
    canonical_phone,
    identity_problem,
    normalise_identity,
    time_zone_problem,
)
from rapport.platform.schemas import ReadModel, StrictModel

Purpose = ConsentPurpose


class CustomerIn(StrictModel):
    external_id: str | None = Field(
        default=None, min_length=1, max_length=IDENTITY_MAX_LENGTHS["external_id"]
    )
    email: str | None = Field(
        default=None,
        max_length=IDENTITY_MAX_LENGTHS["email"],
        # Documented here, checked by the validator after NFKC (a full-width at sign U+FF20 is "@"),
        # whose refusal says what is wrong rather than printing the pattern.
        json_schema_extra={"pattern": EMAIL_PATTERN},
        description="Kept as its identity is: Unicode NFKC, lower-cased (Ana@Example.com is "
        "kept as ana@example.com, full-width letters as ASCII); invisible characters "
        "(zero-width space, BOM, bidi marks) are refused.",
    )
    # Stored as platform.identity.canonical_phone gives it (+33612345678 for +33 6 12 34 56 78);
    # the pattern is documented here and checked there, whose refusal says what is wrong.
    phone: str | None = Field(
        default=None,
        max_length=IDENTITY_MAX_LENGTHS["phone"],
        json_schema_extra={"pattern": PHONE_PATTERN},
        description="In international form, with its country code after '+' or '00'; kept as "
        "'+' and digits (+33 6 12 34 56 78 is kept as +33612345678). A national number "
        "(06 12 34 56 78) is refused.",
    )
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    locale: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    home_city: str | None = Field(default=None, max_length=120)
    # NaN compares as neither below nor above a bound: refused as not finite, by name.
    home_latitude: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    home_longitude: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    time_zone: str | None = Field(
        default=None,
        max_length=TIME_ZONE_MAX_LENGTH,
        examples=["Europe/Paris"],
        description="The customer's IANA time zone: quiet hours are their own night in it "
        "(else the delivery policy's default zone). An unknown zone is refused.",
    )
    consents: dict[Purpose, bool] = Field(default_factory=dict)

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str | None) -> str | None:
        problem = time_zone_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("consents", mode="before")
    @classmethod
    def _known_purposes(cls, consents: Any) -> Any:
        # Named as consents.<purpose>, where pydantic says consents.<purpose>.[key].
        if isinstance(consents, dict):
            for purpose in consents:
                if purpose not in get_args(Purpose):
                    raise FieldInvalid(
                        str(purpose),
                        f"Unknown consent purpose; use one of {', '.join(get_args(Purpose))}",
                    )
        return consents

    @field_validator("external_id", "email", "phone")
    @classmethod
    def _identity(cls, value: str | None, info: Any) -> str | None:
        # The rule identify and POST /{id}/identities use too (platform.identity); a phone and
        # an email are kept in the one form every door stores.
        if value is not None and info.field_name == "phone":
            return canonical_phone(value)
        problem = identity_problem(info.field_name, value) if value is not None else None
        if problem:
            raise ValueError(problem)
        if value is not None and info.field_name == "email":
            return canonical_email(value)
        # In the form its identity is kept (NFC, trimmed), so "Zoë" is one customer number
        # however its "ë" was typed.
        return None if value is None else normalise_identity("external_id", value)


class ConsentIn(StrictModel):
    granted: bool
    source: ConsentSource = "api"


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
    time_zone: str | None
    created_at: datetime
    updated_at: datetime
    consents: list[ConsentOut] = Field(default_factory=list)


IdentityKind = Literal["email", "phone", "loyalty_card", "anonymous_id", "external_id", "device_id"]


class IdentityIn(StrictModel):
    kind: IdentityKind
    value: str = Field(
        min_length=1,
        max_length=max(IDENTITY_MAX_LENGTHS.values()),
        description="An email address (at most 320 characters), a phone number (at most 40: "
        "digits, spaces, brackets and dashes, '+' first), or another kind's id (at most 100).",
    )

    @model_validator(mode="after")
    def _value_fits_kind(self) -> IdentityIn:
        problem = identity_problem(self.kind, self.value)
        if problem:
            raise FieldInvalid("value", problem)
        return self


class IdentityOut(ReadModel):
    kind: str
    value: str
    source: str
    created_at: datetime


class IdentifyIn(StrictModel):
    identities: dict[IdentityKind, str] = Field(
        min_length=1,
        examples=[{"email": "ana@example.com", "anonymous_id": "a-123"}],
        description="Kind to value; each value as POST /{id}/identities takes it (an empty "
        "one is left out).",
    )
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    channel: Literal["web", "app", "store", "call_center", "email"] = "web"

    @field_validator("identities")
    @classmethod
    def _identities_fit_their_kinds(cls, identities: dict[str, str]) -> dict[str, str]:
        for kind, value in identities.items():
            problem = identity_problem(kind, value) if value.strip() else None
            if problem:
                raise FieldInvalid(kind, problem)
        return identities


class MergeIn(StrictModel):
    source_customer_id: str = Field(min_length=1, max_length=CUSTOMER_REF_MAX_LENGTH)
    target_customer_id: str = Field(min_length=1, max_length=CUSTOMER_REF_MAX_LENGTH)
    reason: str = Field(min_length=1, max_length=200)


class MergeOut(ReadModel):
    source_customer_id: str
    target_customer_id: str
    reason: str
    actor: str
    moved: dict[str, int]
    merged_at: datetime


class ConsentChangeOut(ReadModel):
    purpose: str
    granted: bool
    source: str
    changed_at: datetime


Dietary = Literal["vegetarian", "vegan", "gluten_free", "lactose_free", "halal", "kosher"]
CategoryName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


def _folded(values: list[str] | None) -> list[str] | None:
    """``values`` without repeats (letter case aside), the first spelling kept, in order."""
    if values is None:
        return None
    seen: set[str] = set()
    kept = []
    for value in values:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            kept.append(value)
    return kept


class PreferencesIn(StrictModel):
    """What the customer chose to tell us. Every field is optional; send what changed, and
    ``null`` to clear one."""

    clothing_size: Literal["XS", "S", "M", "L", "XL", "XXL"] | None = None
    shoe_size: float | None = Field(
        default=None, ge=15, le=55, allow_inf_nan=False, description="EU size"
    )
    favourite_categories: list[CategoryName] | None = Field(
        default=None,
        max_length=20,
        description="Category names, none empty; a repeat (letter case aside) is folded into "
        "the first.",
    )
    birthday: date | None = Field(default=None, description="From 1900-01-01 to today.")
    household_size: int | None = Field(default=None, ge=1, le=20)
    dietary: list[Dietary] | None = Field(
        default=None, description="A repeat is folded into the first."
    )
    preferred_store_id: str | None = Field(
        default=None, min_length=1, max_length=40, description="A store of the catalogue."
    )
    preferred_channel: Literal["web", "app", "store", "email"] | None = None
    source: str = Field(default="preference_centre", min_length=1, max_length=60, exclude=True)

    @field_validator("favourite_categories", "dietary")
    @classmethod
    def _fold_repeats(cls, values: list[str] | None) -> list[str] | None:
        return _folded(values)

    @field_validator("birthday")
    @classmethod
    def _birthday_was(cls, day: date | None) -> date | None:
        if day is not None and not EARLIEST_BIRTHDAY <= day <= clock.now().date():
            raise ValueError(f"A birthday is from {EARLIEST_BIRTHDAY.isoformat()} to today")
        return day

    @model_validator(mode="after")
    def _something(self) -> PreferencesIn:
        if not self.model_fields_set - {"source"}:
            raise ValueError("send at least one preference (null clears one)")
        return self

    def shared(self) -> dict[str, Any]:
        """The preferences given a value, as JSON."""
        return self.model_dump(mode="json", exclude_none=True)

    def cleared(self) -> list[str]:
        """The preferences sent as ``null``: to forget."""
        return sorted(
            name for name in self.model_fields_set - {"source"} if getattr(self, name) is None
        )


class PreferenceOut(ReadModel):
    field: str
    value: Any
    source: str
    updated_at: datetime


class TraitsOut(BaseModel):
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    channels: list[str]
    event_count: int
    order_count: int
    spend_minor: int = Field(
        description="Net spend (orders less returns and cancellations) in `currency`, the latest"
        " order's, in its minor units; orders in other currencies are not in it"
    )
    currency: str | None
    spend_by_currency: dict[str, int] = Field(
        default_factory=dict,
        description="Net spend in each currency the customer bought in, by ISO 4217 code, in"
        " that currency's minor units: amounts in different currencies are never added",
    )
    average_order_minor: int | None = Field(
        description="Spend per order, while every order was in one currency (else null)"
    )
    first_order_at: datetime | None
    last_order_at: datetime | None
    days_since_last_order: int | None
    favourite_categories: list[str]
    preferred_store_id: str | None
    last_location: dict[str, Any] | None
    rfm: dict[str, int] | None = None


class CustomerGroupOut(ReadModel):
    """The account or household the customer belongs to (the shop's tracking ``group``
    calls), with its traits."""

    group_id: str
    traits: dict[str, Any]
    updated_at: datetime


class ProfileOut(CustomerOut):
    """The customer 360 without the timeline (see ``/timeline``)."""

    is_anonymous: bool
    status: str
    attributes: dict[str, Any] = Field(
        description="Custom traits (from tracking's identify calls and CRM imports), typed "
        "as sent; segments read them as ``attributes.<name>``."
    )
    group_id: str | None = Field(
        default=None, description="The account or household (tracking ``group`` calls)."
    )
    group: CustomerGroupOut | None = None
    identities: list[IdentityOut]
    preferences: list[PreferenceOut]
    traits: TraitsOut | None


class TimelineEventOut(ReadModel):
    position: int
    event_id: str
    type: str
    channel: str
    occurred_at: datetime
    properties: dict[str, Any]
    context: dict[str, Any]


class ErasureIn(StrictModel):
    requested_by: str = Field(min_length=1, max_length=200, examples=["DPO ticket #4411"])
    reason: str | None = Field(default=None, max_length=2000)


class PrivacyRequestOut(ReadModel):
    customer_id: str
    kind: str
    requested_by: str
    reason: str | None
    requested_at: datetime
    completed_at: datetime | None
