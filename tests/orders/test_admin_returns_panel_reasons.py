"""The customer 360's returns panel words the return risk's reasons as they read: a low-risk
basket's "low risk: 2.3% against the shop's 7.8%" opens the sentence ("Low risk: …"), where
it read "Why: low risk: …"; what raises a risk still follows "Why:"."""

from __future__ import annotations

from html import unescape
from types import SimpleNamespace
from typing import Any

import pytest

from rapport.orders import admin  # noqa: F401  (registers the orders templates)
from rapport.platform.admin import templates


def _panel(risk: dict[str, Any]) -> str:
    view = SimpleNamespace(
        total_orders=3, units_returned=1, units_bought=12, return_rate=1 / 12, returns=[]
    )
    html = templates.env.get_template("orders/customer_returns_panel.html").render(
        view=view, risk=risk
    )
    return " ".join(unescape(html).split())


@pytest.mark.parametrize(
    ("reasons", "said"),
    [
        (
            ["low risk: 2.3% against the shop's 7.8%", "first order in this category"],
            "Low risk: 2.3% against the shop's 7.8%; first order in this category.",
        ),
        (
            ["returned 4 of their last 5 orders", "two sizes of one shoe"],
            "Why: returned 4 of their last 5 orders; two sizes of one shoe.",
        ),
    ],
)
def test_the_return_risk_reasons_read_as_a_sentence(reasons: list[str], said: str) -> None:
    html = _panel({"probability": 0.023, "baseline_probability": None, "reasons": reasons})

    assert said in html
    assert "Why: low risk" not in html
