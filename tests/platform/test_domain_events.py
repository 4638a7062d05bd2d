"""Typed events: one class per event type, validated when built, stored as declared, and
published in the API reference."""

from __future__ import annotations

from typing import ClassVar

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.events import service as events
from rapport.events.models import Event
from rapport.platform import domain_events
from rapport.platform.domain_events import DomainEvent, event_class, event_classes


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, type[DomainEvent]]:
    """A registry of the test's own, so its classes stay out of the application's."""
    own: dict[str, type[DomainEvent]] = {}
    monkeypatch.setattr(domain_events, "_EVENT_CLASSES", own)
    return own


def _parcel_left(registry: dict[str, type[DomainEvent]]) -> type[DomainEvent]:
    class ParcelLeft(DomainEvent):
        """A parcel left the warehouse."""

        event_type: ClassVar[str] = "test_parcel_left"
        domain: ClassVar[str] = "orders"
        order_id: str
        parcels: int
        carrier: str | None = None

    return ParcelLeft


def test_a_typed_event_validates_its_fields(registry: dict[str, type[DomainEvent]]) -> None:
    parcel_left = _parcel_left(registry)

    # A field the class does not declare, a missing field and a wrong type are refused
    with pytest.raises(ValidationError, match="orderid"):
        parcel_left(orderid="ord_1", parcels=1)
    with pytest.raises(ValidationError, match="parcels"):
        parcel_left(order_id="ord_1")
    with pytest.raises(ValidationError, match="parcels"):
        parcel_left(order_id="ord_1", parcels="two")

    # And a valid one is stored as its fields, None included
    assert parcel_left(order_id="ord_1", parcels=2).properties() == {
        "order_id": "ord_1",
        "parcels": 2,
        "carrier": None,
    }
    assert event_class("test_parcel_left") is parcel_left


def test_one_event_type_has_one_class(registry: dict[str, type[DomainEvent]]) -> None:
    _parcel_left(registry)

    with pytest.raises(TypeError, match="declared twice"):

        class OtherParcelLeft(DomainEvent):
            event_type: ClassVar[str] = "test_parcel_left"
            domain: ClassVar[str] = "catalog"


def test_append_event_stores_the_typed_event(
    db: Session, registry: dict[str, type[DomainEvent]]
) -> None:
    parcel_left = _parcel_left(registry)

    # Given a command appending a typed event in its transaction
    events.append_event(db, parcel_left(order_id="ord_9", parcels=3, carrier="DHL"), channel="web")
    db.flush()

    # Then the log holds its type and its fields as properties
    stored = db.scalars(select(Event).where(Event.type == "test_parcel_left")).one()
    assert stored.properties == {"order_id": "ord_9", "parcels": 3, "carrier": "DHL"}
    assert stored.channel == "web"


def test_every_event_type_is_declared_in_its_domains_events_module() -> None:
    # Given the application's event classes (create_app loads every domain's events.py)
    from rapport.domains import load_event_types

    load_event_types()

    # Then each lives in the events.py of the domain it names
    for event_type, event in event_classes().items():
        assert event.__module__ == f"rapport.{event.domain}.events", event_type
        assert event.__doc__, f"{event_type} needs a docstring: it is the API reference text"


def test_the_api_reference_publishes_every_event_type(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]

    for event_type, event in event_classes().items():
        schema = schemas[f"event.{event_type}"]
        assert schema["x-event-type"] == event_type
        assert schema["x-domain"] == event.domain
        assert set(schema["properties"]) == set(event.model_fields)


def test_commands_append_typed_events_only(db: Session) -> None:
    # An untyped event (a dict, as before typed events) is refused, and nothing is logged
    with pytest.raises(TypeError, match="DomainEvent"):
        events.append_event(db, {"type": "note_added"}, channel="web")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="DomainEvent"):
        events.log_event(db, {"type": "note_added"}, channel="web")  # type: ignore[arg-type]
    assert db.scalars(select(Event).where(Event.type == "note_added")).first() is None
