"""Identity values in one canonical form, and their digests for the suppression list.

Shared by ingestion (which refuses events of erased people) and the customers domain (which
resolves and erases identities), so both always agree on what "the same email" means.
"""

from __future__ import annotations

import hashlib
import re

_NOT_PHONE_DIGIT = re.compile(r"[^0-9]")


def normalise_identity(kind: str, value: str) -> str:
    """Canonical form: emails lower-cased, phones as digits with a leading '+', others trimmed."""
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        digits = _NOT_PHONE_DIGIT.sub("", value)
        return f"+{digits}" if digits else ""
    return value


def identity_digest(kind: str, value: str) -> str:
    """SHA-256 of the canonical identity, for matching without keeping the value."""
    return hashlib.sha256(f"{kind}:{normalise_identity(kind, value)}".encode()).hexdigest()
