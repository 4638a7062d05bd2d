"""Identifiers: opaque, sortable, URL-safe."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """A time-ordered id such as ``cus_01j9...``: sorts by creation, safe in URLs and logs."""
    millis = int(time.time() * 1000)
    return f"{prefix}_{millis:012x}{secrets.token_hex(8)}"
