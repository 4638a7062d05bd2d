"""Identity values in one canonical form, and their digests for the suppression list.

Shared by ingestion (which refuses events of erased people) and the customers domain (which
resolves and erases identities), so both always agree on what "the same email" means; and
what an email address, a birthday trait and a time zone must look like, so that what
ingestion accepts is what the profile processor keeps.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date
from functools import cache
from typing import Any, Literal
from zoneinfo import available_timezones

_NOT_PHONE_DIGIT = re.compile(r"[^0-9]")
# An email address as POST /v1/customers takes one: name@domain.tld, without spaces.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_EMAIL = re.compile(EMAIL_PATTERN)
# A phone number as a person types one: digits, spaces, brackets and dashes, "+" first.
PHONE_PATTERN = r"^\+?[0-9 ()\-]{5,40}$"
_PHONE = re.compile(PHONE_PATTERN)
# A trunk 0 in brackets right after the country code, as the UK, Germany and Switzerland
# write a number (+44 (0)20 7946 0111, 0049 (0)30 123456): the 0 is dialled only at home.
_BRACKETED_TRUNK = re.compile(r"^(\+|\+?00)\s*([1-9][0-9]{0,2})\s*\(0\)")
# The longest value each identity kind may have, wherever it is given (sign-up, identify, a
# new identity): an external id is a customer reference, so no longer than one.
IDENTITY_MAX_LENGTHS = {
    "email": 320,
    "phone": 40,
    "external_id": 100,
    "loyalty_card": 100,
    "anonymous_id": 100,
    "device_id": 100,
}
EARLIEST_BIRTHDAY = date(1900, 1, 1)


# Unicode categories of characters that show nothing: format (Cf: zero-width space, joiners,
# byte order mark, bidi marks) and control (Cc: tab, newline, NUL). No identity holds one.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc"})


def _invisible(value: str) -> str | None:
    """The first invisible character in ``value``, or ``None``."""
    return next((c for c in value if unicodedata.category(c) in _INVISIBLE_CATEGORIES), None)


def _unicode_form(kind: str) -> Literal["NFC", "NFKC"]:
    """The Unicode normal form an identity of ``kind`` is kept in: NFKC for an email, so
    full-width letters fold to ASCII (``\uff21`` is ``A``, then ``a``), NFC for
    the others (a shop's ids keep their compatibility characters)."""
    return "NFKC" if kind == "email" else "NFC"


def is_email(value: str) -> bool:
    """Whether ``value`` (trimmed, in its normal form) has the form of an email address and
    holds no invisible character."""
    text = value.strip()
    return (
        _invisible(text) is None and _EMAIL.match(unicodedata.normalize("NFKC", text)) is not None
    )


def identity_problem(kind: str, value: str) -> str | None:
    """What is wrong with ``value`` (trimmed) as an identity of ``kind``, in a person's words,
    or ``None`` when it may be used: the one rule sign-up, identify and adding an identity
    share."""
    text = value.strip()
    longest = IDENTITY_MAX_LENGTHS.get(kind)
    if longest is None:
        return f"Unknown identity kind {kind!r}; use one of {', '.join(IDENTITY_MAX_LENGTHS)}"
    if (hidden := _invisible(text)) is not None:
        name = unicodedata.name(hidden, "a control character")
        return (
            f"The {kind} holds an invisible character, U+{ord(hidden):04X} "
            f"({name}), which no {kind} may hold: send it without"
        )
    text = unicodedata.normalize(_unicode_form(kind), text).strip()
    if not text:
        return f"Give the {kind}; it is empty"
    if len(text) > longest:
        return f"A {kind} has at most {longest} characters; this one has {len(text)}"
    if kind == "email" and not is_email(text):
        return "This is not an email address (name@example.com)"
    if kind == "phone" and (_PHONE.match(text) is None or len(_NOT_PHONE_DIGIT.sub("", text)) < 5):
        return "This is not a phone number: digits, spaces, brackets and dashes, '+' first"
    if kind == "phone" and (_is_national(text) or normalise_identity(kind, text)[:2] == "+0"):
        return (
            "Give the phone number in international form, with its country code: "
            "+33 6 12 34 56 78 (or 0033 6 12 34 56 78), not 06 12 34 56 78"
        )
    if kind == "external_id":
        return customer_number_problem(text)
    return None


def canonical_phone(value: str) -> str:
    """``value`` in the one form Rapport keeps a phone number in, whichever door it comes
    through (sign-up, identify, tracking, imports): ``+`` and digits, the ``00`` prefix read
    as ``+`` (``+33 6 12 34 56 78`` and ``0033 6 12 34 56 78`` are ``+33612345678``) and a
    trunk ``(0)`` after the country code dropped (``+44 (0)20 7946 0958``), which is
    the phone identity's form, so a person is one number in the profile, the identities, the
    erasure blocklist and an export. Raises ``ValueError`` saying in a person's words why
    ``value`` is no such number: unreadable, or national (no country code)."""
    problem = identity_problem("phone", value)
    if problem is not None:
        raise ValueError(problem)
    return normalise_identity("phone", value)


def canonical_email(value: str) -> str:
    """``value`` in the one form Rapport keeps an email address in, whichever door it comes
    through (sign-up, identify, tracking, imports): in Unicode NFKC, trimmed and lower-cased,
    the email identity's form, so ``Ana@Example.COM`` (or ``José`` typed with a combining
    accent, or in full-width letters) is one person's ``ana@example.com`` in the profile, the
    identities, the erasure blocklist and an export."""
    return normalise_identity("email", value)


def customer_number_problem(value: str) -> str | None:
    """What keeps ``value`` (trimmed) from being a shop's customer number: it names the
    customer in paths (``/v1/customers/{customer_id}``), where no server or proxy keeps a
    ``/`` (even sent as ``%2F``) inside one segment, and a client drops a ``.`` or ``..``
    segment; every other character travels percent-encoded."""
    if "/" in value:
        return (
            "A customer number cannot hold '/': it names the customer in paths "
            "(/v1/customers/{customer_id}); use another character, such as '-'"
        )
    if value in (".", ".."):
        return f"A customer number cannot be {value!r}: it names the customer in paths"
    return None


def birthday_date(value: Any, *, today: date) -> date | None:
    """A birthday trait's day: text starting with a real ``YYYY-MM-DD`` date (a date, or an
    ISO moment), from 1900-01-01 to ``today``; ``None`` for anything else."""
    if not isinstance(value, str):
        return None
    text = value.strip()[:10]
    if len(text) != 10:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if EARLIEST_BIRTHDAY <= day <= today else None


# The longest time zone a profile keeps (its column); IANA's longest name is 32 characters.
TIME_ZONE_MAX_LENGTH = 50


# Files of a time zone database that name no zone: the host's own zone (``localtime``), the
# rules POSIX strings borrow (``posixrules``), and the zone of a machine not set up yet
# (``Factory``). ``zoneinfo`` opens them, and lists ``localtime`` where the host has one.
PSEUDO_TIME_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@cache
def _time_zones() -> frozenset[str]:
    """The IANA zones a profile may hold: ``zoneinfo.available_timezones()`` (read once)
    without the pseudo-zones; the ``posix/`` and ``right/`` copies are never in it."""
    return frozenset(available_timezones()) - PSEUDO_TIME_ZONES


def time_zone_problem(value: Any) -> str | None:
    """What keeps ``value`` from being a person's time zone: an IANA name of a zone, as
    ``zoneinfo.available_timezones()`` lists them (``Asia/Tokyo``, ``Europe/Paris``,
    ``UTC``, ``Etc/GMT+2``), given as text; the database's pseudo-zones (``localtime``,
    ``posixrules``, ``Factory``) and its ``posix/``/``right/`` copies are no zone."""
    if not isinstance(value, str):
        return "Send the time zone as text, an IANA name such as Europe/Paris"
    if len(value) > TIME_ZONE_MAX_LENGTH:
        return f"A time zone is at most {TIME_ZONE_MAX_LENGTH} characters"
    if value.strip() not in _time_zones():
        return f"Unknown time zone {value!r}: give an IANA name such as Europe/Paris"
    return None


def known_time_zone(value: Any) -> str | None:
    """``value`` trimmed when it is a time zone :func:`time_zone_problem` takes, else
    ``None`` (a device's zone that is no such name is passed over)."""
    zone = value.strip() if isinstance(value, str) else value
    return zone if zone and time_zone_problem(zone) is None else None


def _is_national(phone: str) -> bool:
    """Whether ``phone`` is written in a country's own form (a trunk ``0`` first, no ``+``
    nor ``00``): no country code, so not one number the world over (no country code starts
    with 0, so ``+06…`` is no number at all)."""
    digits = _NOT_PHONE_DIGIT.sub("", phone)
    return not phone.lstrip().startswith("+") and digits[:1] == "0" and digits[:2] != "00"


def normalise_identity(kind: str, value: str) -> str:
    """Canonical form, the one every door (sign-up, identify, tracking, imports, lookups,
    the erasure blocklist) compares and keeps: invisible characters (Unicode Cf and Cc, which
    :func:`identity_problem` refuses where a person can be told) dropped, then Unicode NFC
    (NFKC for an email) and trimmed; emails lower-cased, phones as ``+`` and digits (the
    international ``00`` prefix read as ``+``: ``0033 6 12 34 56 78`` is ``+33612345678``; a
    trunk ``(0)`` in brackets right after the country code dropped: ``+44 (0)20 7946 0958``
    is ``+442079460958``; a national number, which names no country, is no phone identity:
    ``""``)."""
    form = _unicode_form(kind)
    if _invisible(value) is not None:
        value = "".join(c for c in value if unicodedata.category(c) not in _INVISIBLE_CATEGORIES)
    value = unicodedata.normalize(form, value).strip()
    if kind == "email":
        # Lower-casing may leave a form NFKC writes otherwise (a capital I with dot above).
        return unicodedata.normalize(form, value.lower())
    if kind == "phone":
        value = _BRACKETED_TRUNK.sub(r"\1\2 ", value)
        if _is_national(value):
            return ""
        digits = _NOT_PHONE_DIGIT.sub("", value)
        if digits.startswith("00"):  # 0033…, or +0033… as a "+" was put before it
            digits = digits[2:]
        return f"+{digits}" if digits else ""
    return value


def identity_digest(kind: str, value: str) -> str:
    """SHA-256 of the canonical identity, for matching without keeping the value."""
    return hashlib.sha256(f"{kind}:{normalise_identity(kind, value)}".encode()).hexdigest()
