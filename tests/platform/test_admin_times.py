"""Every time an admin page shows goes through the ``moment`` filter ("8 Dec 2026, 04:05 UTC"),
never a template's own ``strftime``: the deliveries detail, webhook tries, a customer's
orders (their status line), the held events of event processing and the loyalty program's
version history wrote their own formats."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "rapport"
# A strftime that writes a form field's value (a datetime-local input) is no time shown.
IN_A_VALUE = re.compile(r'value="[^"]*strftime')


def test_no_admin_template_formats_a_shown_time_itself() -> None:
    writing = sorted(
        str(template.relative_to(SRC))
        for template in SRC.glob("**/templates/**/*.html")
        if any(
            "strftime(" in line and not IN_A_VALUE.search(line)
            for line in template.read_text().splitlines()
        )
    )
    assert writing == []
