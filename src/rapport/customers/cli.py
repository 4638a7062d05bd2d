"""``rapport import customers``: load a CRM export (or Olist's customers) from a CSV file."""

from __future__ import annotations

import codecs
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    TaskID,
)
from rich.table import Table

from rapport.customers.file_import import (
    CONSENT_PREFIX,
    PRESETS,
    ColumnMapping,
    ImportSummary,
    import_consent_source,
    import_customers_file,
    mappable_fields,
)
from rapport.customers.models import CONSENT_PURPOSES
from rapport.platform.console import console, progress_bars, refuse_file, require_migrated
from rapport.platform.db import open_session
from rapport.platform.errors import InvalidInput, MalformedFile


def import_customers_command(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV file, or .gz / .zip of one"
        ),
    ],
    preset: Annotated[
        str, typer.Option(help=f"Column names to start from: {', '.join(PRESETS)}")
    ] = "crm",
    map_columns: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="FIELD=COLUMN",
            help="Read FIELD from COLUMN (repeatable); FIELD= stops reading it. Fields: "
            + ", ".join(mappable_fields()),
        ),
    ] = None,
    attribute: Annotated[
        list[str] | None,
        typer.Option("--attribute", metavar="COLUMN", help="Copy COLUMN into attributes"),
    ] = None,
    consent: Annotated[
        list[str] | None,
        typer.Option(
            "--consent",
            metavar="PURPOSE=COLUMN",
            help="Read the customer's choice for PURPOSE from COLUMN (yes/no, true/false, 1/0, "
            "opt-in/opt-out ...; empty: no choice); repeatable. Purposes: "
            + ", ".join(CONSENT_PURPOSES),
        ),
    ] = None,
    grant_consent: Annotated[
        list[str] | None,
        typer.Option(
            "--grant-consent",
            metavar="PURPOSE",
            help="Every customer imported granted PURPOSE (the shop collected it); a row's "
            "own choice in a consent column wins. Repeatable. Without consents nobody is "
            "contacted for marketing",
        ),
    ] = None,
    default_locale: Annotated[
        str | None, typer.Option(help="Locale for rows without one (preset's default)")
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of the file")] = "utf-8-sig",
    delimiter: Annotated[str, typer.Option(help="Field separator")] = ",",
) -> None:
    """Import customers with consents, identities and attributes; re-running adds nothing."""
    try:
        mapping = _mapping(
            preset,
            [*(map_columns or []), *_consent_columns(consent or [])],
            attribute or [],
            default_locale,
            grant_consent or [],
        )
    except InvalidInput as problem:
        console.print(f"[red]Error:[/red] {problem.detail}")
        raise typer.Exit(code=2) from problem
    try:
        codecs.lookup(encoding)
    except LookupError as error:
        console.print(f"[red]Error:[/red] unknown encoding {encoding!r}; try utf-8 or cp1252")
        raise typer.Exit(code=2) from error
    if len(delimiter) != 1:
        console.print("[red]Error:[/red] --delimiter must be one character, e.g. ';'")
        raise typer.Exit(code=2)
    require_migrated()

    started = time.perf_counter()
    with progress_bars() as progress, open_session() as db:
        tasks: dict[str, TaskID] = {}
        labels = {"check": f"Checking {path.name}", "import": "Importing customers"}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                # Bytes while checking (file size known up front), rows while importing.
                unit = "bytes" if phase == "check" else "rows"
                tasks[phase] = progress.add_task(labels[phase], total=total, unit=unit)
            progress.update(tasks[phase], completed=done, total=total)

        try:
            summary = import_customers_file(
                db, path, mapping, report, encoding=encoding, delimiter=delimiter
            )
        except MalformedFile as error:
            refuse_file(progress, path, error)
    _print_summary(path, summary, time.perf_counter() - started)
    _print_consents(path, summary, mapping)


def _consent_columns(items: list[str]) -> list[str]:
    """``--consent PURPOSE=COLUMN`` as the ``--map consent.PURPOSE=COLUMN`` it stands for."""
    mapped = []
    for item in items:
        purpose, equals, column = item.partition("=")
        if not equals or not purpose.strip() or not column.strip():
            raise InvalidInput(
                f"--consent {item!r} is not PURPOSE=COLUMN, e.g. --consent "
                "marketing_email=newsletter_opt_in",
                field="consent",
            )
        mapped.append(f"{CONSENT_PREFIX}{purpose.strip()}={column}")
    return mapped


def _mapping(
    preset: str,
    overrides: list[str],
    attributes: list[str],
    default_locale: str | None,
    granted_consents: Sequence[str] = (),
) -> ColumnMapping:
    base = PRESETS.get(preset)
    if base is None:
        raise InvalidInput(
            f"Unknown preset {preset!r}; use one of {', '.join(PRESETS)}", field="preset"
        )
    columns: dict[str, str] = {}
    for item in overrides:
        name, equals, column = item.partition("=")
        if not equals or not name.strip():
            raise InvalidInput(
                f"--map {item!r} is not FIELD=COLUMN, e.g. --map email=E-mail", field="map"
            )
        columns[name.strip()] = column
    return base.with_overrides(
        columns,
        attributes=attributes,
        default_locale=default_locale,
        granted_consents=granted_consents,
    )


def _print_consents(path: Path, summary: ImportSummary, mapping: ColumnMapping) -> None:
    """Where the consents came from, or that there were none (and what that means)."""
    read = [
        f"{purpose} from {column!r}"
        for purpose, column in mapping.consents.items()
        if CONSENT_PREFIX + purpose not in summary.ignored_fields
    ]
    if mapping.granted_consents:
        read.append("granted to every new customer: " + ", ".join(sorted(mapping.granted_consents)))
    if read:
        console.print(
            f"Consents (recorded as from {import_consent_source(path)}): " + "; ".join(read),
            highlight=False,
        )
    else:
        console.print(
            "[yellow]No consents imported:[/yellow] these customers get no marketing until they "
            "opt in (service messages still go). Use --consent PURPOSE=COLUMN or "
            "--grant-consent PURPOSE; see docs/import.md.",
            highlight=False,
        )


def _print_summary(path: Path, summary: ImportSummary, seconds: float) -> None:
    table = Table(title=f"Imported {path.name}", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    table.add_row("Rows read", f"{summary.read:,}")
    table.add_row("Customers added", f"{summary.added:,}")
    table.add_row("Already in the database (left as they are)", f"{summary.skipped_existing:,}")
    table.add_row("Repeated in the file (first row kept)", f"{summary.duplicates_in_file:,}")
    table.add_row("Skipped: the person was erased", f"{summary.skipped_erased:,}")
    table.add_row(
        "Added without their phone: another customer's", f"{len(summary.phones_left_out):,}"
    )
    table.add_row(
        "Added without their email: another customer's", f"{len(summary.emails_left_out):,}"
    )
    table.add_row("Time", f"{seconds:.1f} s")
    console.print(table)
    for message in (*summary.phones_left_out, *summary.emails_left_out):
        console.print(message, style="yellow", markup=False, highlight=False)
    if summary.ignored_fields:
        console.print(
            "[dim]Mapped but not in the file:[/dim] " + ", ".join(summary.ignored_fields),
            highlight=False,
        )
    if summary.unused_columns:
        console.print(
            "[dim]Columns not imported (add --attribute COLUMN to keep one):[/dim] "
            + ", ".join(summary.unused_columns),
            highlight=False,
        )
