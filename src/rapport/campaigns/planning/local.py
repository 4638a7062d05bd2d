"""Local invitations: a workshop's or an offer's invitation to the customers near a store
whose purchase history matches its categories (the home-improvement store's woodworking
class for those who bought timber and tools). Launched like a one-off campaign."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from rapport.campaigns.models import Campaign, Segment
from rapport.campaigns.segments.conditions import parse_definition
from rapport.campaigns.segments.evaluation import (
    near_point_query,
    profiling_allowed,
    segment_query,
)
from rapport.catalog import service as catalog
from rapport.orders import service as orders
from rapport.platform.errors import InvalidInput


def local_invitation_query(db: Session, *, campaign: Campaign) -> Select[tuple[str]]:
    """A SELECT of the customers to invite: home, last known location or home store within
    the campaign's radius of its store, who bought from any of its categories (which picks
    only customers who grant ``personalization``), and in its segment when it has one."""
    store = catalog.get_store(db, store_id=campaign.store_id) if campaign.store_id else None
    if store is None or store.latitude is None or store.longitude is None:
        raise InvalidInput("A local invitation needs a store with coordinates", field="store_id")
    if campaign.radius_km is None or not campaign.categories:
        raise InvalidInput("A local invitation needs a radius and categories", field="radius_km")
    near = near_point_query(
        latitude=store.latitude, longitude=store.longitude, radius_km=campaign.radius_km
    ).subquery()
    # who bought what is purchase history: it picks only those who grant personalization
    bought = profiling_allowed(orders.bought_in_categories(categories=campaign.categories))
    query = select(near.c[0]).where(near.c[0].in_(bought))
    if campaign.segment_id is not None:
        segment = db.get(Segment, campaign.segment_id)
        if segment is not None:
            query = query.where(
                near.c[0].in_(segment_query(db, parse_definition(segment.definition)))
            )
    return query


class _Store(Protocol):
    store_id: str
    name: str
    city: str
    address: str


def store_context(store: _Store) -> dict[str, Any]:
    """The store as an invitation's template sees it (``store.name``, ``store.city`` ...)."""
    return {
        "store_id": store.store_id,
        "name": store.name,
        "city": store.city,
        "address": store.address,
    }
