"""The settings area's own pages: API keys and background jobs (operations, apart from the
business pages). Other domains add their settings pages with ``NavItem(..., "Settings")``."""

from __future__ import annotations

from fastapi import APIRouter

from rapport.platform.admin import NavItem

NAV: list[NavItem] = []
router = APIRouter(prefix="/admin/settings", include_in_schema=False)
