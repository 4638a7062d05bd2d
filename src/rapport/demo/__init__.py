"""A deterministic generator of a realistic retailer's whole history (``generator``, ``records``)
and its loaders (``loader``, ``feedback_loader``), for demos and tests. The load itself is the
workflow :mod:`rapport.flows.demo`."""
