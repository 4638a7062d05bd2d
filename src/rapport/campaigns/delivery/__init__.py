"""Campaigns: delivery (private; reached through rapport.campaigns.service)."""
