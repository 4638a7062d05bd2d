"""Subscriptions: an endpoint (``WebhookEndpoint``: URL, signing secret, tries) and the event
types it wants, active or not.

Each subscription has a system campaign of its own (key ``webhooks.subscription.<endpoint
id>``, purpose ``service``, webhook channel): its deliveries are the events, and the delivery
part sends, retries and replays them like any webhook. ``service`` because these messages go
to the retailer's own systems, not to the customer as marketing: no marketing consent,
quiet hours or frequency cap applies, while a message about a customer who was erased in the
meantime is still refused by the contact gate.

Deactivating or deleting a subscription cancels its campaign and suppresses the deliveries
still waiting (``subscription inactive``); a dead one replayed later is suppressed by the
dispatcher too (the campaign is cancelled). Reactivating sends the events logged from then
on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.webhooks import check_url, create_endpoint, refuse_taken_name
from rapport.campaigns.models import (
    SUBSCRIPTION_CAMPAIGN_PREFIX,
    Campaign,
    Delivery,
    DeliveryStatus,
    WebhookEndpoint,
    WebhookSubscription,
)
from rapport.campaigns.planning.editing import ensure_system_campaign
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound, Problem, field_error
from rapport.platform.idempotency import BeforeCommit

# The event types offered, with what each says (the API reference has each one's schema as
# ``event.<type>``).
EVENT_TYPES: dict[str, str] = {
    "points_earned": "Points credited to a member (an order, a rule, a reason)",
    "points_redeemed": "Points a member spent",
    "tier_changed": "A member moved up or down the tier ladder",
    "membership_renewed": "A paid membership was charged for its next period",
    "delivery_late": "A shipped order missed (or will miss) its promised date",
    "ticket_breached": "A support ticket passed its SLA due time unresolved",
    "review_published": "A product review became visible to shoppers",
    "customer_erased": "A customer was erased (carries only the random customer id)",
}
MAX_LISTED = 200
WAITING = ("queued", "deferred", "failed")
INACTIVE_REASON = "subscription inactive"
_TEMPLATES = {("webhook", "en"): ("Rapport event", "Rapport event")}


def validate_event_types(values: Sequence[str]) -> list[str]:
    """The event types, each one offered (an error names ``event_types.<i>``, dotted as
    every field the API names), once each."""
    if not values:
        raise InvalidInput("Choose at least one event type", field="event_types")
    for index, value in enumerate(values):
        if value not in EVENT_TYPES:
            raise InvalidInput(
                f"Unknown event type {value!r}; one of {', '.join(EVENT_TYPES)}",
                field=f"event_types.{index}",
            )
    return list(dict.fromkeys(values))


def _checked_name(db: Session, name: str, *, other_than: int | None = None) -> str:
    """``name`` stripped: 1 to 200 characters (422) that no other endpoint holds (409)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("A name of 1 to 200 characters", field="name")
    refuse_taken_name(db, name, other_than=other_than)
    return name


def _checked_attempts(value: object) -> int:
    """Tries before dead: a whole number from 1 to 20 (text, as a form sends, is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
        raise InvalidInput("max_attempts between 1 and 20", field="max_attempts")
    return value


def subscription_problems(
    db: Session,
    *,
    name: str,
    url: str,
    max_attempts: object,
    event_types: Sequence[str],
    other_than: int | None = None,
) -> list[Problem]:
    """Every field of a subscription that would be refused, each as the problem naming it, in
    the order a form shows them (``name``, ``url``, ``max_attempts``, ``event_types``); empty
    when all are fine. ``name``: 1 to 200 characters, held by no other endpoint (``Conflict``,
    409); ``url``: as ``check_url``; ``max_attempts``: a whole number from 1 to 20;
    ``event_types``: as ``validate_event_types``. ``create_subscription`` and the admin form
    both check with it, so a person sees every refused field at once."""
    checks: list[Callable[[], object]] = [
        lambda: _checked_name(db, name, other_than=other_than),
        lambda: check_url(url),
        lambda: _checked_attempts(max_attempts),
        lambda: validate_event_types(event_types),
    ]
    problems: list[Problem] = []
    for check in checks:
        try:
            check()
        except Problem as problem:
            problems.append(problem)
    return problems


def _refuse(problems: Sequence[Problem]) -> None:
    """Raise a 422 whose ``errors`` names each refused field (a name in use among them with
    code ``taken``); a name in use alone is the 409 it is wherever a name is taken."""
    if not problems:
        return
    if len(problems) == 1 and isinstance(problems[0], Conflict):
        raise problems[0]
    errors = [
        field_error(
            ("body", *_path(problem.field or "body")),
            problem.detail,
            "taken" if isinstance(problem, Conflict) else "invalid",
        )
        for problem in problems
    ]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise InvalidInput(
        f"{first['field']}: {first['message']}{more}", field=first["field"], errors=errors
    )


def _path(field: str) -> tuple[str | int, ...]:
    """``event_types.1`` as ``("event_types", 1)``."""
    return tuple(int(part) if part.isdigit() else part for part in field.split("."))


def campaign_key(endpoint_id: int) -> str:
    return f"{SUBSCRIPTION_CAMPAIGN_PREFIX}{endpoint_id}"


@dataclass(frozen=True)
class SubscriptionView:
    subscription: WebhookSubscription
    endpoint: WebhookEndpoint


@dataclass(frozen=True)
class CreatedSubscription:
    subscription: WebhookSubscription
    endpoint: WebhookEndpoint
    secret: str  # shown once


def create_subscription(
    db: Session,
    *,
    name: str,
    url: str,
    event_types: Sequence[str],
    active: bool = True,
    max_attempts: int = 6,
    created_by: str = "",
    before_commit: BeforeCommit | None = None,
) -> CreatedSubscription:
    """A new endpoint (with its generated signing secret, returned once) subscribed to
    ``event_types``, and its campaign, in one transaction; commits. Refused, changing
    nothing, with the problem naming the field (``subscription_problems``), or with several
    fields wrong a 422 whose ``errors`` names each."""
    _refuse(
        subscription_problems(
            db, name=name, url=url, max_attempts=max_attempts, event_types=event_types
        )
    )
    wanted = validate_event_types(event_types)
    result: dict[str, CreatedSubscription] = {}

    def subscribe(session: Session, created: Any) -> None:
        endpoint: WebhookEndpoint = created.endpoint
        endpoint.active = active
        now = clock.now()
        campaign = ensure_system_campaign(
            session,
            key=campaign_key(endpoint.id),
            name=f"Webhook subscription: {endpoint.name}"[:200],
            purpose="service",
            channel="webhook",
            templates=_TEMPLATES,
            webhook_endpoint_id=endpoint.id,
        )
        if not active:
            campaign.status = "cancelled"
        subscription = WebhookSubscription(
            endpoint_id=endpoint.id,
            campaign_id=campaign.id,
            event_types=wanted,
            active=active,
            created_by=created_by[:200],
            created_at=now,
            updated_at=now,
        )
        session.add(subscription)
        session.flush()
        result["created"] = CreatedSubscription(subscription, endpoint, created.secret)
        if before_commit is not None:
            before_commit(session, result["created"])

    create_endpoint(db, name=name, url=url, max_attempts=max_attempts, before_commit=subscribe)
    return result["created"]


def get_subscription(db: Session, *, subscription_id: int) -> SubscriptionView:
    subscription = db.get(WebhookSubscription, subscription_id)
    endpoint = db.get(WebhookEndpoint, subscription.endpoint_id) if subscription else None
    if subscription is None or endpoint is None:
        raise NotFound(f"No subscription {subscription_id}", field="subscription_id")
    return SubscriptionView(subscription, endpoint)


def list_subscriptions(
    db: Session, *, before: int | None = None, limit: int = 50
) -> list[SubscriptionView]:
    """Newest first, at most ``MAX_LISTED``; ``before`` pages on (an id)."""
    query = (
        select(WebhookSubscription, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookSubscription.endpoint_id)
        .order_by(WebhookSubscription.id.desc())
        .limit(max(1, min(limit, MAX_LISTED)))
    )
    if before is not None:
        query = query.where(WebhookSubscription.id < before)
    return [SubscriptionView(s, e) for s, e in db.execute(query).all()]


def update_subscription(
    db: Session, *, subscription_id: int, changes: Mapping[str, Any]
) -> SubscriptionView:
    """Change the fields given (``name``, ``url``, ``event_types``, ``active``,
    ``max_attempts``); the others keep their value. Commits. Refused, changing nothing, as
    ``create_subscription`` refuses: a 422 whose ``errors`` names each refused field (a null
    one too: leave it out to keep it), or the 409 of a name in use alone."""
    view = get_subscription(db, subscription_id=subscription_id)
    subscription, endpoint = view.subscription, view.endpoint
    checks: dict[str, Callable[[], Any]] = {
        "name": lambda: _checked_name(db, str(changes["name"]), other_than=endpoint.id),
        "url": lambda: check_url(str(changes["url"])),
        "max_attempts": lambda: _checked_attempts(changes["max_attempts"]),
        "event_types": lambda: validate_event_types(changes["event_types"]),
    }
    checked: dict[str, Any] = {}
    problems: list[Problem] = []
    for field in (*checks, *(name for name in changes if name not in checks)):
        if field not in changes:
            continue
        if changes[field] is None:
            problems.append(
                InvalidInput(f"{field} cannot be null; leave it out to keep it", field=field)
            )
            continue
        if field in checks:
            try:
                checked[field] = checks[field]()
            except Problem as problem:
                problems.append(problem)
    _refuse(problems)
    if "event_types" in checked:
        subscription.event_types = checked["event_types"]
    if "name" in checked:
        endpoint.name = checked["name"]
    if "url" in checked:
        endpoint.url = checked["url"]
    if "max_attempts" in checked:
        endpoint.max_attempts = checked["max_attempts"]
    if "active" in changes and bool(changes["active"]) != subscription.active:
        _set_active(db, subscription, endpoint, active=bool(changes["active"]))
    subscription.updated_at = clock.now()
    db.commit()
    return view


def delete_subscription(db: Session, *, subscription_id: int) -> None:
    """Remove the subscription: its waiting deliveries are suppressed, its campaign cancelled
    (the delivery history stays), its endpoint kept inactive with its tries. Commits."""
    view = get_subscription(db, subscription_id=subscription_id)
    _set_active(db, view.subscription, view.endpoint, active=False)
    db.delete(view.subscription)
    db.commit()


def _set_active(
    db: Session, subscription: WebhookSubscription, endpoint: WebhookEndpoint, *, active: bool
) -> None:
    subscription.active = active
    endpoint.active = active
    campaign = db.get(Campaign, subscription.campaign_id)
    if campaign is not None:
        campaign.status = "active" if active else "cancelled"
        campaign.updated_at = clock.now()
    if not active:
        _suppress_waiting(db, campaign_id=subscription.campaign_id)


def _suppress_waiting(db: Session, *, campaign_id: int) -> None:
    """Deliveries not sent yet are not sent: suppressed, with a history row each."""
    now = clock.now()
    ids = list(
        db.scalars(
            update(Delivery)
            .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(WAITING))
            .values(status="suppressed", reason=INACTIVE_REASON, claimed_by=None, updated_at=now)
            .returning(Delivery.id),
            execution_options={"synchronize_session": False},
        )
    )
    if ids:
        db.execute(
            insert(DeliveryStatus),
            [
                {"delivery_id": i, "status": "suppressed", "reason": INACTIVE_REASON, "at": now}
                for i in ids
            ],
        )
