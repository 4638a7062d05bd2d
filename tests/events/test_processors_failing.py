"""A processor whose batch fails stops only itself: its cursor stays (the batch is retried),
the processors after it still advance, and the caller still hears of the failure."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rapport.events import processors
from rapport.events.models import Event, ProcessorCursor
from rapport.events.processors import Processor, run_processors
from rapport.platform.db import open_session
from tests.events.factories import tracked


def test_a_failing_processor_holds_up_no_other(committed_url: str, monkeypatch) -> None:
    # given two events and two processors, the first failing on every batch
    with open_session(committed_url) as db:
        for path in ("/a", "/b"):
            tracked(db, type="page_viewed", channel="web", properties={"path": path})
        db.commit()
    seen: list[str] = []

    def failing(db, events: list[Event]) -> None:  # type: ignore[no-untyped-def]
        raise ArithmeticError("an event no one foresaw")

    def counting(db, events: list[Event]) -> None:  # type: ignore[no-untyped-def]
        seen.extend(str((event.properties or {}).get("path")) for event in events)

    monkeypatch.setattr(
        processors,
        "_processors",
        {
            "test.failing": Processor(name="test.failing", handle=failing),
            "test.counting": Processor(name="test.counting", handle=counting),
        },
    )

    # when the processors are advanced
    with pytest.raises(ArithmeticError):
        run_processors(database_url=committed_url)

    # then the second read both events and moved on; the first stays where it was
    assert seen == ["/a", "/b"]
    with open_session(committed_url) as db:
        cursors = dict(db.execute(select(ProcessorCursor.name, ProcessorCursor.position)).all())
        head = db.scalar(select(Event.position).order_by(Event.position.desc()).limit(1))
    assert cursors.get("test.failing", 0) == 0
    assert cursors["test.counting"] == head
