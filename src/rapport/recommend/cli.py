"""``rapport recommend``: train a model version and look at the ones trained."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from rapport.platform.console import console, require_migrated
from rapport.platform.db import open_session
from rapport.platform.settings import get_settings

if TYPE_CHECKING:
    from rapport.recommend.models import ModelVersion

recommend_app = typer.Typer(help="Train and inspect recommendation models.")


@recommend_app.command("train")
def train_command(
    by: Annotated[str, typer.Option(help="Recorded as who trained it")] = "command line",
) -> None:
    """Train a new model version from every purchase so far and serve it."""
    from rapport.recommend import service

    require_migrated()
    with console.status("Training recommendations"), open_session() as db:
        version = service.train_model(db, data_dir=get_settings().data_dir, trained_by=by)
    console.print(
        f"Model [bold]{version.version}[/bold]: {version.customers:,} customers, "
        f"{version.items:,} items, {version.purchases:,} purchase lines, "
        f"trained in {version.train_seconds:.1f} s; now serving."
    )
    for line in measured_lines(version):
        console.print(line)


def measured_lines(version: ModelVersion) -> list[str]:
    """What a trained version measured on the history's last weeks, a line per protocol, in
    the admin page's words."""
    from rapport.recommend import service

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
        lines.append(f"Last {days} days, {what}: served Recall@20 {figures.served:.3f}{best}")
    return lines


@recommend_app.command("versions")
def versions_command() -> None:
    """Trained versions, newest first."""
    from rapport.recommend import service

    require_migrated()
    active = service.active_version(get_settings().data_dir)
    table = Table(
        "version", "trained at", "customers", "items", "Recall@20", "new items R@20", "serving"
    )
    with open_session() as db:
        for v in service.list_versions(db):
            figures = service.measured(v)
            recall = [figures[p].served if p in figures else None for p in ("repeat", "discover")]
            table.add_row(
                v.version,
                f"{v.trained_at:%Y-%m-%d %H:%M}",
                f"{v.customers:,}",
                f"{v.items:,}",
                *("" if r is None else f"{r:.3f}" for r in recall),
                "yes" if v.version == active else "",
            )
    console.print(table)
