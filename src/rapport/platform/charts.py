"""Charts on the admin pages, described once in Python.

A page builds a :class:`Chart` where it computes the figures; the ``chart`` macro
(``macros.html``) renders from that one object both the canvas (drawn by Chart.js from the
embedded configuration) and a table of the same figures beside it. So the picture and the
numbers cannot drift apart, and the admin page check compares what Chart.js plotted with the
table (``data-chart-table``) on every page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

PALETTE = ("#3c71f7", "#00a86b", "#f59e0b", "#e11d48", "#7c3aed", "#0891b2", "#64748b")

# How long a bar of zero is drawn (Chart.js draws none at all otherwise).
ZERO_BAR_PX = 2

Unit = Literal["count", "money", "share", "percent", "score", "points"]


@dataclass(frozen=True)
class Series:
    """One line or set of bars: a value per label (``None`` where there is none)."""

    label: str
    values: Sequence[float | int | None]
    color: str | None = None


@dataclass(frozen=True)
class Chart:
    """A chart and its table.

    ``unit`` says how the table formats the values: ``money`` values are minor units (shown
    in ``currency``, plotted in major units), ``share`` values are fractions (plotted as
    percentages), ``percent`` values are already percentages."""

    id: str
    kind: Literal["bar", "line"]
    labels: Sequence[str]
    series: Sequence[Series]
    title: str = ""
    unit: Unit = "count"
    currency: str | None = None
    stacked: bool = False
    horizontal: bool = False
    y_min: float | None = None
    y_max: float | None = None
    label_heading: str = ""
    extra_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for one in self.series:
            if len(one.values) != len(self.labels):
                raise ValueError(
                    f"chart {self.id}: series {one.label!r} has {len(one.values)} values"
                    f" for {len(self.labels)} labels"
                )

    def plotted(self, value: float | int | None) -> float | None:
        """The value as drawn: money in major units, shares as percentages."""
        if value is None:
            return None
        if self.unit == "money":
            return round(value / 100, 2)
        if self.unit == "share":
            return round(value * 100, 2)
        return value

    def config(self) -> dict[str, Any]:
        """The Chart.js configuration (type, data, options)."""
        datasets = []
        for index, one in enumerate(self.series):
            color = one.color or PALETTE[index % len(PALETTE)]
            dataset: dict[str, Any] = {
                "label": one.label,
                "data": [self.plotted(v) for v in one.values],
                "backgroundColor": color,
                "borderColor": color,
            }
            if self.kind == "bar" and not self.stacked:
                # A zero is a figure: drawn as a sliver, so that it reads apart from a band
                # left blank (None, no bar at all). Not in stacks, where it would look like a
                # share.
                dataset["minBarLength"] = ZERO_BAR_PX
            if self.kind == "line":
                dataset["fill"] = False
                dataset["tension"] = 0.2
                dataset["spanGaps"] = True
            datasets.append(dataset)
        value_axis: dict[str, Any] = {"stacked": self.stacked}
        if self.y_min is not None:
            value_axis["min"] = self.y_min
        else:
            value_axis["beginAtZero"] = True
        if self.y_max is not None:
            value_axis["max"] = self.y_max
        label_axis: dict[str, Any] = {"stacked": self.stacked}
        options: dict[str, Any] = {
            "responsive": True,
            "maintainAspectRatio": False,
            "animation": False,
            "plugins": {
                "legend": {"display": len(self.series) > 1},
                "title": {"display": bool(self.title), "text": self.title},
            },
            "scales": {"x": value_axis, "y": label_axis}
            if self.horizontal
            else {"x": label_axis, "y": value_axis},
        }
        if self.horizontal:
            options["indexAxis"] = "y"
        options.update(self.extra_options)
        return {
            "type": self.kind,
            "data": {"labels": list(self.labels), "datasets": datasets},
            "options": options,
        }

    def rows(self) -> list[tuple[str, list[float | int | None]]]:
        """The table's rows: a label and its value in each series."""
        return [
            (label, [one.values[index] for one in self.series])
            for index, label in enumerate(self.labels)
        ]
