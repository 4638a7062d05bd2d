"""What every ``rapport`` command shares: one Rich console, progress bars, help that stays
whole at any terminal width, and the check that the database schema is current before a
command writes to it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import closing, suppress
from pathlib import Path
from typing import Any, NoReturn

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
from typer._click.core import Context
from typer._click.formatting import HelpFormatter
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from rapport.platform.db import get_engine
from rapport.platform.errors import MalformedFile

console = Console()
errors = Console(stderr=True)

# Stands in for "-" while help is laid out: lines break between words only.
_UNBROKEN_HYPHEN = "\u2011"


def _unbroken(text: str) -> str:
    return text.replace("-", _UNBROKEN_HYPHEN)


class _HelpLayout(HelpFormatter):
    """Click's help layout, breaking lines between words only, never at a hyphen inside one
    (as in --orders-from-tracking or docs/operator-guide.md): option names have a column of
    their own and are never cut (a long one puts its help on the next line), and the prose is
    wrapped to the terminal, whatever its width."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(_unbroken(prog), _unbroken(args), prefix)

    def write_text(self, text: str) -> None:
        super().write_text(_unbroken(text))

    def write_dl(
        self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = [(_unbroken(term), _unbroken(text)) for term, text in rows]
        super().write_dl(rows, col_max, col_spacing)

    def getvalue(self) -> str:
        return super().getvalue().replace(_UNBROKEN_HYPHEN, "-")


class _HelpContext(Context):
    formatter_class = _HelpLayout


class NoDatabaseYet(Exception):
    """The configured SQLite database is not there yet: nobody ran ``rapport init`` here."""

    def __init__(self, path: str) -> None:
        super().__init__(f"There is no Rapport database at {path} yet.")
        self.path = path


def _sqlite_file() -> Path | None:
    """The configured SQLite database's file; ``None`` where the database is not one (a
    server, an in-memory database, a ``file:`` URI)."""
    from sqlalchemy.engine import make_url

    from rapport.platform.settings import get_settings

    url = make_url(get_settings().database_url)
    path = url.database or ""
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return None
    if path.startswith("file:"):
        return None
    return Path(path)


def missing_database() -> str | None:
    """The path of the configured SQLite database where it is not there yet: no file, an empty
    one, or one without a table (left by a command of an older Rapport run before ``rapport
    init``); ``None`` where there is one, or the database is not a SQLite file. Looks without
    opening it for writing, so it creates nothing."""
    import sqlite3

    file = _sqlite_file()
    if file is None:
        return None
    path = str(file)
    if not file.exists() or (file.is_file() and file.stat().st_size == 0):
        return path
    try:
        with closing(sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True)) as connection:
            tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.Error:  # whatever it is, the command will say so when it opens it
        return None
    return path if tables == 0 else None


class RapportCommand(TyperCommand):
    """A ``rapport`` command: its --help is laid out by ``_HelpLayout``, and it runs only on a
    database that is there (``NoDatabaseYet`` where the SQLite file is not, before anything is
    opened, so a mistyped data directory gets no empty database), unless it makes it."""

    context_class = _HelpContext
    makes_database = False

    def invoke(self, ctx: Context) -> Any:
        if not self.makes_database:
            missing = missing_database()
            if missing is not None:
                raise NoDatabaseYet(missing)
        return super().invoke(ctx)


def make_private_database() -> None:
    """Where the configured SQLite database is not there yet, make its file (empty) readable
    and writable by its owner only (SQLite gives its ``-wal`` and ``-shm`` files the same
    mode), and the directory it goes in, where missing, one only the owner may enter: it
    holds personal data, as ``secret_key`` and ``first-run-credentials`` hold secrets."""
    file = _sqlite_file()
    if file is None:
        return
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class DatabaseMaker(RapportCommand):
    """A command that makes the database where there is none yet (init, migrate, demo),
    private to its owner (``make_private_database``)."""

    makes_database = True

    def invoke(self, ctx: Context) -> Any:
        make_private_database()
        return super().invoke(ctx)


class HelpGroup(TyperGroup):
    """A group of ``rapport`` commands: its --help is laid out by ``_HelpLayout`` and lists
    each command with the first sentence of its help, whole."""

    context_class = _HelpContext

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class Commands(typer.Typer):
    """A ``typer.Typer`` for ``rapport`` and its command groups: Click's plain help (Rich's
    option panels cut long option names to fit 80 columns) in ``_HelpLayout``."""

    def __init__(self, *, cls: type[TyperGroup] = HelpGroup, **options: Any) -> None:
        super().__init__(cls=cls, rich_markup_mode=None, **options)

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **options: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or RapportCommand, **options)


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


def refuse_file(progress: Progress, path: Path, error: MalformedFile) -> NoReturn:
    """An import stopped by its file (``path``): the bars end, the file's problem and that
    nothing was imported are said, and the command exits with code 2."""
    progress.stop()
    console.print(f"[red]Error in {path.name}:[/red] {error.detail}", highlight=False)
    console.print(
        "Nothing was imported. Fix the file (or the mapping) and run the command again.",
        highlight=False,
    )
    raise typer.Exit(code=2) from error


def require_migrated() -> None:
    """Stop with exit code 2 and what to do where the database's schema is not the one this
    code expects: migrations pending, or a newer Rapport migrated it."""
    from rapport.platform.migrations_runner import schema_problem
    from rapport.platform.settings import get_settings

    with get_engine(get_settings().database_url).connect() as connection:
        problem = schema_problem(connection)
    if problem is not None:
        what, remedy = problem
        # On stderr, as every refusal: a script reading stdout gets nothing from it.
        errors.print(f"[red]{what}[/red] {remedy}", soft_wrap=True, highlight=False)
        raise typer.Exit(code=2)
