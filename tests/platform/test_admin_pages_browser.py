"""Every admin page of the demo retailer, as a 1,280 px wide browser sees it: it fits the
window, it is not an endless scroll, it breaks no Content-Security-Policy rule, its tables
neither scroll sideways nor break a word mid-letter, and each chart plots exactly the figures
in the table beside it (the table is rendered from the same
:class:`rapport.platform.charts.Chart` the server computed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import NAVIGATION_TIMEOUT_MS, DemoSite, sign_in, wait_until_settled

pytestmark = pytest.mark.browser

WIDTH = 1280
# A page longer than this is a list that should have been paginated (the pages this check
# was written for were 13,700 and 18,700 px).
MAX_HEIGHT = 7_000
MAX_PAGES = 70

# Each chart's plotted series next to its table's, as the browser has them.
CHARTS_AND_TABLES = """() => {
  const found = [];
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const chart = Chart.getChart(canvas);
    const table = document.querySelector(`table[data-chart-table="${canvas.id}"]`);
    const rows = table ? [...table.querySelectorAll("tbody tr[data-label]")].map((row) => ({
      label: row.dataset.label,
      values: [...row.querySelectorAll("td[data-value]")].map(
        (cell) => (cell.dataset.value === "" ? null : Number(cell.dataset.value))),
    })) : null;
    found.push({
      id: canvas.id,
      drawn: Boolean(chart),
      labels: chart ? chart.data.labels.map(String) : [],
      series: chart ? chart.data.datasets.map((set) => set.data.map(
        (v) => (v === null || v === undefined ? null : Number(v)))) : [],
      // per series, the length in pixels each value is drawn at (bars only)
      lengths: chart && chart.config.type === "bar" ? chart.data.datasets.map((set, i) =>
        chart.getDatasetMeta(i).data.map((bar) => {
          const { x, y, base, horizontal } = bar.getProps(["x", "y", "base", "horizontal"], true);
          return Math.abs(base - (horizontal ? x : y));
        })) : null,
      stacked: chart
        ? Boolean(chart.options.scales?.y?.stacked || chart.options.scales?.x?.stacked) : false,
      rows,
    });
  });
  return found;
}"""


# Words in table cells that the browser split over two lines between letters ("delivere|d",
# "€5.|00"); a break after a hyphen, slash, colon or comma is ordinary line breaking, and
# opaque ids (class "opaque") may break anywhere.
BROKEN_WORDS = """() => {
  const broken = [];
  for (const cell of document.querySelectorAll("td, th")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest(".opaque")) continue;
      for (const match of node.data.matchAll(/[^\\s\\-\\/:,]+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0)
          .map((r) => Math.round(r.top)));
        if (lines.size > 1) broken.push(match[0]);
      }
    }
  }
  return broken;
}"""
# Tables wider than the box that holds them: what is past the edge is seen only by scrolling.
SCROLLING_TABLES = """() => [...document.querySelectorAll(".table-wrap")]
  .filter((box) => box.scrollWidth > box.clientWidth + 1)
  .map((box) => `${box.querySelector("table")?.dataset.testid ?? "a table"} is `
    + `${box.scrollWidth} px in ${box.clientWidth} px`)"""


def _same(plotted: list[float | None], table: list[float | None]) -> bool:
    if len(plotted) != len(table):
        return False
    for drawn, shown in zip(plotted, table, strict=True):
        if (drawn is None) != (shown is None):
            return False
        if drawn is not None and shown is not None and abs(drawn - shown) > 0.01:
            return False
    return True


def _shape(path: str) -> str:
    """A path with its ids blanked: one page of each kind is enough."""
    return re.sub(r"/[^/]*\d[^/]*", "/{id}", path.split("?")[0])


def _admin_links(page: Any, selector: str) -> list[str]:
    hrefs: list[str] = page.eval_on_selector_all(
        selector, "(links) => links.map((link) => link.getAttribute('href'))"
    )
    return [
        href
        for href in hrefs
        if href
        and href.startswith("/admin")
        and not href.startswith(("/admin/logout", "/admin/login"))
        and "download" not in href
        and not href.endswith((".csv", ".json"))
    ]


def _crawl(page: Any, site: DemoSite) -> Iterator[tuple[str, Any]]:
    """The navigation's pages, then one page of each kind they link to."""
    page.goto(f"{site.base_url}/admin")
    queue = [*_admin_links(page, "header a"), "/admin"]
    seen_shapes: set[str] = set()
    visited = 0
    while queue and visited < MAX_PAGES:
        path = queue.pop(0)
        shape = _shape(path)
        if shape in seen_shapes:
            continue
        seen_shapes.add(shape)
        response = page.goto(f"{site.base_url}{path}")
        wait_until_settled(page)
        visited += 1
        yield path, response
        queue.extend(_admin_links(page, "main a"))


def test_every_admin_page_fits_and_its_charts_agree_with_their_tables(
    browser: Any, demo_site: DemoSite
) -> None:
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)  # as the page fixture's
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    sign_in(page, demo_site)
    problems: list[str] = []
    pages = 0
    charts = 0
    for path, response in _crawl(page, demo_site):
        pages += 1
        if response is None or response.status != 200:
            problems.append(f"{path}: answered {response.status if response else 'nothing'}")
            continue
        width = page.evaluate("() => document.documentElement.scrollWidth")
        height = page.evaluate("() => document.documentElement.scrollHeight")
        if width > WIDTH:
            problems.append(f"{path}: {width} px wide, wider than a {WIDTH} px window")
        if height > MAX_HEIGHT:
            problems.append(f"{path}: {height} px long; paginate its lists")
        broken = page.evaluate(BROKEN_WORDS)
        if broken:
            problems.append(f"{path}: words broken mid-letter in tables: {broken[:5]}")
        for table in page.evaluate(SCROLLING_TABLES):
            problems.append(f"{path}: {table}, scrolled sideways to be read")
        for error in console_errors:
            problems.append(f"{path}: console error: {error}")
        console_errors.clear()
        for found in page.evaluate(CHARTS_AND_TABLES):
            charts += 1
            where = f"{path} chart {found['id']}"
            if not found["drawn"]:
                problems.append(f"{where}: not drawn")
                continue
            if found["rows"] is None:
                problems.append(f"{where}: no table of its figures")
                continue
            labels = [row["label"] for row in found["rows"]]
            if labels != found["labels"]:
                problems.append(f"{where}: labels {found['labels']} but table {labels}")
            for index, plotted in enumerate(found["series"]):
                table = [row["values"][index] for row in found["rows"]]
                if not _same(plotted, table):
                    problems.append(f"{where}: series {index} plots {plotted}, table {table}")
                if found["lengths"] is not None and not found["stacked"]:
                    # a zero is a figure and shows; a blank (no value) draws nothing
                    lengths = found["lengths"][index]
                    for label, value, length in zip(labels, plotted, lengths, strict=True):
                        if value == 0 and length < 1:
                            problems.append(f"{where}: {label} is 0 but drawn as no bar")
                        if value is None and length >= 1:
                            problems.append(f"{where}: {label} has no value but a bar")
    context.close()
    assert pages >= 15, f"only {pages} admin pages reached from the navigation"
    assert charts >= 5, f"only {charts} charts on the admin pages"
    assert not problems, "\n".join(problems)
