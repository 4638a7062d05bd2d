"""Referrals: a member's code, friends recorded against it, and points for both sides when the
friend completes a first purchase; their API routes."""
