"""Loyalty: program configuration and the double-entry points ledger."""
