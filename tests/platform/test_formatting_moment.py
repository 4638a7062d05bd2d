"""The ``moment`` filter every admin time goes through: a datetime, or an ISO 8601 time as an
event's properties carry one, to the minute in UTC; any other text as it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rapport.platform.formatting import NOTHING, moment


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (datetime(2027, 1, 26, 20, 2, 32, tzinfo=UTC), "26 Jan 2027, 20:02 UTC"),
        (
            datetime(2027, 1, 26, 21, 2, tzinfo=timezone(timedelta(hours=1))),
            "26 Jan 2027, 20:02 UTC",
        ),
        ("2027-01-26T20:02:32+00:00", "26 Jan 2027, 20:02 UTC"),
        ("2027-01-26T21:02:32.123456+01:00", "26 Jan 2027, 20:02 UTC"),
        ("2027-01-26T20:02:32Z", "26 Jan 2027, 20:02 UTC"),
        ("2027-01-26 20:02", "26 Jan 2027, 20:02 UTC"),  # naive: read as UTC
        (None, NOTHING),
        ("Barolo 2019", "Barolo 2019"),
        ("2027-01-26", "2027-01-26"),  # a day, not a time: as it is
        ("2027-02-30T10:00:00", "2027-02-30T10:00:00"),  # shaped like a time, but none
    ],
)
def test_a_time_is_shown_to_the_minute_in_utc_and_other_text_as_it_is(
    value: datetime | str | None, shown: str
) -> None:
    assert moment(value) == shown
