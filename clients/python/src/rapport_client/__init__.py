"""A typed client for Rapport's HTTP API: :class:`Rapport` (sync) and :class:`AsyncRapport`
(asyncio), with automatic Idempotency-Keys on commands, safe retries and problem+json errors
as exceptions (:mod:`rapport_client.errors`)."""

from rapport_client._version import __version__
from rapport_client.async_client import AsyncRapport
from rapport_client.client import Rapport
from rapport_client.errors import (
    Conflict,
    ConnectionFailed,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    RapportError,
    RateLimited,
    ServerError,
    Unauthorized,
)

__all__ = [
    "AsyncRapport",
    "Conflict",
    "ConnectionFailed",
    "FieldError",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "Rapport",
    "RapportError",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "__version__",
]
