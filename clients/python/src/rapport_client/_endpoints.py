"""Every operation the typed methods call, in one table: method, path template, the query
parameters the client sends, and what makes a repeat of it harmless. The test suite checks
each against the server's ``/openapi.json``, so a renamed route or parameter fails it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

# How a repeated request is answered:
#   "key"     - the server stores the answer under the Idempotency-Key and replays it;
#   "natural" - repeating it changes nothing more (reads, PUTs of a state, events by event_id);
#   "none"    - a repeat may apply twice (retried only when it surely did not arrive).
Repeat = Literal["key", "natural", "none"]

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    template: str
    repeat: Repeat
    query: tuple[str, ...] = field(default=())

    def path(self, **values: str) -> str:
        """The template with each placeholder filled, percent-encoded as one path segment."""
        return _PLACEHOLDER.sub(lambda match: quote(values[match.group(1)], safe=""), self.template)


def _get(template: str, *query: str) -> Endpoint:
    return Endpoint("GET", template, "natural", query)


CREATE_CUSTOMER = Endpoint("POST", "/v1/customers", "key")
IDENTIFY_CUSTOMER = Endpoint("POST", "/v1/customers/identify", "key")
GET_CUSTOMER = _get("/v1/customers/{customer}")
LOOKUP_CUSTOMER = _get("/v1/customers/lookup", "kind", "value")
SET_CONSENT = Endpoint("PUT", "/v1/customers/{customer}/consents/{purpose}", "natural")
CONSENT_HISTORY = _get("/v1/customers/{customer}/consents/history", "limit", "cursor")
SET_PREFERENCES = Endpoint("PUT", "/v1/customers/{customer}/preferences", "natural")
EXPORT_CUSTOMER = _get("/v1/customers/{customer}/export")
ERASE_CUSTOMER = Endpoint("POST", "/v1/customers/{customer}/erase", "key")

TRACK_EVENT = Endpoint("POST", "/v1/events", "natural")
TRACK_BATCH = Endpoint("POST", "/v1/events/batch", "natural")

PLACE_ORDER = Endpoint("POST", "/v1/orders", "key")
GET_ORDER = _get("/v1/orders/{order_id}")
LIST_ORDERS = _get("/v1/orders", "customer_id", "limit", "cursor")
RECORD_RETURN = Endpoint("POST", "/v1/orders/{order_id}/returns", "key")
CANCEL_ORDER = Endpoint("POST", "/v1/orders/{order_id}/cancel", "key")

GET_MEMBER = _get("/v1/loyalty/members/{customer}")
GET_STATEMENT = _get("/v1/loyalty/members/{customer}/statement", "limit", "cursor")
EARN = Endpoint("POST", "/v1/loyalty/members/{customer}/earn", "key")
REDEEM = Endpoint("POST", "/v1/loyalty/members/{customer}/redeem", "key")
ADJUST = Endpoint("POST", "/v1/loyalty/members/{customer}/adjust", "key")

GET_RECOMMENDATIONS = _get(
    "/v1/recommendations",
    "placement",
    "customer_id",
    "anonymous_id",
    "item_id",
    "cart",
    "limit",
    "store_id",
    "lat",
    "lon",
    "device",
    "at",
    "margin_weight",
    "exclude_purchased",
)

ALL: tuple[Endpoint, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Endpoint)
)


def known_repeat(method: str, path: str) -> Repeat | None:
    """How the table says a repeat of ``method path`` is answered, if it lists that route."""
    for endpoint in ALL:
        if endpoint.method == method and _matches(endpoint.template, path):
            return endpoint.repeat
    return None


def _matches(template: str, path: str) -> bool:
    pattern = _PLACEHOLDER.sub("[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
    return re.fullmatch(pattern, path) is not None
