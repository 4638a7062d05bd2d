"""Workflows that cross domains, as named verbs. Each calls the domains it needs only through
their ``service`` modules."""
