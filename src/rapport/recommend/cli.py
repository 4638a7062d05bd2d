"""``rapport recommend``: train a model version and look at the ones trained."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Column, Table

from rapport.platform import clock
from rapport.platform.console import Commands, console, require_migrated
from rapport.platform.db import open_session
from rapport.platform.settings import get_settings

if TYPE_CHECKING:
    from rapport.recommend.models import ModelVersion

recommend_app = Commands(help="Train and inspect recommendation models.")


@recommend_app.command("train")
def train_command(
    by: Annotated[str, typer.Option(help="Recorded as who trained it")] = "command line",
) -> None:
    """Train a new model version from every purchase so far and serve it, at once. With no
    orders yet nothing is trained: recommendations keep answering ``model_version: null``."""
    from rapport.recommend import service, tasks

    require_migrated()
    with console.status("Training recommendations"), open_session() as db:
        if tasks.nothing_to_learn(db):
            console.print(
                "No orders to learn from yet: nothing trained. Import or place orders, then "
                "train again (the worker trains within the hour once there are some)."
            )
            return
        try:
            version = service.train_model(db, data_dir=get_settings().data_dir, trained_by=by)
        except service.NothingToLearn:
            console.print(
                "No purchases to learn from: every order is cancelled or returned. Nothing "
                "trained; the model served stays."
            )
            return
    console.print(
        f"Model [bold]{version.version}[/bold]: {_counted(version.customers, 'customer')}, "
        f"{_counted(version.items, 'item')}, {_counted(version.purchases, 'purchase line')}, "
        f"trained in {version.train_seconds:.1f} s; now serving."
    )
    for line in measured_lines(version):
        console.print(line)


def measured_lines(version: ModelVersion) -> list[str]:
    """What a trained version measured on the history's last weeks, a line per protocol, in
    the admin page's words."""
    from rapport.recommend import service

    reason = service.unmeasured_reason(version)
    if reason is not None:
        return [f"Not measured on the history's last weeks: {reason}; the default weights serve."]
    window = (version.metrics or {}).get("window_days")
    days = f"{window:g}" if isinstance(window, int | float) else "?"
    lines = []
    for figures in service.measured(version).values():
        if figures.served is None:
            continue
        best = (
            f" (best part alone, {service.part_label(figures.best_part or '')}:"
            f" {figures.best_part_recall:.3f})"
            if figures.best_part_recall is not None
            else ""
        )
        what = service.PROTOCOL_LABELS[figures.protocol]
        few = figures.customers
        caveat = (
            f"; on only {few} customer{'' if few == 1 else 's'}, those the weights were chosen"
            f" on: too few to tell which does better (that takes {service.VERDICT_CUSTOMERS})"
            if few is not None and few < service.VERDICT_CUSTOMERS and best
            else ""
        )
        lines.append(
            f"Last {days} days, {what}: served Recall@20 {figures.served:.3f}{best}{caveat}"
        )
    return lines


def _plural(count: str | int, noun: str) -> str:
    return noun if str(count) == "1" else f"{noun}s"


def _counted(count: int, noun: str) -> str:
    return f"{count:,} {_plural(count, noun)}"


# Said under the table: what its two Recall@20 columns measured.
RECALL_NOTE = (
    "R@20: the served blend's Recall@20 on the history's last weeks, repeats allowed; "
    "new R@20: new items only."
)


@recommend_app.command("versions")
def versions_command() -> None:
    """Trained versions, newest first; each id is shown whole."""
    from rapport.recommend import service

    require_migrated()
    active = service.active_version(get_settings().data_dir)
    with open_session() as db:
        rows = []
        for v in service.list_versions(db):
            figures = service.measured(v)
            recall = [figures[p].served if p in figures else None for p in ("repeat", "discover")]
            rows.append(
                (
                    v.version,
                    f"{clock.as_utc(v.trained_at):%Y-%m-%d %H:%M}",
                    f"{v.customers:,}",
                    f"{v.items:,}",
                    *("" if r is None else f"{r:.3f}" for r in recall),
                    "yes" if v.version == active else "",
                )
            )
    if not rows:
        console.print("No model trained yet: rapport recommend train")
        return
    table = versions_table(rows)
    if console.measure(table, options=console.options.update_width(1_000)).minimum > console.width:
        # Too narrow for the table without cutting an id: a line per version, the id first.
        for version, trained, customers, items, repeat, new, serving in rows:
            line = (
                f"{version}  trained {trained}  {customers} {_plural(customers, 'customer')}"
                f"  {items} {_plural(items, 'item')}"
                + (f"  R@20 {repeat}" if repeat else "")
                + (f"  new R@20 {new}" if new else "")
                + ("  serving" if serving else "")
            )
            console.print(line, soft_wrap=True, highlight=False, markup=False)
        console.print(RECALL_NOTE, highlight=False)
        return
    console.print(table)


def versions_table(rows: list[tuple[str, ...]]) -> Table:
    """The versions as a table that fits 80 columns: ids never cut (a version differs from the
    next only in its last characters), the moment wrapping between date and time."""
    table = Table(
        Column("version", no_wrap=True, min_width=max((len(r[0]) for r in rows), default=7)),
        Column("trained (UTC)", min_width=len("2026-12-07")),
        Column("customers", justify="right", no_wrap=True),
        Column("items", justify="right", no_wrap=True),
        Column("R@20", justify="right", no_wrap=True),
        Column("new R@20", justify="right", no_wrap=True),
        Column("serving", no_wrap=True),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        caption=RECALL_NOTE,
        caption_justify="left",
    )
    for row in rows:
        table.add_row(*row)
    return table
