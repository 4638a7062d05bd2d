"""Admin pages for campaigns: the segment builder, the campaign editor and results, the
deliveries log, webhook endpoints and subscriptions, and the customer 360's Campaigns panel
(the messages to one customer). Each part's pages live with it."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from rapport.campaigns.delivery import admin as delivery_admin
from rapport.campaigns.planning import admin as planning_admin
from rapport.campaigns.segments import admin as segments_admin
from rapport.campaigns.subscriptions import admin as subscriptions_admin
from rapport.platform.admin import CustomerPanel, NavItem, add_template_dir

add_template_dir(Path(__file__).parent / "templates")

NAV: list[NavItem] = [
    *planning_admin.NAV,
    *segments_admin.NAV,
    *delivery_admin.NAV,
    *subscriptions_admin.NAV,
]
CUSTOMER_PANELS = [CustomerPanel("Campaigns", "/admin/campaigns/customers/{customer_id}/panel", 60)]
router = APIRouter(include_in_schema=False)
router.include_router(planning_admin.router)
router.include_router(segments_admin.router)
router.include_router(subscriptions_admin.router)
router.include_router(delivery_admin.router)
