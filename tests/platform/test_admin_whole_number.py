"""platform.admin.whole_number: a whole number typed in an admin form or filter, within
bounds, so none beyond what a column holds reaches SQL."""

from __future__ import annotations

import pytest

from rapport.platform.admin import INTEGER_MAX, whole_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        (" 1,000 ", 1000),
        ("0", 0),
        (str(INTEGER_MAX), INTEGER_MAX),
        (str(INTEGER_MAX + 1), None),
        ("99999999999999999999", None),
        ("9" * 5000, None),
        ("-1", None),
        ("abc", None),
        ("1.5", None),
        ("", None),
    ],
)
def test_whole_number(text: str, expected: int | None) -> None:
    assert whole_number(text) == expected


def test_whole_number_within_bounds() -> None:
    assert whole_number("-5", low=-10, high=10) == -5
    assert whole_number("11", low=-10, high=10) is None
