"""The hook a verb runs just before it commits: callers that must store something in the same
transaction as the verb's result (the answer an ``Idempotency-Key`` replays) pass one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

# Called with the session and the verb's result just before it commits (idempotent answers).
BeforeCommit = Callable[[Session, Any], None]
