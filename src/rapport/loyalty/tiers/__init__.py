"""Tiers: the ladder and how a member moves on it, each member's standing, and the reviews
that upgrade, renew and downgrade them."""
