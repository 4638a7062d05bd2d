"""The client's version, sent in its User-Agent (kept equal to pyproject's by a test)."""

__version__ = "0.1.0"
