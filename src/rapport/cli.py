"""The ``rapport`` command line."""

from __future__ import annotations

import gc
import logging
import os
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from rapport.customers.cli import import_customers_command
from rapport.customers.service import count_customers
from rapport.orders.cli import fit_customer_value_command, import_transactions_command
from rapport.platform import admin_security
from rapport.platform import service as platform
from rapport.platform.console import console, progress_bars, require_migrated
from rapport.platform.db import open_session
from rapport.platform.errors import Problem
from rapport.platform.settings import get_settings
from rapport.recommend.cli import recommend_app

if TYPE_CHECKING:
    from rapport.flows.demo import DemoStep

app = typer.Typer(help="Rapport: customer experience and loyalty for omnichannel retailers.")
keys_app = typer.Typer(help="Create, list and revoke API keys.")
admin_app = typer.Typer(help="Manage admin users of the admin pages.")
import_app = typer.Typer(help="Import real data (transactions, catalogue, customers).")
app.add_typer(keys_app, name="keys")
app.add_typer(admin_app, name="admin")
app.add_typer(import_app, name="import")
app.add_typer(recommend_app, name="recommend")
app.command("fit-customer-value")(fit_customer_value_command)

DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_KEY_NAME = "demo key"


def _fail(problem: Problem) -> typer.Exit:
    console.print(f"[red]Error:[/red] {problem.detail}")
    return typer.Exit(code=2)


@app.command()
def migrate(revision: Annotated[str, typer.Option(help="Target revision")] = "head") -> None:
    """Bring the database schema up to date (safe to run any time)."""
    from rapport.platform.migrations_runner import upgrade

    url = get_settings().database_url
    with console.status("Migrating database"):
        upgrade(url, revision)
    console.print(f"Database at [bold]{_safe_url(url)}[/bold] is at revision {revision}.")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def init(
    demo: Annotated[
        bool, typer.Option(help="Embedded demo: load the demo retailer, reset demo credentials")
    ] = False,
    demo_customers: Annotated[int, typer.Option(min=0)] = 2_000,
    seed: Annotated[int, typer.Option()] = 42,
    admin_email: Annotated[str, typer.Option()] = DEMO_ADMIN_EMAIL,
) -> None:
    """Migrate, create the first admin user and API key, and (with --demo) load demo data."""
    migrate()
    with open_session() as db:
        password = platform.generate_password()
        if platform.count_admin_users(db) == 0:
            platform.create_admin_user(db, email=admin_email, password=password)
            shown_password: str | None = password
        elif demo:
            platform.set_admin_password(db, email=admin_email, password=password)
            shown_password = password
        else:
            shown_password = None
        if demo:
            for key in platform.list_api_keys(db):
                if key.name == DEMO_KEY_NAME:
                    platform.revoke_api_key(db, key_id=key.id)
        issued = None
        if demo or not platform.list_api_keys(db):
            issued = platform.create_api_key(
                db,
                name=DEMO_KEY_NAME if demo else "initial admin key",
                scopes=[platform.Scope.ADMIN],
            )
        needs_demo = demo and count_customers(db) == 0
    # Load after the session above has closed: on SQLite, one writer at a time.
    if needs_demo:
        from rapport.domains import load_tasks

        load_tasks()
        _load_demo(customers=demo_customers, seed=seed)
    settings = get_settings()
    base = f"http://{settings.bind_host}:{settings.bind_port}"
    lines = [
        ("Admin pages", f"{base}/admin"),
        ("API docs", f"{base}/docs"),
        ("Admin login", admin_email),
    ]
    if shown_password:
        lines.append(("Admin password", shown_password))
    if issued is not None:
        lines.append(("API key (admin)", issued.secret))
    console.rule("[bold]Rapport is ready")
    for label, value in lines:
        # Plain lines, never a table: a key must be copyable whole, whatever the terminal width.
        console.print(f"{label + ':':<17} {value}", soft_wrap=True, highlight=False)
    if issued is not None:
        console.print("[dim]The key and password are shown only now; store them safely.[/dim]")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    worker: Annotated[
        bool | None,
        typer.Option(help="Run the job worker in this process (default: on for SQLite)"),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="HTTP server processes (default: RAPPORT_WEB_PROCESSES, or 1)"
        ),
    ] = None,
) -> None:
    """Serve the HTTP API and admin pages."""
    import uvicorn

    settings = get_settings()
    require_migrated()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # /readyz checks migrations
    count = processes or settings.web_processes
    host, port = host or settings.bind_host, port or settings.bind_port
    if count == 1:
        from rapport.main import create_app, tune_interpreter

        application = create_app(settings, run_worker=worker)
        # Everything loaded so far lives as long as the process: keep the garbage collector
        # from re-walking it on every collection (measured: 15-20 ms per 1,000-event batch).
        gc.freeze()
        tune_interpreter()
        uvicorn.run(
            application, host=host, port=port, proxy_headers=True, access_log=settings.access_log
        )
        return
    # Each process builds the app from the environment; pass on what the options chose, and
    # make the cookie secret now so that every process signs with the same one.
    settings.session_secret()
    if worker is not None:
        os.environ["RAPPORT_EMBEDDED_WORKER"] = "true" if worker else "false"
    from rapport.platform.serving import serve_processes

    raise typer.Exit(code=serve_processes(count=count, host=host, port=port))


@app.command(name="worker")
def run_worker(
    once: Annotated[bool, typer.Option(help="Run what is due now, then exit")] = False,
) -> None:
    """Run background jobs (retries with backoff, scheduled jobs)."""
    from rapport.domains import load_tasks
    from rapport.platform.jobs import Worker

    load_tasks()
    settings = get_settings()
    job_worker = Worker(poll_seconds=settings.worker_poll_seconds)
    if once:
        ran = job_worker.tick()
        console.print(f"Ran {ran} job(s).")
        return
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    console.print(f"Worker {job_worker.worker_id} running; Ctrl-C to stop.")
    try:
        job_worker.run_forever()
    except KeyboardInterrupt:
        job_worker.stop()


class _DemoBars:
    """The demo load's steps as Rich progress bars."""

    LABELS: dict[str, str] = {
        "stores": "Stores",
        "products": "Products",
        "customers": "Customers",
        "activity": "Visits and browsing",
        "orders": "Orders and returns",
        "profiles": "Profiles, traits and points",
    }

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def begin(self, step: DemoStep, total: int | None) -> None:
        self.tasks[step] = self.progress.add_task(self.LABELS[step], total=total)

    def advance(self, step: DemoStep, count: int) -> None:
        self.progress.advance(self.tasks[step], count)


def _load_demo(*, customers: int, seed: int, end: date | None = None) -> None:
    from rapport.flows.demo import load_demo_data, train_demo_recommendations

    with progress_bars() as progress:
        data = load_demo_data(customers=customers, seed=seed, end=end, progress=_DemoBars(progress))
    console.print(
        f"Demo retailer (seed {seed}, {data.start} to {data.end}): {data.records.stores} stores, "
        f"{data.records.products} products, {data.records.customers} new customers, "
        f"{data.events} new events, {data.orders} new orders; loyalty: "
        f"{data.loyalty.paying_members} new paying members, {data.expired_points:,} points "
        f"expired; experience: {data.feedback.answers} survey answers, "
        f"{data.feedback.reviews} reviews, {data.feedback.held_reviews} held for moderation."
    )
    with console.status("Training recommendations"):
        model = train_demo_recommendations()
    console.print(
        f"Recommendations: model {model.version} trained on {model.purchases:,} purchase lines "
        f"in {model.train_seconds:.1f} s."
    )


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, help="How many customers to generate")] = 10_000,
    seed: Annotated[int, typer.Option(help="Same seed and end date, same retailer")] = 42,
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last day of history (default: yesterday)"),
    ] = None,
) -> None:
    """Generate the demo retailer and load it (streams; safe to re-run)."""
    from rapport.domains import load_tasks

    load_tasks()
    migrate()
    _load_demo(customers=customers, seed=seed, end=end.date() if end else None)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. 'Shop front-end'")],
    scope: Annotated[
        list[platform.Scope], typer.Option("--scope", "-s", help="Repeat for several scopes")
    ],
    rate_limit: Annotated[
        str | None,
        typer.Option(help="This key's own request limit, e.g. '100/second;5000/hour'"),
    ] = None,
) -> None:
    """Create an API key; its secret is printed once."""
    with open_session() as db:
        try:
            issued = platform.create_api_key(db, name=name, scopes=scope, rate_limit=rate_limit)
        except Problem as problem:
            raise _fail(problem) from problem
    console.print(f"Created key [bold]{issued.key.id}[/bold] ({', '.join(issued.key.scopes)}):")
    console.print(issued.secret, soft_wrap=True, highlight=False)
    console.print("[dim]This is the only time the key is shown.[/dim]")


@keys_app.command("list")
def keys_list(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys")] = False,
) -> None:
    """List API keys (never their secrets)."""
    with open_session() as db:
        keys = platform.list_api_keys(db, include_revoked=all_keys)
    table = Table("id", "name", "prefix", "scopes", "rate limit", "created", "revoked")
    for key in keys:
        table.add_row(
            key.id,
            key.name,
            key.key_prefix,
            ", ".join(key.scopes),
            key.rate_limit or "default",
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "",
        )
    console.print(table)


@keys_app.command("limit")
def keys_limit(
    key_id: Annotated[str, typer.Argument(help="The key's id (keys list)")],
    rate_limit: Annotated[
        str,
        typer.Argument(help="e.g. '100/second;5000/hour', or 'default' for RAPPORT_API_RATE_LIMIT"),
    ],
) -> None:
    """Give an API key its own request limit (every server applies it within a second)."""
    own = None if rate_limit == "default" else rate_limit
    with open_session() as db:
        try:
            key = platform.set_api_key_rate_limit(db, key_id=key_id, rate_limit=own)
        except Problem as problem:
            raise _fail(problem) from problem
    console.print(f"{key.id} ({key.name}) may make {key.rate_limit or 'the default'} requests.")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (keys list)")]) -> None:
    """Revoke an API key at once."""
    with open_session() as db:
        try:
            key = platform.revoke_api_key(db, key_id=key_id)
        except Problem as problem:
            raise _fail(problem) from problem
    console.print(f"Revoked {key.id} ({key.name}).")


@admin_app.command("create")
def admin_create(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Add an admin user."""
    with open_session() as db:
        try:
            platform.create_admin_user(db, email=email, password=password)
        except Problem as problem:
            raise _fail(problem) from problem
    console.print(f"Admin user {email} created.")


@admin_app.command("set-password")
def admin_set_password(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a new password for an admin user."""
    with open_session() as db:
        try:
            platform.set_admin_password(db, email=email, password=password)
        except Problem as problem:
            raise _fail(problem) from problem
    console.print(f"Password for {email} changed.")


@admin_app.command("unlock")
def admin_unlock(
    email: Annotated[
        str | None, typer.Argument(help="The account locked by wrong passwords")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="A client address locked by wrong passwords")
    ] = None,
) -> None:
    """Lift a sign-in lock at once (after wrong passwords) for an account and/or an address."""
    if not email and not address:
        raise typer.BadParameter("Name the account's EMAIL, or an --address, or both.")
    with open_session() as db:
        cleared = admin_security.lift_lock(db, email=email, address=address)
    named = " and ".join(filter(None, (email, address)))
    if cleared:
        console.print(f"Sign-in lock lifted for {named}: they may sign in again now.")
    else:
        console.print(f"No wrong passwords are counted against {named}; nothing to lift.")


@import_app.callback()
def import_callback() -> None:
    """Importers for real data; each capability adds its own (see docs/import.md)."""


import_app.command("customers")(import_customers_command)
import_app.command("transactions")(import_transactions_command)


@import_app.command("products")
def import_products(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV, .gz or .zip")],
) -> None:
    """Load a catalogue CSV (sku, name, category_path, price, currency, and optionally brand,
    cost, country_of_origin, season; other columns become attributes) by SKU."""
    from rapport.catalog.service import import_products_file

    with progress_bars() as progress, open_session() as db:
        task = progress.add_task("Products", total=None)
        try:
            summary = import_products_file(db, path, progress=lambda n: progress.advance(task, n))
        except Problem as problem:
            raise _fail(problem) from problem
    console.print(f"{summary.rows} rows read, {summary.written} products created or updated.")


if __name__ == "__main__":
    app()
