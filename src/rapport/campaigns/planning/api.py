"""API routes for campaigns' planning (mounted by rapport.campaigns.api)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["campaigns"])
