"""Admin pages for campaigns' planning (mounted by rapport.campaigns.admin)."""

from __future__ import annotations

from fastapi import APIRouter

from rapport.platform.admin import NavItem

NAV: list[NavItem] = []
router = APIRouter(include_in_schema=False)
