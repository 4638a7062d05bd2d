"""What every ``rapport`` command shares: one Rich console, progress bars, and the check that
the database schema is current before a command writes to it."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from rapport.platform.db import get_engine

console = Console()


class _Counts(MofNCompleteColumn):
    """Counts as "n/total"; tasks with ``unit="bytes"`` as "1.2/3.4 MB"."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "bytes":
            return self._bytes.render(task)
        return super().render(task)


def progress_bars() -> Progress:
    """A progress display for long commands (anything over a second)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        _Counts(),
        TimeRemainingColumn(),
        console=console,
    )


def require_migrated() -> None:
    """Stop with exit code 2 and a hint when migrations are pending."""
    from rapport.platform.migrations_runner import pending_migrations

    with get_engine().connect() as connection:
        pending = pending_migrations(connection)
    if pending:
        console.print(f"[red]{len(pending)} migration(s) pending.[/red] Run: rapport migrate")
        raise typer.Exit(code=2)
