"""Campaigns: segments (private; reached through rapport.campaigns.service)."""
