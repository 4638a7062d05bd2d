"""One typed settings object, read once from the environment (``RAPPORT_*``), the working
directory's ``.env`` and the user's env file (``RAPPORT_ENV_FILE``, by default
``~/.config/rapport/env``).

Nothing depends on the directory a command runs in: the data directory defaults to the user's
(``$XDG_DATA_HOME/rapport``, ``~/.local/share/rapport``), the embedded database lives in it,
and relative paths given in settings are made absolute once, when they are read."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import Depends, Request
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url

from rapport.platform import formatting

ENV_FILE_VARIABLE = "RAPPORT_ENV_FILE"
LEGACY_DATA_DIR = "var"  # the data directory, relative to the working one, before 5 Dec 2026
WEBHOOK_ALLOWED_NETWORKS_SETTING = "RAPPORT_WEBHOOK_ALLOWED_NETWORKS"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SQLITE_FILE = "rapport.db"


def _xdg_base(variable: str, fallback: str) -> Path:
    # The XDG spec ignores relative values; so do we.
    value = os.environ.get(variable, "")
    return Path(value) if os.path.isabs(value) else Path.home() / fallback


def user_data_dir() -> Path:
    """The data directory when none is configured: ``$XDG_DATA_HOME/rapport``, or
    ``~/.local/share/rapport``."""
    return _xdg_base("XDG_DATA_HOME", ".local/share") / "rapport"


def user_env_file() -> Path:
    """The user's env file: ``RAPPORT_ENV_FILE``, or ``$XDG_CONFIG_HOME/rapport/env``
    (``~/.config/rapport/env``)."""
    named = os.environ.get(ENV_FILE_VARIABLE, "")
    if named:
        return Path(named).expanduser()
    return _xdg_base("XDG_CONFIG_HOME", ".config") / "rapport" / "env"


def env_files() -> tuple[Path, ...]:
    """The env files read, weakest first: the user's, then the working directory's ``.env``
    (a checkout's own settings win over the user's). Variables set in the environment win
    over both."""
    named = os.environ.get(ENV_FILE_VARIABLE, "")
    if named and not Path(named).expanduser().is_file():
        from rapport.platform.errors import InvalidInput

        raise InvalidInput(
            f"it names {named}, which is not a file: create it or unset {ENV_FILE_VARIABLE}",
            field=ENV_FILE_VARIABLE,
        )
    return (user_env_file(), Path(".env"))


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")


# A host RAPPORT_PUBLIC_BASE_URL may name: an ASCII host name (labels of letters, digits and
# inner hyphens; an IPv4 address is one too) or a bracketed IPv6 literal, checked apart.
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# What a URL's path may hold as it is (RFC 3986's pchar and '/', the quote left out: the links
# go into HTML and emails as they are), or as %XX escapes.
_URL_PATH = re.compile(r"(?:[A-Za-z0-9\-._~!$&()*+,;=:@/]|%[0-9A-Fa-f]{2})*")


def _is_host(host: str, bracketed: bool) -> bool:
    """Whether ``host`` (as urlsplit's hostname gives it) is a host name or an IP literal."""
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    labels = host.removesuffix(".").split(".")
    if all(label.isdigit() for label in labels):
        # Digits and dots only: browsers read it as an IPv4 address ('999' as 0.0.3.231),
        # so it must be a dotted-quad one.
        try:
            ipaddress.IPv4Address(host.removesuffix("."))
        except ValueError:
            return False
        return True
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def _is_public_base_url(value: str) -> bool:
    """Whether ``value`` is an absolute http(s) URL with a host name or IP literal, a path of
    URL characters only, and neither a query, a fragment nor credentials: what links in
    messages can be built under."""
    if any(character.isspace() for character in value):
        return False
    try:
        parts = urlsplit(value)  # raises on a bracketed host that is no IPv6 address
        port = parts.port  # raises on a port that is no number, or out of range
    except ValueError:
        return False
    return (
        port != 0
        and parts.scheme.lower() in {"http", "https"}
        and bool(parts.hostname)
        and _is_host(parts.hostname or "", parts.netloc.startswith("["))
        and _URL_PATH.fullmatch(parts.path) is not None
        and not (parts.query or parts.fragment or parts.username or parts.password)
        and "?" not in value
        and "#" not in value
    )


# The `limits` storages RAPPORT_RATE_LIMIT_STORAGE may name: the synchronous ones (docs/
# operator-guide.md); each needs its client library installed (redis, pymemcache, pymongo).
RATE_LIMIT_STORAGE_SCHEMES = frozenset(
    {
        "redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel",
        "valkey", "valkeys", "valkey+unix", "valkey+cluster", "valkey+sentinel",
        "memcached", "mongodb", "mongodb+srv",
    }
)  # fmt: skip


def tracking_origins(value: str) -> list[str]:
    """``RAPPORT_TRACKING_ALLOWED_ORIGINS`` as a list (a trailing slash dropped); ``none``
    (or nothing) is no origin at all."""
    if value.strip().lower() == "none":
        return []
    return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]


def webhook_networks(value: str) -> list[Network]:
    """``RAPPORT_WEBHOOK_ALLOWED_NETWORKS`` read: CIDRs (or single addresses) separated by
    commas; ValueError naming one that is not."""
    networks: list[Network] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(
                f"{part!r} is not a network: write CIDRs separated by commas, such as"
                " 10.20.0.0/16, 192.168.1.5/32 or fd00::/8"
            ) from None
    return networks


def absolute(path: Path) -> Path:
    """``path`` made absolute against the working directory now (``~`` expanded), so that
    later changes of directory do not move it."""
    return Path(os.path.abspath(path.expanduser()))


class Settings(BaseSettings):
    """Everything an operator can configure. See docs/operator-guide.md."""

    model_config = SettingsConfigDict(
        env_prefix="RAPPORT_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy URL: sqlite:///path (embedded) or postgresql+psycopg://...; empty:"
            " rapport.db in the data directory. A relative SQLite path is taken from the"
            " working directory once, when settings are read."
        ),
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs admin session cookies. Generated into <data_dir>/secret_key when unset.",
    )
    identity_secret: SecretStr | None = Field(
        default=None,
        description="Verifies the public tracking key's user ids: when set, a userId sent with an "
        "ingest-only key counts only with context.userHash, the hex HMAC-SHA256 of the userId "
        "under this secret (computed by the shop's server); docs/tracking.md.",
    )
    bind_host: str = "127.0.0.1"
    bind_port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Larger bodies get 413.")
    embedded_worker: bool | None = Field(
        default=None,
        description="Run the job worker inside `rapport serve` (default: only with SQLite).",
    )
    worker_poll_seconds: float = Field(default=0.25, gt=0)
    web_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="HTTP server processes of `rapport serve` (about one per CPU core).",
    )
    command_connections: int = Field(
        default=4,
        ge=0,
        le=64,
        description=(
            "PostgreSQL connections per server process for points earned and redeemed as one"
            " statement from the event loop; 0 sends every command through the session path."
        ),
    )
    access_log: bool = Field(
        default=True,
        description=(
            "Log one line per HTTP request (method, route, status, time taken; never a"
            " query's values or a path's personal values); turn off where a load balancer"
            " logs requests already."
        ),
    )
    request_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description=(
            "Time budget of one HTTP request: a read not answering by then gets 503 with"
            " Retry-After, and long loops stop themselves (docs/api.md)."
        ),
    )
    session_max_age_seconds: int = Field(default=8 * 3600, gt=0)
    secure_cookies: bool = Field(
        default=False,
        description=(
            "Always mark admin cookies Secure (they are whenever the request came over HTTPS,"
            " as uvicorn sees it after trusted proxy headers)."
        ),
    )
    api_rate_limit: str = Field(
        default="120000/minute",
        description=(
            "Requests each API key may make, in the notation of the `limits` library"
            " ('100/second', several joined by ';'); a key's own limit overrides it."
            " Empty turns rate limiting off."
        ),
    )
    coupon_rate_limit: str = Field(
        default="600/minute",
        description=(
            "Coupon codes each API key may look up (validation, checkout and orders; besides"
            " its request limit), so that codes cannot be guessed through the API. Empty: only"
            " the request limit applies."
        ),
    )
    rate_limit_storage: str = Field(
        default="",
        description=(
            "Where request counts are kept: empty for a shared file in the data directory"
            " (every `rapport serve` process of this host), or a `limits` storage URI such as"
            " redis://host:6379 for servers on several hosts."
        ),
    )
    dead_letter_limit: int = Field(
        default=10_000, ge=0, description="Rejected tracking messages kept (newest first)."
    )
    dead_letter_max_bytes: int = Field(
        default=8192, ge=256, description="Each kept rejected message is cut to this size."
    )
    data_dir: Path = Field(
        default_factory=user_data_dir,
        description=(
            "Embedded database, generated secret, rate-limit counts, models, first-run"
            " credentials (default: $XDG_DATA_HOME/rapport, ~/.local/share/rapport)."
        ),
    )
    return_cost_minor: int = Field(
        default=800, ge=0, description="What one return costs (carriage, handling), in cents."
    )
    pickup_hold_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description=(
            "How many days a pick-up-in-store order waits at the store once ready: past it,"
            " it is not collected, its units go back on sale and the customer is told."
        ),
    )
    vendor_static_dir: Path | None = Field(
        default=None,
        description=(
            "Where npm installed the admin pages' JavaScript (htmx, chart.js) and the API"
            " reference's (Swagger UI, ReDoc); default: the checkout's node_modules."
        ),
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description=(
            "Where customers reach this installation's public pages (unsubscribe links in"
            " messages): an absolute http(s) URL, such as https://shop.example.com."
        ),
    )
    smtp_host: str = Field(default="localhost", description="SMTP server for email deliveries.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = Field(default="", description="SMTP login; empty: no AUTH.")
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "ssl"] = Field(
        default="none",
        description="none (plain, local relays), starttls (usually port 587) or ssl (port 465).",
    )
    smtp_from: str = Field(
        default="Rapport <no-reply@localhost>", description="From: of email deliveries."
    )
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    cx_alert_emails: str = Field(
        default="",
        description=(
            "Who is told when a CX score falls below its target: email addresses separated by"
            " commas. Empty: every admin user."
        ),
    )
    cx_alert_webhook: str = Field(
        default="",
        description=(
            "The name of a campaigns webhook endpoint that also receives each CX alert (a chat"
            " or paging system). Empty: email only."
        ),
    )

    webhook_allowed_networks: str = Field(
        default="",
        description=(
            "Networks of the host's own (CIDRs separated by commas, such as 10.20.0.0/16,"
            " 127.0.0.1/32) that webhooks may be sent to, such as an ERP on the shop's own"
            " network. Empty: webhooks reach public addresses only; loopback, private,"
            " link-local (cloud metadata), multicast and reserved addresses are refused."
        ),
    )

    tracking_allowed_origins: str = Field(
        default="*",
        description=(
            "Web pages (origins, https://shop.example, separated by commas) whose scripts may"
            " send tracking events from the browser (CORS on the tracking routes only, never"
            " with credentials). `*`: any page, as the write key in a page is public anyway;"
            " `none`: no page."
        ),
    )

    locale: str = Field(
        default="en_GB",
        description=(
            "Locale of numbers, money and dates on the admin pages (en_GB, de_DE, fr_FR, ...);"
            " the currency is the loyalty program's."
        ),
    )

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        return formatting.checked_locale(value)

    @field_validator("tracking_allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in tracking_origins(value):
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port] without a path"
                    " (https://shop.example), or * for any page"
                )
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _webhook_networks(cls, value: str) -> str:
        webhook_networks(value)
        return value

    @property
    def webhook_networks(self) -> list[Network]:
        """The networks webhooks may reach besides public addresses."""
        return webhook_networks(self.webhook_allowed_networks)

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str) -> str:
        value = value.strip()
        if not _is_public_base_url(value):
            raise ValueError(
                f"{value!r} is not an absolute http(s) URL: write the scheme and host customers"
                " reach Rapport at, such as https://shop.example.com (a host name or IP address;"
                " a port or a path of URL characters may follow, no query, quotes, spaces or"
                " angle brackets)"
            )
        return value  # a trailing slash is kept: the links built on it drop it

    @field_validator("bind_host")
    @classmethod
    def _bind_host(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not value or not _is_host(value, bracketed=False):
                raise ValueError(
                    f"{value!r} is not an address to listen on: an IP address (127.0.0.1,"
                    " 0.0.0.0, ::) or a host name"
                ) from None
        return value

    @field_validator("api_rate_limit", "coupon_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from rapport.platform.errors import Problem
        from rapport.platform.ratelimit import parse_limit  # the one the limiter reads

        if value.strip():
            try:
                parse_limit(value)
            except Problem as refused:
                raise ValueError(refused.detail) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        if not value:
            return value
        try:
            make_url(value).get_dialect()
        except (ArgumentError, NoSuchModuleError, ValueError):
            raise ValueError(
                f"{value.split('://', 1)[0] + '://…' if '://' in value else repr(value)} is not"
                " a database URL Rapport can use: sqlite:////absolute/path/rapport.db or"
                " postgresql+psycopg://user:password@host:5432/rapport, or unset it for the"
                " embedded database in RAPPORT_DATA_DIR"
            ) from None
        except ImportError:  # a driver not installed: named when the engine is made
            pass
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _rate_limit_storage(cls, value: str) -> str:
        value = value.strip()
        scheme, separator, _ = value.partition("://")
        if value and (not separator or scheme.lower() not in RATE_LIMIT_STORAGE_SCHEMES):
            raise ValueError(
                f"{value!r} is not a rate-limit storage: leave it empty for a file in the data"
                " directory (the processes of one host), or give a `limits` storage URI for"
                " servers on several hosts: redis://host:6379 (or rediss://, redis+unix://,"
                " redis+cluster://, redis+sentinel://, valkey://), memcached://host:11211 or"
                " mongodb://host:27017"
            )
        return value

    @property
    def tracking_origins(self) -> list[str]:
        """The origins allowed to send tracking events from a browser (``["*"]``: any)."""
        return tracking_origins(self.tracking_allowed_origins)

    @field_validator("secret_key")
    @classmethod
    def _reject_placeholder_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() in {"changeme", "changethis", "secret"}:
            raise ValueError("RAPPORT_SECRET_KEY is a placeholder; set a long random value")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The env files are found when settings are read (RAPPORT_ENV_FILE, XDG_CONFIG_HOME
        # may change between reads), not when this module is imported.
        user_and_local = DotEnvSettingsSource(settings_cls, env_file=env_files())
        return init_settings, env_settings, user_and_local, file_secret_settings

    @field_validator("data_dir", "vendor_static_dir")
    @classmethod
    def _absolute_path(cls, value: Path | None) -> Path | None:
        return None if value is None else absolute(value)

    @model_validator(mode="after")
    def _absolute_database(self) -> Settings:
        if not self.database_url:
            self._refuse_a_database_left_in_var()
            self.database_url = f"sqlite:///{self.data_dir / SQLITE_FILE}"
            return self
        try:
            url = make_url(self.database_url)
        except Exception:  # not a URL: left as given, for the engine to refuse with its reason
            return self
        database = url.database or ""
        if (
            url.get_backend_name() == "sqlite"
            and database
            and database != ":memory:"
            and not database.startswith("file:")
            and not os.path.isabs(database)
        ):
            resolved = url.set(database=str(absolute(Path(database))))
            self.database_url = resolved.render_as_string(hide_password=False)
        return self

    def _refuse_a_database_left_in_var(self) -> None:
        """Rapport before 5 December 2026 (d2a4ab4) kept its data in ``./var`` (of the
        directory it ran in): with the default data directory holding no database, one there
        is an install being upgraded, whose data would otherwise be left for a new, empty one."""
        left = absolute(Path(LEGACY_DATA_DIR))
        if (
            "data_dir" in self.model_fields_set
            or (self.data_dir / SQLITE_FILE).exists()
            or not (left / SQLITE_FILE).is_file()
        ):
            return
        from rapport.platform.errors import InvalidInput

        raise InvalidInput(
            f"the default data directory {self.data_dir} has no database, and {left / SQLITE_FILE}"
            " is one an older Rapport kept in ./var; set RAPPORT_DATA_DIR="
            f"{left} (in {user_env_file()} or the service's environment), or move the files of"
            f" {left} to {self.data_dir}",
            field="RAPPORT_DATA_DIR",
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def runs_embedded_worker(self) -> bool:
        return self.is_sqlite if self.embedded_worker is None else self.embedded_worker

    def session_secret(self) -> str:
        """The cookie-signing secret, created once per data directory when not configured."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()


def app_settings(request: Request) -> Settings:
    """FastAPI dependency: the settings the running application was built with."""
    configured = getattr(request.app.state, "settings", None)
    return configured if isinstance(configured, Settings) else get_settings()


AppSettings = Annotated[Settings, Depends(app_settings)]
