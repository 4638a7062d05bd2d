"""The ranges a webhook may not reach unless allowed, as the code lists them, are the ranges
both documents name: the operator guide's RAPPORT_WEBHOOK_ALLOWED_NETWORKS row and
docs/webhooks.md (the guide's row once named fewer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rapport.campaigns.delivery import webhooks

DOCS = Path(__file__).parents[3] / "docs"


def _allowed_networks_row() -> str:
    guide = (DOCS / "operator-guide.md").read_text()
    return next(
        line
        for line in guide.splitlines()
        if line.startswith("| `RAPPORT_WEBHOOK_ALLOWED_NETWORKS`")
    )


def _shown(network: object) -> set[str]:
    """How a document may write the range: as a CIDR, or a single address without /32 or
    /128 (an IPv6 one also in brackets, as a URL writes it)."""
    text = str(network)
    if not text.endswith(("/32", "/128")):
        return {f"`{text}`"}
    address = text.split("/")[0]
    return {f"`{text}`", f"`{address}`", f"`[{address}]`"}


@pytest.mark.parametrize("document", ["operator-guide", "webhooks"])
def test_every_refused_range_is_named_where_the_setting_is_described(document: str) -> None:
    text = (
        _allowed_networks_row()
        if document == "operator-guide"
        else (DOCS / "webhooks.md").read_text()
    )
    ranges = [network for network, _ in webhooks._DENIED] + [
        webhooks._NAT64,
        webhooks._SIXTOFOUR,
    ]
    missing = [str(n) for n in ranges if not any(shown in text for shown in _shown(n))]
    assert missing == []
