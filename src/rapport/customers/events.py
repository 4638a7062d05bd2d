"""The events the customers domain appends to the log: one class per event type.

Other domains read these shapes, never the domain's private code. Tracking events sent by
clients may use some of the same types (an ``identified`` call from a website carries the
visitor's traits); these classes are the shapes Rapport's own commands append.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import StrictBool, StringConstraints

from rapport.customers.models import CONSENT_SOURCE_LENGTH
from rapport.platform.domain_events import DomainEvent

# A consent purpose, and where a choice was made: the one rule for the API's
# PUT /v1/customers/{id}/consents/{purpose} and for a tracked consent_changed (validated at
# ingestion against ConsentChanged below).
ConsentPurpose = Literal[
    "analytics", "personalization", "marketing_email", "marketing_push", "location"
]
ConsentSource = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=CONSENT_SOURCE_LENGTH)
]


class CustomerCreated(DomainEvent):
    """A customer registered (signup through the API or an admin), with the consent choices
    they made then (purpose -> granted)."""

    event_type: ClassVar[str] = "customer_created"
    domain: ClassVar[str] = "customers"
    consents: dict[str, bool]


class CustomerIdentified(DomainEvent):
    """Identity resolution (``POST /v1/customers/identify``) found or created the customer
    that the given identity kinds (``email``, ``phone``, ``external_id``, ...) name. (An
    ``identified`` tracking event a client sends carries ``traits`` instead: that is the
    sender's shape, validated at ingestion, not this command's.)"""

    event_type: ClassVar[str] = "identified"
    domain: ClassVar[str] = "customers"
    kinds: list[str]


class CustomersMerged(DomainEvent):
    """Another profile of the same person was merged into this customer (the event's
    customer): its identities, consents, preferences, traits and events moved here."""

    event_type: ClassVar[str] = "customers_merged"
    domain: ClassVar[str] = "customers"
    merged_customer_id: str
    reason: str


class ConsentChanged(DomainEvent):
    """The customer granted or withdrew consent for one purpose (``source``: where the choice
    was made)."""

    event_type: ClassVar[str] = "consent_changed"
    domain: ClassVar[str] = "customers"
    purpose: ConsentPurpose
    granted: StrictBool
    source: ConsentSource


class PreferenceShared(DomainEvent):
    """The customer told something about themselves (one preference field);
    ``first_time`` says whether they had never shared that field before (the loyalty engine
    rewards it once per field)."""

    event_type: ClassVar[str] = "preference_shared"
    domain: ClassVar[str] = "customers"
    field: str
    first_time: bool
    source: str


class CustomerErased(DomainEvent):
    """The customer was erased in every domain (right to erasure); it carries no personal
    data."""

    event_type: ClassVar[str] = "customer_erased"
    domain: ClassVar[str] = "customers"
