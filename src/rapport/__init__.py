"""Rapport: customer experience and loyalty for omnichannel retailers."""

__version__ = "0.1.0"
