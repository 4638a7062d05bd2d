"""The ``rapport`` command line.

Every command finds the database and data directory through the settings (environment, env
files), never through the directory it runs in. An error ends the command with one line saying
what went wrong and what to do, and a non-zero exit code; ``--debug`` (or ``RAPPORT_DEBUG=1``)
shows the traceback instead."""

from __future__ import annotations

import enum
import gc
import os
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table
from typer._click.core import Context as CommandContext  # what TyperGroup.invoke takes

from rapport.customers.cli import import_customers_command
from rapport.customers.service import count_customers
from rapport.events.cli import events_app
from rapport.orders.cli import fit_customer_value_command, import_transactions_command
from rapport.platform import admin_security, clock
from rapport.platform import service as platform
from rapport.platform.console import (
    Commands,
    DatabaseMaker,
    HelpGroup,
    NoDatabaseYet,
    console,
    progress_bars,
    require_migrated,
)
from rapport.platform.db import get_engine, open_session
from rapport.platform.errors import NotFound, Problem
from rapport.platform.settings import ENV_FILE_VARIABLE, get_settings, user_env_file
from rapport.recommend.cli import recommend_app

if TYPE_CHECKING:
    from rapport.flows.demo import DemoStep

DEBUG_VARIABLE = "RAPPORT_DEBUG"
errors = Console(stderr=True)


def _database_url_shown() -> str:
    try:
        return _safe_url(get_settings().database_url)
    except Exception:  # the settings themselves may be what is wrong
        return "RAPPORT_DATABASE_URL"


def _no_database_yet(path: str) -> tuple[str, str]:
    return (
        f"There is no Rapport database at {path} yet: nothing was created.",
        "Run: rapport init (it makes the database, an admin user and an API key), or"
        " set RAPPORT_DATA_DIR or RAPPORT_DATABASE_URL to where yours is.",
    )


def _missing_database_driver() -> bool:
    """Whether the driver RAPPORT_DATABASE_URL names cannot be imported (``psycopg2`` for
    ``postgresql+psycopg2://``, ``MySQLdb`` for ``mysql://``): Rapport installs only
    ``psycopg`` (3) and the standard library's ``sqlite3``."""
    from sqlalchemy.engine import make_url

    try:
        make_url(get_settings().database_url).get_dialect().import_dbapi()
    except ImportError:
        return True
    except Exception:  # a URL or setting problem of another kind: not this one
        return False
    return False


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def explain(error: Exception) -> tuple[str, str]:
    """What went wrong, in one line, and what to do about it."""
    from alembic.util.exc import CommandError
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, DBAPIError

    if isinstance(error, NoDatabaseYet):
        return _no_database_yet(error.path)
    if isinstance(error, NotFound) and error.field == "key_id":
        return error.detail, "`rapport keys list` shows the ids (`--all` with revoked keys)."
    if isinstance(error, Problem):
        if error.field and error.field.startswith("RAPPORT_"):  # a setting Rapport refused
            return (
                f"A setting is wrong: {error.field}: {error.detail}.",
                "Correct it in the environment."
                if error.field == ENV_FILE_VARIABLE  # read before, and naming, the env files
                else f"Correct it in the environment, ./.env or {user_env_file()}.",
            )
        return error.detail, "Correct it and run the command again."
    if isinstance(error, ArgumentError):
        return (
            f"RAPPORT_DATABASE_URL is not a database URL Rapport can use ({_first_line(error)}).",
            "Set it to sqlite:////absolute/path/rapport.db or"
            " postgresql+psycopg://user:password@host:5432/rapport, or unset it for the"
            " embedded database in RAPPORT_DATA_DIR.",
        )
    if isinstance(error, ImportError) and _missing_database_driver():
        return (
            "RAPPORT_DATABASE_URL is not a database URL Rapport can use (its driver is not"
            f" installed: {_first_line(error)}).",
            "Set it to postgresql+psycopg://user:password@host:5432/rapport or"
            " sqlite:////absolute/path/rapport.db, or unset it for the embedded database in"
            " RAPPORT_DATA_DIR.",
        )
    if isinstance(error, DBAPIError):
        reason = _first_line(error.orig) if error.orig is not None else _first_line(error)
        where = _database_url_shown()
        lowered = reason.lower()
        if any(sign in lowered for sign in ("no such table", "no such column")) or (
            "does not exist" in lowered and ("relation" in lowered or "column" in lowered)
        ):
            return (
                f"The database at {where} is not migrated for this version of Rapport ({reason}).",
                "Run: rapport migrate",
            )
        if "unable to open database file" in lowered:
            return (
                f"Cannot open the SQLite database {where} ({reason}).",
                "Make its directory writable, or set RAPPORT_DATA_DIR or RAPPORT_DATABASE_URL.",
            )
        if "database is locked" in lowered:
            return (
                f"The SQLite database {where} is busy: another process holds it.",
                "Try again when the other rapport command has finished.",
            )
        if isinstance(error.orig, Exception) and type(error).__name__ == "OperationalError":
            return (
                f"Cannot use the database at {where}: {reason}.",
                "Check that the database server runs and accepts this user and password, or"
                " correct RAPPORT_DATABASE_URL.",
            )
        return (
            f"The database at {where} refused a statement: {reason}.",
            "If `rapport migrate` does not help, run again with --debug and report it.",
        )
    if isinstance(error, CommandError):
        return (
            f"Migrating the database failed: {_first_line(error)}.",
            "A revision Rapport does not know means a newer Rapport migrated this database:"
            " run that version, or check --revision.",
        )
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"RAPPORT_{'_'.join(str(part) for part in item['loc']).upper()}:"
            f" {item['msg'].removeprefix('Value error, ')}"
            for item in error.errors()
        )
        return (
            f"A setting is wrong: {problems}.",
            f"Correct it in the environment, ./.env or {user_env_file()}.",
        )
    if isinstance(error, OSError):
        named = f" ({error.filename})" if error.filename else ""
        return (
            f"{error.strerror or _first_line(error)}{named}.",
            "Check the path: RAPPORT_DATA_DIR is where Rapport keeps its files.",
        )
    return (
        f"Unexpected {type(error).__name__}: {_first_line(error)}.",
        f"Run again with --debug (or {DEBUG_VARIABLE}=1) to see where, and report it.",
    )


class RapportCommands(HelpGroup):
    """The top-level command: turns any error into what went wrong and what to do."""

    def invoke(self, ctx: CommandContext) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors, exit codes
            raise
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            problem, remedy = explain(error)
            errors.print(f"[red]Error:[/red] {problem}", soft_wrap=True, highlight=False)
            errors.print(remedy, soft_wrap=True, highlight=False, markup=False)
            from pydantic import ValidationError  # a setting refused: an input, as a Problem

            refused = isinstance(error, (Problem, ValidationError))
            raise typer.Exit(code=2 if refused else 1) from error


# Its help is the docstring of ``main`` below.
app = Commands(cls=RapportCommands)
keys_app = Commands(help="Create, list and revoke API keys.")
admin_app = Commands(help="Manage admin users of the admin pages.")
import_app = Commands(help="Import real data (transactions, catalogue, customers).")
app.add_typer(keys_app, name="keys")
app.add_typer(admin_app, name="admin")
app.add_typer(import_app, name="import")
app.add_typer(recommend_app, name="recommend")
app.add_typer(events_app, name="events")
app.command("fit-customer-value")(fit_customer_value_command)


@events_app.callback()
def events_callback() -> None:
    """Events the processors could not apply, and retrying them."""
    from rapport.domains import load_tasks

    load_tasks()  # the processors a retry hands events to


DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_KEY_NAME = "demo key"
CREDENTIALS_FILE = "first-run-credentials"


@app.callback()
def main(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar=DEBUG_VARIABLE,
            help="On an error, show the traceback rather than what to do.",
        ),
    ] = False,
) -> None:
    """Rapport: customer experience and loyalty for omnichannel retailers.

    Settings: RAPPORT_* variables, ./.env, ~/.config/rapport/env (docs/operator-guide.md).

    Data: RAPPORT_DATA_DIR (default ~/.local/share/rapport), whatever the current directory."""


@app.command(cls=DatabaseMaker)
def migrate(
    revision: Annotated[
        str, typer.Option(help="Target revision (never an older one: it only upgrades)")
    ] = "head",
) -> None:
    """Bring the database schema up to date (safe to run any time; it never downgrades)."""
    from rapport.platform.migrations_runner import (
        behind,
        current_revisions,
        schema_problem,
        unknown_revisions,
        upgrade,
    )

    url = get_settings().database_url
    with get_engine(url).connect() as connection:
        newer = bool(unknown_revisions(connection))
        problem = schema_problem(connection)
        older = behind(connection, revision)
        at = ", ".join(current_revisions(connection))
    if newer and problem is not None:
        _refuse(*problem)
    if older:
        _refuse(
            f"The database at {_safe_url(url)} is at revision {at}, after {revision}:"
            " rapport migrate only upgrades.",
            "To go back, restore the backup taken before the upgrade; or, from the checkout of"
            " the version that migrated it, run RAPPORT_DATABASE_URL=... .venv/bin/alembic"
            f" downgrade {revision} (it drops what the later migrations added).",
        )
    from sqlalchemy.exc import DBAPIError

    try:
        with console.status("Migrating database"):
            upgrade(url, revision)
    except DBAPIError as error:
        table = _left_behind(error)
        if table is None:
            raise
        _refuse(
            f"The database at {_safe_url(url)} already has the table {table}, which its"
            f" revision {at or 'base (empty)'} does not: a newer Rapport's tables were left"
            " in it (pg_restore --clean over an upgraded database drops only what the backup"
            " has)." + (" Nothing was migrated." if url.startswith("postgresql") else ""),
            "Restore the backup into an empty database (docs/operator-guide.md, Backups:"
            " dropdb and createdb, or a new database RAPPORT_DATABASE_URL names), then run"
            " rapport migrate.",
        )
    with get_engine(url).connect() as connection:
        at = ", ".join(current_revisions(connection)) or "base (empty)"
    console.print(f"Database at [bold]{_safe_url(url)}[/bold] is at revision {at}.")


_ALREADY_THERE = re.compile(r'(?:relation "|table )([A-Za-z0-9_]+)"? already exists')


def _left_behind(error: Exception) -> str | None:
    """The table a migration found already there (a newer version's, left in a database
    restored over an upgraded one), or ``None`` for another failure."""
    cause = getattr(error, "orig", None) or error
    found = _ALREADY_THERE.search(_first_line(cause))
    return found.group(1) if found else None


def _refuse(problem: str, remedy: str) -> NoReturn:
    """End the command with exit code 2: what was refused, and what to do instead."""
    errors.print(f"[red]Error:[/red] {problem}", soft_wrap=True, highlight=False)
    errors.print(remedy, soft_wrap=True, highlight=False, markup=False)
    raise typer.Exit(code=2)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command(cls=DatabaseMaker)
def init(
    demo: Annotated[
        bool, typer.Option(help="Embedded demo: also load the demo retailer (once)")
    ] = False,
    demo_customers: Annotated[int, typer.Option(min=0)] = 2_000,
    seed: Annotated[int, typer.Option()] = 42,
    admin_email: Annotated[str, typer.Option()] = DEMO_ADMIN_EMAIL,
) -> None:
    """Migrate, create the first admin user and API key, and (with --demo) load demo data.

    Safe to run again: on a database that has them it creates nothing and shows the first
    run's login again (`admin set-password` and `keys create` make new ones on purpose)."""
    migrate()
    settings = get_settings()
    created: list[tuple[str, str]] = []
    with open_session() as db:
        if platform.count_admin_users(db) == 0:
            password = platform.generate_password()
            platform.create_admin_user(db, email=admin_email, password=password)
            created += [(LOGIN, admin_email), (PASSWORD, password)]
        # Only where no key was ever made: a key revoked on purpose is not replaced behind
        # the operator's back.
        if not platform.list_api_keys(db, include_revoked=True):
            issued = platform.create_api_key(
                db,
                name=DEMO_KEY_NAME if demo else "initial admin key",
                scopes=[platform.Scope.ADMIN],
            )
            created += [(KEY, issued.secret)]
        needs_demo = demo and count_customers(db) == 0
    credentials = settings.data_dir / CREDENTIALS_FILE
    kept = False
    if created:
        # Kept before the demo loads: were it interrupted, the next run still shows them.
        try:
            _keep_credentials(credentials, created)
            kept = True
        except OSError as error:  # they are printed below all the same: never lost unseen
            errors.print(
                f"Could not keep the new login in {credentials} ({error.strerror}): store"
                " what follows now; it cannot be shown again.",
                soft_wrap=True,
                highlight=False,
                markup=False,
            )
    # Load after the session above has closed: on SQLite, one writer at a time.
    if needs_demo:
        from rapport.domains import load_tasks

        load_tasks()
        _load_demo(customers=demo_customers, seed=seed)
    base = f"http://{settings.bind_host}:{settings.bind_port}"
    lines = [("Admin pages", f"{base}/admin"), ("API docs", f"{base}/docs")]
    if created:
        console.rule("[bold]Rapport is ready")
        lines += created
    else:
        console.rule("[bold]Rapport is ready (initialised before: nothing new created)")
        lines += _remembered_credentials(credentials)
    for label, value in lines:
        # Plain lines, never a table: a key must be copyable whole, whatever the terminal width.
        console.print(f"{label + ':':<17} {value}", soft_wrap=True, highlight=False, markup=False)
    if kept:
        console.print(
            f"[dim]Also kept in {credentials} (readable by you only), which later `rapport"
            " init` runs show again; delete it once you have stored them elsewhere.[/dim]",
            soft_wrap=True,
        )
    console.print(
        "[dim]New ones on purpose: `rapport admin set-password EMAIL`, `rapport keys create"
        " NAME -s admin`.[/dim]",
        soft_wrap=True,
    )


LOGIN, PASSWORD, KEY = "Admin login", "Admin password", "API key (admin)"


def _keep_credentials(path: Path, created: list[tuple[str, str]]) -> None:
    """Write the first run's credentials where only this user may read them (never readable
    by others, not even between creating and restricting the file)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("# Made by the first `rapport init` on this database; safe to delete.\n")
        file.writelines(f"{label}: {value}\n" for label, value in created)
    os.replace(partial, path)


def _remembered_credentials(path: Path) -> list[tuple[str, str]]:
    """The first run's credentials from ``path``, each checked against the database: one
    changed since is named as such, never shown as if it still worked."""
    if not path.is_file():
        return [
            (
                "Sign in",
                f"with the login printed by the first `rapport init` (it is not kept in {path})",
            )
        ]
    kept: dict[str, str] = {}
    for line in path.read_text().splitlines():
        label, _, value = line.partition(": ")
        if label in (LOGIN, PASSWORD, KEY) and value:
            kept[label] = value.strip()
    shown: list[tuple[str, str]] = []
    with open_session() as db:
        email, password, secret = kept.get(LOGIN), kept.get(PASSWORD), kept.get(KEY)
        if email:
            shown.append((LOGIN, email))
        if email and password:
            still = platform.admin_password_matches(db, email=email, password=password)
            shown.append(
                (PASSWORD, password if still else "changed since the first run (not shown)")
            )
        if secret:
            works = platform.authenticate_api_key(db, secret=secret) is not None
            shown.append((KEY, secret if works else "revoked since the first run (not shown)"))
    return shown


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
    from rapport.platform.serving import configure_logging

    configure_logging()
    count = processes or settings.web_processes
    host, port = host or settings.bind_host, port or settings.bind_port
    if count == 1:
        _require_free_port(host, port)
        from rapport.main import create_app, tune_interpreter

        application = create_app(settings, run_worker=worker, warm=True)
        # Everything loaded so far lives as long as the process: keep the garbage collector
        # from re-walking it on every collection (measured: 15-20 ms per 1,000-event batch).
        gc.freeze()
        tune_interpreter()
        from rapport.platform.http_protocol import ProblemHttpProtocol
        from rapport.platform.serving import log_config

        uvicorn.run(
            application,
            host=host,
            port=port,
            http=ProblemHttpProtocol,  # a request it cannot read is answered with problem+json
            proxy_headers=True,
            access_log=False,  # the application writes it, without personal values
            log_config=log_config(),
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
    require_migrated()  # as serve does: jobs on an older or newer schema only fail
    job_worker = Worker(poll_seconds=settings.worker_poll_seconds)
    if once:
        ran = job_worker.tick()
        console.print(f"Ran {ran} job(s).")
        return
    from rapport.platform.serving import configure_logging

    configure_logging()  # as serve's: alembic's lines of each tick's schema check left out
    console.print(f"Worker {job_worker.worker_id} running; Ctrl-C to stop.")
    try:
        job_worker.run_forever()
    except KeyboardInterrupt:
        job_worker.stop()


def _require_free_port(host: str, port: int) -> None:
    """Say at once, before the application is built (seconds), that ``host:port`` is taken,
    as ``--processes N`` does: exit code 1 and what to do."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            errors.print(
                f"[red]Error:[/red] cannot listen on {host}:{port}: {error.strerror}.",
                soft_wrap=True,
                highlight=False,
            )
            errors.print(
                "Stop what uses it or choose another --port (or RAPPORT_BIND_PORT).",
                soft_wrap=True,
                highlight=False,
                markup=False,
            )
            raise typer.Exit(code=1) from None


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

    def resize(self, step: DemoStep, total: int) -> None:
        self.progress.update(self.tasks[step], total=total)


def _load_demo(*, customers: int, seed: int, end: date | None = None) -> None:
    from rapport.flows.demo import load_demo_data, train_demo_recommendations

    with progress_bars() as progress:
        data = load_demo_data(customers=customers, seed=seed, end=end, progress=_DemoBars(progress))
    console.print(
        f"Demo retailer (seed {seed}, {data.start} to {data.end}): {data.records.stores} stores, "
        f"{data.records.products} products, {data.records.customers} new customers, "
        f"{data.events} new events, {data.orders} new orders; loyalty: "
        f"{data.loyalty.paying_members} new paying members, {data.points.redeemed_points:,} points "
        f"redeemed in {data.points.redemptions:,} redemptions, {data.expired_points:,} points "
        f"expired; experience: {data.feedback.answers} survey answers, "
        f"{data.feedback.reviews} reviews, {data.feedback.held_reviews} held for moderation."
    )
    with console.status("Training recommendations"):
        model = train_demo_recommendations()
    console.print(
        f"Recommendations: model {model.version} trained on {model.purchases:,} purchase lines "
        f"in {model.train_seconds:.1f} s."
    )


@app.command(cls=DatabaseMaker)
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

    if end is not None and end.date() >= clock.now().date():
        raise typer.BadParameter(
            "the last day of history must be before today (orders are never in the future)",
            param_hint="--end",
        )
    load_tasks()
    migrate()
    _load_demo(customers=customers, seed=seed, end=end.date() if end else None)


EnumT = TypeVar("EnumT", bound=enum.StrEnum)


class Switch(enum.StrEnum):
    ON = "on"
    OFF = "off"


def _one_of(choices: type[EnumT]) -> Callable[[str], EnumT]:
    """A parser for an option or argument with fixed values whose refusal lists them
    ("'nope' is not one of 'ingest', 'read', ...") without the "Value error, " that Typer's
    own conversion of an enum puts first."""

    def parse(value: str) -> EnumT:
        try:
            return choices(value)
        except ValueError:
            listed = ", ".join(repr(choice.value) for choice in choices)
            raise typer.BadParameter(f"{value!r} is not one of {listed}") from None

    return parse


@keys_app.command(
    "create",
    help="Create an API key; its secret is printed once.\n\n"
    "With --orders-from-tracking (the default), the Segment e-commerce events the key sends "
    "(Order Completed, Order Refunded, ...) become orders and returns; turn it off where the "
    "shop's own system sends its orders to POST /v1/orders.",
)
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. 'Shop front-end'")],
    scope: Annotated[
        list[platform.Scope],
        typer.Option(
            "--scope",
            "-s",
            parser=_one_of(platform.Scope),
            metavar="SCOPE",
            help="ingest, read, write or admin; repeat for several",
        ),
    ],
    rate_limit: Annotated[
        str | None,
        typer.Option(metavar="LIMIT", help="Its own request limit, e.g. '100/second;5000/hour'"),
    ] = None,
    orders_from_tracking: Annotated[
        bool, typer.Option(show_default=False, help="On by default: see above")
    ] = True,
) -> None:
    require_migrated()  # as serve does: a key made on another schema may not work there
    with open_session() as db:
        issued = platform.create_api_key(
            db,
            name=name,
            scopes=scope,
            rate_limit=rate_limit,
            orders_from_tracking=orders_from_tracking,
        )
    console.print(
        f"Created key {issued.key.id} ({', '.join(issued.key.scopes)}):",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    console.print(issued.secret, soft_wrap=True, highlight=False, markup=False)
    console.print("[dim]This is the only time the key is shown.[/dim]")


# Narrower than this, the table would cut ids: each key is then one plain line.
KEY_TABLE_WIDTH = 120


@keys_app.command("list")
def keys_list(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys")] = False,
) -> None:
    """List API keys (never their secrets); each id is shown whole, for `keys revoke`."""
    require_migrated()
    with open_session() as db:
        keys = platform.list_api_keys(db, include_revoked=all_keys)
    rows = [
        (
            key.id,
            key.name,
            key.key_prefix,
            ", ".join(key.scopes),
            key.rate_limit or "default",
            str(platform.key_orders_from_tracking(key)),
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "",
        )
        for key in keys
    ]
    if console.width < KEY_TABLE_WIDTH:
        # The id first, on a line of its own making: the terminal wraps what follows.
        for row in rows:
            key_id, name, prefix, scopes, limit, orders, created, revoked = row
            line = (
                f"{key_id}  {name!r}  rk_{prefix}_…  scopes: {scopes}  limit: {limit}"
                f"  orders from tracking: {orders}  created {created}"
            )
            console.print(
                line + (f"  revoked {revoked}" if revoked else ""),
                soft_wrap=True,
                highlight=False,
                markup=False,
            )
        return
    table = Table(
        "id", "name", "prefix", "scopes", "rate limit", "orders from tracking", "created", "revoked"
    )
    table.columns[0].no_wrap = True
    table.columns[0].min_width = max((len(row[0]) for row in rows), default=2)
    for row in rows:
        table.add_row(*row)
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
    require_migrated()
    with open_session() as db:
        key = platform.set_api_key_rate_limit(db, key_id=key_id, rate_limit=own)
    console.print(
        f"{key.id} ({key.name}) may make {key.rate_limit or 'the default'} requests.",
        highlight=False,
        markup=False,
    )


@keys_app.command("orders-from-tracking")
def keys_orders_from_tracking(
    key_id: Annotated[str, typer.Argument(help="The key's id (keys list)")],
    switch: Annotated[Switch, typer.Argument(parser=_one_of(Switch), help="on or off")],
) -> None:
    """Whether the Segment e-commerce events a key sends become orders and returns (only for
    a key that may ingest and write; every server applies it within a second); off where the
    shop's system sends orders itself."""
    require_migrated()
    with open_session() as db:
        key = platform.set_api_key_orders_from_tracking(
            db, key_id=key_id, enabled=switch is Switch.ON
        )
    state = platform.key_orders_from_tracking(key)
    if state.effective:
        outcome = "become orders and returns"
    elif not state.switched_on:
        outcome = "are kept as events only"
    elif platform.Scope.INGEST.value in state.missing:
        # /v1/track refuses a key without ingest: it sends no events at all.
        outcome = f"are refused until it has the {state.needs} (then they become orders)"
    else:
        outcome = f"are kept as events only until it has the {state.needs} (a server-side key)"
    console.print(
        f"Segment e-commerce events from {key.id} ({key.name}) {outcome}.",
        highlight=False,
        markup=False,
    )


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (keys list)")]) -> None:
    """Revoke an API key at once."""
    require_migrated()
    with open_session() as db:
        key = platform.revoke_api_key(db, key_id=key_id)
    console.print(f"Revoked {key.id} ({key.name}).", highlight=False, markup=False)


# Asked for once the database's schema is checked (see _new_password), not before.
NewPassword = Annotated[
    str | None, typer.Option(help="The password; asked for (twice, hidden) when not given")
]


def _new_password(given: str | None) -> str:
    """The password given, else asked for twice without echo: after require_migrated, so a
    database that cannot take it is refused before anyone types it."""
    if given is not None:
        return given
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@admin_app.command("create")
def admin_create(email: str, password: NewPassword = None) -> None:
    """Add an admin user."""
    require_migrated()
    if password is None:  # a taken email is refused before the password is typed twice
        with open_session() as db:
            platform.check_new_admin_email(db, email)
    password = _new_password(password)
    with open_session() as db:
        platform.create_admin_user(db, email=email, password=password)
    console.print(f"Admin user {email} created.")


@admin_app.command("set-password")
def admin_set_password(email: str, password: NewPassword = None) -> None:
    """Set a new password for an admin user."""
    require_migrated()
    if password is None:  # an unknown user is refused before the password is typed twice
        with open_session() as db:
            platform.existing_admin_user(db, email)
    password = _new_password(password)
    with open_session() as db:
        platform.set_admin_password(db, email=email, password=password)
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
    require_migrated()
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
    """Load a catalogue CSV (sku, name, price, currency, and optionally category_path, brand,
    cost, country_of_origin, season; other columns become attributes) by SKU. The separator
    (',', ';', tab or '|') is read off the header line; a SKU listed twice is refused."""
    from rapport.catalog.service import import_products_file

    require_migrated()
    with progress_bars() as progress, open_session() as db:
        # Unknown total while the whole file is checked; then the rows it holds.
        task = progress.add_task("Products", total=None)
        summary = import_products_file(
            db,
            path,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    rows = f"{summary.rows:,} row{'' if summary.rows == 1 else 's'} read"
    products = f"{summary.written:,} product{'' if summary.written == 1 else 's'}"
    console.print(f"{rows}, {products} created or updated.")


if __name__ == "__main__":
    app()
