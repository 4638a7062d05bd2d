"""What ``analytics`` governs: browsing a shop's pages and apps, kept only for people who have
not refused it.

A consent is checked at every use, and keeping what a person browsed is one. A tracked event
is *behaviour* (:func:`is_behaviour`) when it says what its person did in the shop's pages or
apps: a page or screen viewed, a product viewed, a search, a cart, an app opened, any event of
the shop's own naming. What is not: a choice on a purpose (``consent_changed``), who the person
is (``identified``, ``aliased``, ``grouped``), the shop's contract with them (a tracked order,
refund or cancellation: Segment's e-commerce events that become orders and returns), and
Rapport's own facts (``source`` "command": orders, returns, points).

A person who has refused ``analytics`` (at ``PUT /v1/customers/{id}/consents/analytics``, in
an import, or with a tracked ``consent_changed``, an anonymous visitor's too) has their
behaviour acknowledged (answered as accepted, so an SDK's batch is not sent again) and not
stored: it would name them (their ids, their address and browser in its context) however
it were stripped, and nothing of it may reach their profile. The choice is read once per
batch under the write lock, as ``location``'s is, and one made earlier in the same batch
counts. A person with no choice on record is tracked as the shop's pages send it: the
shop's cookie banner decides what they send (docs/tracking.md). The profile processor checks
the choice again when it applies an event (one stored before a refusal it had not applied
yet): such an event is stripped of the person and joins no profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tracking_store asks this module what it may store
    from rapport.events.tracking_store import NewEvent

ANALYTICS_PURPOSE = "analytics"
# Tracked types that are not behaviour: a choice, who the person is, and the e-commerce events
# that become orders, refunds and cancellations (the orders domain's ``orders.tracked``).
NOT_BEHAVIOUR = frozenset(
    {
        "consent_changed",
        "identified",
        "aliased",
        "grouped",
        "order_completed",
        "order_refunded",
        "tracked_order_cancelled",
    }
)


def is_behaviour(event_type: str, source: str) -> bool:
    """Whether an event of ``event_type`` stored with ``source`` is browsing behaviour, which
    a person's refusal of ``analytics`` keeps out of the log and their profile."""
    return source != "command" and event_type not in NOT_BEHAVIOUR


def browsing(events: Mapping[int, NewEvent]) -> list[int]:
    """Of ``events`` (by index), those that are behaviour (:func:`is_behaviour`)."""
    return [i for i, event in events.items() if is_behaviour(event["type"], event["source"])]
