"""Typed events: the facts a domain appends to the event log.

Each domain declares, in its ``events.py``, one :class:`DomainEvent` subclass per event type it
appends; the class's fields are the event's ``properties``. A command builds the class, which
validates it, and hands it to ``events.service.append_event``: no event leaves a command with a
misspelt key, a missing field or a second shape. Other domains read these shapes, never the
writer's private code; the API reference publishes every class's JSON schema.

The base lives in the platform so that a domain can declare its events without importing the
event log's domain.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

_EVENT_CLASSES: dict[str, type[DomainEvent]] = {}


class DomainEvent(BaseModel):
    """One event type a domain appends. Subclasses set ``event_type`` (the log's ``type``) and
    ``domain`` (the package that appends it), and declare the properties as fields."""

    # Attribute docstrings describe each property in the API reference.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    event_type: ClassVar[str]
    domain: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("event_type")
        if event_type is None:  # an intermediate base shared by several events
            return
        known = _EVENT_CLASSES.get(event_type)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(
                f"Event type {event_type!r} is declared twice: {known.__module__}."
                f"{known.__qualname__} and {cls.__module__}.{cls.__qualname__}"
            )
        _EVENT_CLASSES[event_type] = cls

    def properties(self) -> dict[str, Any]:
        """The event's ``properties`` as stored in the log (JSON types only)."""
        return self.model_dump(mode="json")


def event_classes() -> dict[str, type[DomainEvent]]:
    """Every declared event type, by its ``type`` (those whose modules are imported)."""
    return dict(sorted(_EVENT_CLASSES.items()))


def event_class(event_type: str) -> type[DomainEvent] | None:
    return _EVENT_CLASSES.get(event_type)
