"""Campaigns endpoints: segments, campaigns and their results, deliveries, webhook endpoints,
webhook subscriptions to Rapport's events, the in-app inbox and unsubscribe links. Each part's
routes live with it."""

from __future__ import annotations

from fastapi import APIRouter

from rapport.campaigns.delivery.api import router as delivery_router
from rapport.campaigns.planning.api import router as planning_router
from rapport.campaigns.segments.api import router as segments_router
from rapport.campaigns.subscriptions.api import router as subscriptions_router

router = APIRouter()
router.include_router(segments_router)
router.include_router(planning_router)
router.include_router(delivery_router)
router.include_router(subscriptions_router)
