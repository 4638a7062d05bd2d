"""A list edited as text in an admin form (categories, plans, a trait's values) reads back
exactly as it was shown: platform.admin.list_text, then typed_list, is the identity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapport.platform.admin import list_text, typed_list

NAMES = st.text(
    alphabet=st.sampled_from([*"ab ,\"'[]\n\r\t\\/&éλ", "\u2028", "\x0b"]), max_size=12
) | st.text(max_size=12)


@given(st.lists(NAMES, max_size=8))
def test_a_list_shown_and_saved_unchanged_is_the_same_list(items: list[str]) -> None:
    assert typed_list(list_text(items)) == items


def test_plain_names_show_comma_separated_and_a_comma_name_as_json() -> None:
    assert list_text(["Wine/Red", "Tools"]) == "Wine/Red, Tools"
    assert list_text(["Beer, Wine & Spirits"]) == '["Beer, Wine & Spirits"]'
    assert typed_list('["Beer, Wine & Spirits", "Red"]') == ["Beer, Wine & Spirits", "Red"]


def test_typed_names_split_at_commas_and_line_breaks() -> None:
    assert typed_list(" Wine/Red ,Tools\nGarden\n\n, ") == ["Wine/Red", "Tools", "Garden"]
    assert typed_list("") == []


@pytest.mark.parametrize("text", ["[Beer", '["a", 1]', '[{"a": 1}]', "[1, 2]"])
def test_text_starting_with_a_bracket_that_is_no_json_list_of_names_is_refused(
    text: str,
) -> None:
    with pytest.raises(ValueError, match="JSON"):
        typed_list(text)
