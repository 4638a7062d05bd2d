"""A deterministic generator of a realistic retailer's whole history, for demos and tests."""
