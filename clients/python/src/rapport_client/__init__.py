"""A typed client for Rapport's HTTP API."""
