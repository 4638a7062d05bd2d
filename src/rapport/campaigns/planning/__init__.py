"""Campaigns: planning (private; reached through rapport.campaigns.service)."""
