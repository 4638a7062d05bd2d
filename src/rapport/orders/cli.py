"""``rapport import transactions``: load order lines from a CSV file (or a preset's files);
``rapport fit-customer-value``: refit customer lifetime value now."""

from __future__ import annotations

import codecs
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    TaskID,
)
from rich.table import Table

from rapport.customers import service as customers
from rapport.flows.currency import shown_currency
from rapport.orders import service
from rapport.orders.importing import (
    CONSENT_PREFIX,
    PRESETS,
    ImportSummary,
    MalformedFile,
    TransactionMapping,
    import_transactions_file,
)
from rapport.platform.console import console, progress_bars, refuse_file, require_migrated
from rapport.platform.db import open_session
from rapport.platform.errors import InvalidInput
from rapport.platform.formatting import money

_LABELS = {
    "check": "Checking {name}",
    "match": "Matching cancellations to purchases",
    "customers": "Importing customers",
    "products": "Creating products",
    "sort": "Sorting lines by order",
    "import": "Importing orders",
}
_BYTE_PHASES = {"check", "match", "sort"}


def _column(field: str) -> Any:
    return typer.Option(
        f"--{field}-col", metavar="COLUMN", help=f"Column of the {field} ('' for none)"
    )


def import_transactions_command(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            readable=True,
            help="CSV file, or .gz / .zip of one; for --preset olist, the folder",
        ),
    ],
    preset: Annotated[
        str, typer.Option(help=f"Columns and settings to start from: {', '.join(PRESETS)}")
    ] = "csv",
    customer_col: Annotated[str | None, _column("customer")] = None,
    item_col: Annotated[str | None, _column("item")] = None,
    time_col: Annotated[str | None, _column("time")] = None,
    price_col: Annotated[str | None, _column("price")] = None,
    quantity_col: Annotated[str | None, _column("quantity")] = None,
    order_col: Annotated[str | None, _column("order")] = None,
    category_col: Annotated[str | None, _column("category")] = None,
    name_col: Annotated[str | None, _column("name")] = None,
    store_col: Annotated[str | None, _column("store")] = None,
    cost_col: Annotated[str | None, _column("cost")] = None,
    time_format: Annotated[
        str | None, typer.Option(help="strptime format, e.g. %m/%d/%Y (default ISO 8601)")
    ] = None,
    currency: Annotated[str | None, typer.Option(help="ISO code of the prices, e.g. EUR")] = None,
    price_unit: Annotated[
        str | None, typer.Option(help="major (12.50) or minor (1250) units")
    ] = None,
    price_per: Annotated[
        str | None, typer.Option(help="unit: price of one unit; line: total of the line")
    ] = None,
    channel: Annotated[
        str | None, typer.Option(help="web (shipped orders) or store (bought in store)")
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help="Field separator, or 'whitespace'")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding of the file")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Read only the first N data rows (for trials)")
    ] = None,
    consent: Annotated[
        list[str] | None,
        typer.Option(
            "--consent",
            metavar="PURPOSE=COLUMN",
            help="Read each customer's choice for PURPOSE from COLUMN (yes/no, true/false, "
            "1/0, opt-in/opt-out ...; empty: no choice; their latest line wins); repeatable",
        ),
    ] = None,
    grant_consent: Annotated[
        list[str] | None,
        typer.Option(
            "--grant-consent",
            metavar="PURPOSE",
            help="Every customer the import creates granted PURPOSE (the shop collected it); "
            "a choice read with --consent wins. Repeatable. Without consents nobody is "
            "contacted for marketing",
        ),
    ] = None,
) -> None:
    """Import order lines as customers, products and orders; re-running adds nothing."""
    columns = {
        "customer": customer_col,
        "item": item_col,
        "time": time_col,
        "price": price_col,
        "quantity": quantity_col,
        "order": order_col,
        "category": category_col,
        "name": name_col,
        "store": store_col,
        "cost": cost_col,
    }
    try:
        for item in consent or []:
            purpose, equals, column = item.partition("=")
            if not equals or not purpose.strip() or not column.strip():
                raise InvalidInput(
                    f"--consent {item!r} is not PURPOSE=COLUMN, e.g. --consent "
                    "marketing_email=newsletter",
                    field="consent",
                )
            columns[CONSENT_PREFIX + purpose.strip()] = column
        base = PRESETS.get(preset)
        if base is None:
            raise InvalidInput(
                f"Unknown preset {preset!r}; use one of {', '.join(PRESETS)}", field="preset"
            )
        mapping = base.with_overrides(
            columns,
            time_format=time_format,
            currency=currency.upper() if currency else None,
            price_unit=price_unit,
            price_per=price_per,
            channel=channel,
            delimiter=delimiter,
            encoding=encoding,
            granted_consents=frozenset(grant_consent) if grant_consent else None,
        )
        mapping.validate()
        codecs.lookup(mapping.encoding)
    except InvalidInput as problem:
        console.print(f"[red]Error:[/red] {problem.detail}", highlight=False)
        raise typer.Exit(code=2) from problem
    except LookupError as error:
        console.print(f"[red]Error:[/red] unknown encoding {encoding!r}; try utf-8 or cp1252")
        raise typer.Exit(code=2) from error
    if path.is_dir() and mapping.layout != "olist":
        console.print(f"[red]Error:[/red] {path} is a folder; give the transactions file")
        raise typer.Exit(code=2)
    require_migrated()

    started = time.perf_counter()
    with progress_bars() as progress, open_session() as db:
        tasks: dict[str, TaskID] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(
                    _LABELS[phase].format(name=path.name),
                    total=total,
                    unit="bytes" if phase in _BYTE_PHASES else "count",
                )
            progress.update(tasks[phase], completed=done, total=total)

        try:
            summary = import_transactions_file(db, path, mapping, report, limit=limit)
        except MalformedFile as error:
            refuse_file(progress, path, error)
    _print_summary(path, mapping, summary, time.perf_counter() - started)
    _print_currency(mapping)


def _print_summary(
    path: Path, mapping: TransactionMapping, summary: ImportSummary, seconds: float
) -> None:
    table = Table(title=f"Imported {path.name} ({mapping.source})", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    table.add_row("Rows read", f"{summary.rows:,}")
    table.add_row("Orders added", f"{summary.orders_added:,}")
    table.add_row("Orders already present (left as they are)", f"{summary.orders_present:,}")
    table.add_row("Order lines added", f"{summary.lines_added:,}")
    if summary.cancellations:
        table.add_row("Cancellations in the file", f"{summary.cancellations:,}")
        table.add_row("Returns added", f"{summary.returns_added:,}")
        for reason, count in sorted(summary.returns_unmatched.items()):
            table.add_row(f"Cancellations not matched: {reason}", f"{count:,}")
        if summary.return_units_capped:
            table.add_row(
                "Cancelled units beyond what the purchase held",
                f"{summary.return_units_capped:,}",
            )
    table.add_row("Customers created", f"{summary.customers_created:,}")
    if summary.orders_of_erased:
        table.add_row("Orders kept without their erased customer", f"{summary.orders_of_erased:,}")
    table.add_row("Products created", f"{summary.products_created:,}")
    if summary.stores_created:
        table.add_row("Stores created", f"{summary.stores_created:,}")
    for reason, count in sorted(summary.skipped.items()):
        table.add_row(f"Skipped: {reason}", f"{count:,}")
    if summary.prices_rounded:
        table.add_row("Unit prices rounded to the minor unit", f"{summary.prices_rounded:,}")
    table.add_row("Time", f"{seconds:.1f} s")
    console.print(table)
    if summary.unused_columns:
        console.print(
            "[dim]Columns not imported:[/dim] " + ", ".join(summary.unused_columns),
            highlight=False,
        )
    _print_consents(path, mapping)


def _print_currency(mapping: TransactionMapping) -> None:
    """Say so when the file's currency is not the one the admin pages show money in: nothing
    converts, so a shop selling in pounds would read its pound amounts as euros."""
    with open_session() as db:
        shown = shown_currency(db)
    if mapping.currency and mapping.currency != shown:
        console.print(
            f"[yellow]Note:[/yellow] these prices are in {mapping.currency}, but the admin "
            f"pages show money in {shown}, the loyalty program's currency. If the shop sells "
            f"in {mapping.currency}, set it under Loyalty, program settings (amounts are "
            "shown as they are, never converted).",
            highlight=False,
        )


def _print_consents(path: Path, mapping: TransactionMapping) -> None:
    """Where new customers' consents came from, or that there were none (and what it means)."""
    read = [f"{purpose} from {column!r}" for purpose, column in mapping.consents.items()]
    if mapping.granted_consents:
        read.append("granted to every new customer: " + ", ".join(sorted(mapping.granted_consents)))
    if read:
        console.print(
            f"Consents (recorded as from {customers.import_consent_source(path)}): "
            + "; ".join(read),
            highlight=False,
        )
    else:
        console.print(
            "[yellow]No consents imported:[/yellow] customers created by this import get no "
            "marketing until they opt in (service messages still go). Use --consent "
            "PURPOSE=COLUMN or --grant-consent PURPOSE; see docs/import.md.",
            highlight=False,
        )


def fit_customer_value_command() -> None:
    """Fit customer lifetime value (BG/NBD, Gamma-Gamma) on the orders held now, and rewrite
    every customer's predicted value, probability alive and value tier."""
    require_migrated()
    with console.status("Fitting customer value"), open_session() as db:
        fit = service.fit_customer_value(db)
        tiers = service.value_tier_summary(db) if fit is not None else []
        currency = shown_currency(db)  # the shop's: the amounts are in its minor units
    if fit is None:
        console.print("No customer has an order yet: nothing to fit.")
        return
    table = Table(title="Customer value", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    table.add_row("Customers", f"{fit.customers:,}")
    table.add_row("With a repeat purchase", f"{fit.repeat_customers:,}")
    table.add_row(
        "BG/NBD r, alpha (days), a, b", f"{fit.r:.3f}, {fit.alpha:.2f}, {fit.a:.3f}, {fit.b:.3f}"
    )
    if fit.p is not None and fit.q is not None and fit.gamma is not None:
        table.add_row(
            "Gamma-Gamma p, q, gamma (minor units)", f"{fit.p:.3f}, {fit.q:.3f}, {fit.gamma:.1f}"
        )
    for tier in tiers:
        table.add_row(
            f"Tier {tier.tier}",
            f"{tier.customers:,} customers,"
            f" {money(tier.predicted_value_minor, currency)} next 365 days",
        )
    table.add_row("Time", f"{fit.seconds:.1f} s")
    console.print(table)
