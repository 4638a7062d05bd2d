"""One identity, one form: the normaliser every door uses (``platform.identity``) folds the
ways one address or id can be typed in Unicode (composed or combining accents, full-width
letters in an email) and refuses invisible characters where a person can be told."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapport.platform.identity import (
    IDENTITY_MAX_LENGTHS,
    identity_digest,
    identity_problem,
    is_email,
    normalise_identity,
)

KINDS = sorted(IDENTITY_MAX_LENGTHS)


@given(kind=st.sampled_from(KINDS), value=st.text(max_size=40))
def test_the_canonical_form_is_its_own_canonical_form(kind: str, value: str) -> None:
    once = normalise_identity(kind, value)
    assert normalise_identity(kind, once) == once
    assert unicodedata.is_normalized("NFKC" if kind == "email" else "NFC", once)


@pytest.mark.parametrize("kind", ["email", "external_id", "loyalty_card", "anonymous_id"])
def test_composed_and_combining_accents_are_one_identity(kind: str) -> None:
    composed = "jos\u00e9.x@example.com"
    combining = unicodedata.normalize("NFD", composed)
    assert composed != combining
    assert normalise_identity(kind, combining) == normalise_identity(kind, composed)
    assert identity_digest(kind, combining) == identity_digest(kind, composed)


def test_full_width_letters_in_an_email_are_its_ascii_letters() -> None:
    assert normalise_identity("email", "\uff21\uff22\uff23@example.com") == "abc@example.com"
    assert identity_problem("email", "\uff21\uff22\uff23@example.com") is None


def test_a_customer_number_keeps_its_compatibility_characters_and_case() -> None:
    assert normalise_identity("external_id", "Zo\u0065\u0308-\uff21") == "Zo\u00eb-\uff21"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("hidden", "name"),
    [
        ("\u200b", "ZERO WIDTH SPACE"),
        ("\ufeff", "ZERO WIDTH NO-BREAK SPACE"),
        ("\u202e", "RIGHT-TO-LEFT OVERRIDE"),
        ("\u200e", "LEFT-TO-RIGHT MARK"),
        ("\x00", "a control character"),
    ],
)
def test_an_invisible_character_is_refused_naming_it(kind: str, hidden: str, name: str) -> None:
    value = {"email": "x@example.com", "phone": "+33612345678"}.get(kind, "C-1001")
    problem = identity_problem(kind, value + hidden)
    assert problem is not None
    assert f"U+{ord(hidden):04X}" in problem
    assert name in problem
    # and where no one can be told (a stored value, the blocklist), it is not there
    assert normalise_identity(kind, value + hidden) == normalise_identity(kind, value)


def test_an_address_with_an_invisible_character_is_no_email() -> None:
    assert is_email("x@example.com")
    assert not is_email("x@example.com\u200b")
