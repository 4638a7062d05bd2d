"""The typed operations, each written once as a function from its arguments to a
:class:`~rapport_client._core.Call`; :mod:`rapport_client.client` turns each into a method of
the sync and of the async client. Customers are named by ``customer``: Rapport's ``cus_…`` id
or the shop's own customer number (``external_id``), passed through as given."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

from rapport_client import _endpoints as api
from rapport_client._core import Call, iso, now_iso, without_none
from rapport_client.types import (
    BatchReceipt,
    Channel,
    CheckoutLoyaltyIn,
    Consent,
    ConsentChange,
    ConsentPurpose,
    Event,
    EventChannel,
    EventReceipt,
    Fulfilment,
    IdentityKind,
    Member,
    Movement,
    Order,
    OrderLineIn,
    Page,
    PaymentIn,
    Placement,
    Posted,
    Preference,
    PrivacyRequest,
    Profile,
    Recommendations,
    Return,
    ReturnLineIn,
)

ItemT = TypeVar("ItemT")

# A cursor-paged list: the call for the page after ``cursor`` (``None``: the first page).
Pages: TypeAlias = Callable[[str | None], Call[Page[ItemT]]]

# --- Customers ------------------------------------------------------------------------------


def create_customer(
    *,
    external_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    locale: str | None = None,
    home_city: str | None = None,
    home_latitude: float | None = None,
    home_longitude: float | None = None,
    time_zone: str | None = None,
    consents: Mapping[ConsentPurpose, bool] | None = None,
) -> Call[Profile]:
    """Register a customer with their consent choices (``409`` if an identity is taken: use
    :meth:`upsert` to find-or-create)."""
    body = without_none(
        external_id=external_id,
        email=email,
        phone=phone,
        first_name=first_name,
        last_name=last_name,
        locale=locale,
        home_city=home_city,
        home_latitude=home_latitude,
        home_longitude=home_longitude,
        time_zone=time_zone,
        consents=dict(consents) if consents is not None else None,
    )
    return Call.to(api.CREATE_CUSTOMER, json=body)


def upsert_customer(
    *,
    identities: Mapping[IdentityKind, str],
    first_name: str | None = None,
    last_name: str | None = None,
    channel: EventChannel | None = None,
) -> Call[Profile]:
    """Find or create the one customer these identities name (profiles sharing a unique
    identity are merged); names given update the profile."""
    body = without_none(
        identities=dict(identities), first_name=first_name, last_name=last_name, channel=channel
    )
    return Call.to(api.IDENTIFY_CUSTOMER, json=body)


def get_customer(customer: str) -> Call[Profile]:
    """The customer 360: profile, identities, consents, preferences and traits."""
    return Call.to(api.GET_CUSTOMER, path=api.GET_CUSTOMER.path(customer=customer))


def lookup_customer(kind: IdentityKind, value: str) -> Call[Profile]:
    """The customer with this identity (an email, phone, loyalty card, ...)."""
    return Call.to(api.LOOKUP_CUSTOMER, params={"kind": kind, "value": value})


def set_consent(
    customer: str, purpose: ConsentPurpose, *, granted: bool, source: str | None = None
) -> Call[Consent]:
    """Grant or withdraw one consent purpose (``source`` defaults to ``api``)."""
    path = api.SET_CONSENT.path(customer=customer, purpose=purpose)
    return Call.to(api.SET_CONSENT, path=path, json=without_none(granted=granted, source=source))


def _consents_of(profile: Any) -> list[Consent]:
    consents: list[Consent] = profile["consents"]
    return consents


def get_consents(customer: str) -> Call[list[Consent]]:
    """The customer's current consent per purpose (from their profile)."""
    path = api.GET_CUSTOMER.path(customer=customer)
    return Call.to(api.GET_CUSTOMER, path=path, parse=_consents_of)


def consent_history(
    customer: str, *, limit: int | None = None, cursor: str | None = None
) -> Call[Page[ConsentChange]]:
    """One page of the customer's consent changes, oldest first (``limit``: 1 to 500, default
    100)."""
    path = api.CONSENT_HISTORY.path(customer=customer)
    return Call.to(api.CONSENT_HISTORY, path=path, params={"limit": limit, "cursor": cursor})


def consent_history_pages(customer: str, *, page_size: int | None = None) -> Pages[ConsentChange]:
    """Every consent change of the customer, oldest first, fetched page by page."""

    def page(cursor: str | None) -> Call[Page[ConsentChange]]:
        return consent_history(customer, limit=page_size, cursor=cursor)

    return page


def set_preferences(
    customer: str,
    *,
    clothing_size: str | None = None,
    shoe_size: float | None = None,
    favourite_categories: Sequence[str] | None = None,
    birthday: str | None = None,
    household_size: int | None = None,
    dietary: Sequence[str] | None = None,
    preferred_store_id: str | None = None,
    preferred_channel: str | None = None,
    source: str | None = None,
) -> Call[list[Preference]]:
    """Update what the customer told the shop about themselves (only the fields given)."""
    body = without_none(
        clothing_size=clothing_size,
        shoe_size=shoe_size,
        favourite_categories=list(favourite_categories) if favourite_categories else None,
        birthday=birthday,
        household_size=household_size,
        dietary=list(dietary) if dietary else None,
        preferred_store_id=preferred_store_id,
        preferred_channel=preferred_channel,
        source=source,
    )
    path = api.SET_PREFERENCES.path(customer=customer)
    return Call.to(api.SET_PREFERENCES, path=path, json=body)


def export_customer(customer: str) -> Call[dict[str, Any]]:
    """Everything Rapport holds about the customer (the data subject access export)."""
    return Call.to(api.EXPORT_CUSTOMER, path=api.EXPORT_CUSTOMER.path(customer=customer))


def erase_customer(
    customer: str, *, requested_by: str, reason: str | None = None
) -> Call[PrivacyRequest]:
    """Erase the customer's personal data everywhere (irreversible)."""
    path = api.ERASE_CUSTOMER.path(customer=customer)
    body = without_none(requested_by=requested_by, reason=reason)
    return Call.to(api.ERASE_CUSTOMER, path=path, json=body)


# --- Events ---------------------------------------------------------------------------------


def _event(
    type: str,
    *,
    channel: EventChannel,
    customer: str | None,
    anonymous_id: str | None,
    occurred_at: datetime | str | None,
    properties: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
    event_id: str | None,
) -> dict[str, Any]:
    return without_none(
        # A client-made id: resending the event (a retry) stores it once.
        event_id=event_id or str(uuid.uuid4()),
        type=type,
        customer_id=customer,
        anonymous_id=anonymous_id,
        channel=channel,
        occurred_at=iso(occurred_at) or now_iso(),
        properties=dict(properties) if properties is not None else None,
        context=dict(context) if context is not None else None,
    )


def track(
    type: str,
    *,
    channel: EventChannel,
    customer: str | None = None,
    anonymous_id: str | None = None,
    occurred_at: datetime | str | None = None,
    properties: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    event_id: str | None = None,
) -> Call[EventReceipt]:
    """Store one tracking event (``event_id``: a new UUID; ``occurred_at``: now)."""
    body = _event(
        type,
        channel=channel,
        customer=customer,
        anonymous_id=anonymous_id,
        occurred_at=occurred_at,
        properties=properties,
        context=context,
        event_id=event_id,
    )
    return Call.to(api.TRACK_EVENT, json=body)


def track_batch(events: Sequence[Event]) -> Call[BatchReceipt]:
    """Store up to 1,000 events; the receipt has one result per event, in order."""
    filled = [
        {"event_id": str(uuid.uuid4()), "occurred_at": now_iso(), **event} for event in events
    ]
    return Call.to(api.TRACK_BATCH, json={"events": filled})


# --- Orders ---------------------------------------------------------------------------------


def place_order(
    *,
    channel: Channel,
    currency: str,
    lines: Sequence[OrderLineIn],
    customer: str | None = None,
    fulfilment: Fulfilment = "ship",
    order_id: str | None = None,
    store_id: str | None = None,
    discount_minor: int = 0,
    shipping_minor: int = 0,
    subtotal_minor: int | None = None,
    total_minor: int | None = None,
    payments: Sequence[PaymentIn] | None = None,
    placed_at: datetime | str | None = None,
    promised_delivery: str | None = None,
    carrier: str | None = None,
    loyalty: CheckoutLoyaltyIn | None = None,
    idempotency_key: str | None = None,
) -> Call[Order]:
    """Record an order from any channel. ``subtotal_minor`` and ``total_minor`` default to
    what the lines add up to (the server checks them either way)."""
    if subtotal_minor is None:
        subtotal_minor = sum(
            line["quantity"] * line["unit_price_minor"] - line.get("discount_minor", 0)
            for line in lines
        )
    if total_minor is None:
        total_minor = subtotal_minor - discount_minor + shipping_minor
    body = without_none(
        order_id=order_id,
        customer_id=customer,
        channel=channel,
        fulfilment=fulfilment,
        store_id=store_id,
        currency=currency,
        lines=[dict(line) for line in lines],
        discount_minor=discount_minor,
        shipping_minor=shipping_minor,
        payments=[dict(payment) for payment in payments] if payments is not None else None,
        subtotal_minor=subtotal_minor,
        total_minor=total_minor,
        placed_at=iso(placed_at),
        promised_delivery=promised_delivery,
        carrier=carrier,
        loyalty=dict(loyalty) if loyalty is not None else None,
    )
    return Call.to(api.PLACE_ORDER, json=body, idempotency_key=idempotency_key)


def get_order(order_id: str) -> Call[Order]:
    return Call.to(api.GET_ORDER, path=api.GET_ORDER.path(order_id=order_id))


def list_orders(
    customer: str, *, limit: int | None = None, cursor: str | None = None
) -> Call[Page[Order]]:
    """One page of the customer's orders, newest first (``limit``: 1 to 100, default 50)."""
    params = {"customer_id": customer, "limit": limit, "cursor": cursor}
    return Call.to(api.LIST_ORDERS, params=params)


def order_pages(customer: str, *, page_size: int | None = None) -> Pages[Order]:
    """Every order of the customer, newest first, fetched page by page."""

    def page(cursor: str | None) -> Call[Page[Order]]:
        return list_orders(customer, limit=page_size, cursor=cursor)

    return page


def record_return(
    order_id: str,
    *,
    lines: Sequence[ReturnLineIn],
    channel: Channel,
    returned_at: datetime | str | None = None,
    store_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[Return]:
    """Return lines of an order: refund, restock and the points the lines earned reversed."""
    body = without_none(
        lines=[dict(line) for line in lines],
        channel=channel,
        returned_at=iso(returned_at),
        store_id=store_id,
    )
    path = api.RECORD_RETURN.path(order_id=order_id)
    return Call.to(api.RECORD_RETURN, path=path, json=body, idempotency_key=idempotency_key)


def cancel_order(
    order_id: str, *, reason: str | None = None, idempotency_key: str | None = None
) -> Call[Order]:
    """Cancel an order not yet handed over (a pick-up's reservation released, a parcel's units
    back in stock, its points taken back and those it was paid with given back); one
    shipped, delivered, collected or already cancelled raises ``Conflict``."""
    path = api.CANCEL_ORDER.path(order_id=order_id)
    body = without_none(reason=reason)
    return Call.to(api.CANCEL_ORDER, path=path, json=body, idempotency_key=idempotency_key)


# --- Loyalty --------------------------------------------------------------------------------


def get_member(customer: str) -> Call[Member]:
    """The member's balance, debt and open lots (the 20 soonest to expire; ``more_lots``
    counts the others)."""
    return Call.to(api.GET_MEMBER, path=api.GET_MEMBER.path(customer=customer))


def _balance_of(member: Any) -> int:
    return int(member["balance"])


def get_balance(customer: str) -> Call[int]:
    """The member's points balance."""
    path = api.GET_MEMBER.path(customer=customer)
    return Call.to(api.GET_MEMBER, path=path, parse=_balance_of)


def get_ledger_page(
    customer: str, *, limit: int | None = None, cursor: str | None = None
) -> Call[Page[Movement]]:
    """One page of the member's statement, newest first (``limit``: 1 to 200, default 50)."""
    path = api.GET_STATEMENT.path(customer=customer)
    return Call.to(api.GET_STATEMENT, path=path, params={"limit": limit, "cursor": cursor})


def ledger_pages(customer: str, *, page_size: int | None = None) -> Pages[Movement]:
    """Every movement of the member's statement, newest first, fetched page by page."""

    def page(cursor: str | None) -> Call[Page[Movement]]:
        return get_ledger_page(customer, limit=page_size, cursor=cursor)

    return page


def earn(
    customer: str,
    *,
    points: int,
    reason: str,
    order_id: str | None = None,
    rule_id: str | None = None,
    expires_at: datetime | str | None = None,
    channel: Channel | None = None,
    idempotency_key: str | None = None,
) -> Call[Posted]:
    """Give the member points (``expires_at``: the program's expiry from now)."""
    body = without_none(
        points=points,
        reason=reason,
        order_id=order_id,
        rule_id=rule_id,
        expires_at=iso(expires_at),
        channel=channel,
    )
    path = api.EARN.path(customer=customer)
    return Call.to(api.EARN, path=path, json=body, idempotency_key=idempotency_key)


def redeem(
    customer: str,
    *,
    points: int,
    reason: str | None = None,
    order_id: str | None = None,
    channel: Channel | None = None,
    idempotency_key: str | None = None,
) -> Call[Posted]:
    """Spend the member's points (``409`` when the balance is too low)."""
    body = without_none(points=points, reason=reason, order_id=order_id, channel=channel)
    path = api.REDEEM.path(customer=customer)
    return Call.to(api.REDEEM, path=path, json=body, idempotency_key=idempotency_key)


def adjust(
    customer: str,
    *,
    points: int,
    reason: str,
    expires_at: datetime | str | None = None,
    idempotency_key: str | None = None,
) -> Call[Posted]:
    """Correct the balance by hand: ``points`` above zero adds, below zero takes away."""
    body = without_none(points=points, reason=reason, expires_at=iso(expires_at))
    path = api.ADJUST.path(customer=customer)
    return Call.to(api.ADJUST, path=path, json=body, idempotency_key=idempotency_key)


# --- Recommendations ------------------------------------------------------------------------


def recommendations(
    *,
    placement: Placement,
    customer: str | None = None,
    anonymous_id: str | None = None,
    item_id: str | None = None,
    cart: Sequence[str] | None = None,
    limit: int | None = None,
    store_id: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    device: str | None = None,
    at: datetime | str | None = None,
    margin_weight: float | None = None,
    exclude_purchased: bool | None = None,
) -> Call[Recommendations]:
    """Items to show at ``placement``, for a customer, a visitor or nobody in particular, with
    the page's context (the product shown, the cart, the store, where and when).
    ``exclude_purchased``: only items the customer never bought (``placement="discover"``
    always does this)."""
    params = {
        "placement": placement,
        "customer_id": customer,
        "anonymous_id": anonymous_id,
        "item_id": item_id,
        "cart": list(cart) if cart is not None else None,
        "limit": limit,
        "store_id": store_id,
        "lat": lat,
        "lon": lon,
        "device": device,
        "at": iso(at),
        "margin_weight": margin_weight,
        "exclude_purchased": exclude_purchased,
    }
    return Call.to(api.GET_RECOMMENDATIONS, params=params)


def recommendations_for(
    customer: str,
    *,
    placement: Placement = "home",
    item_id: str | None = None,
    cart: Sequence[str] | None = None,
    limit: int | None = None,
    store_id: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    device: str | None = None,
    at: datetime | str | None = None,
    margin_weight: float | None = None,
    exclude_purchased: bool | None = None,
) -> Call[Recommendations]:
    """Items for this customer (``placement``: the home page unless said; ``"discover"`` for
    only what they never bought)."""
    return recommendations(
        placement=placement,
        customer=customer,
        item_id=item_id,
        cart=cart,
        limit=limit,
        store_id=store_id,
        lat=lat,
        lon=lon,
        device=device,
        at=at,
        margin_weight=margin_weight,
        exclude_purchased=exclude_purchased,
    )
