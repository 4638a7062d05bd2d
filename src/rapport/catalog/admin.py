"""Admin pages for prices and stock across channels: the product list, a product's prices per
channel and stock per store, and the price and stock consistency report."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from rapport.platform.admin import NavItem, add_template_dir

add_template_dir(Path(__file__).parent / "templates")

NAV: list[NavItem] = []
router = APIRouter(prefix="/admin/catalog", include_in_schema=False)
