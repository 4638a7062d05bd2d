"""Import customers from a CSV file (a CRM export) through a column mapping.

Rows are streamed: the file is read twice (a check pass, then a load pass in batches), so a
malformed file changes nothing and no more than one batch of rows is held at a time. The one
thing kept for the whole file is the set of external ids already seen (some 100 bytes per
customer), so that a repeated id counts as a duplicate rather than as already imported.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from sqlalchemy.orm import Session

from rapport.customers.consent import clipped_consent_source
from rapport.customers.import_batch import ImportedCustomer, load_customers
from rapport.customers.models import CONSENT_PURPOSES
from rapport.platform.errors import InvalidInput, MalformedFile
from rapport.platform.files import open_decompressed, text_encoding
from rapport.platform.identity import (
    TIME_ZONE_MAX_LENGTH,
    canonical_email,
    canonical_phone,
    customer_number_problem,
    time_zone_problem,
)

BATCH_SIZE = 2_000
# How often the check pass reports progress; per row would cost more than the parsing.
PROGRESS_EVERY_ROWS = 1_000

# Progress callback: (phase, done, total). Phase "check" counts bytes of the file as stored
# (compressed or not); phase "import" counts rows, its total known from the check pass.
Progress = Callable[[str, int, int], None]

# How exports write a consent choice (matched without regard to case); an empty cell is no
# choice recorded, anything else is refused naming the line and column.
CONSENT_VALUES: dict[str, bool] = {
    "yes": True,
    "y": True,
    "true": True,
    "t": True,
    "1": True,
    "on": True,
    "x": True,
    "granted": True,
    "opt-in": True,
    "opted-in": True,
    "subscribed": True,
    "no": False,
    "n": False,
    "false": False,
    "f": False,
    "0": False,
    "off": False,
    "denied": False,
    "opt-out": False,
    "opted-out": False,
    "unsubscribed": False,
}


def customer_number_refusal(value: str) -> str | None:
    """Why a file's row cannot name ``value`` as a customer number (``'IMP/2' cannot be a
    customer number. A customer number cannot hold '/'…``), or ``None``: the one check the
    customers and transactions imports make in their check pass, before anything is
    written."""
    problem = customer_number_problem(value)
    return None if problem is None else f"{value!r} cannot be a customer number. {problem}"


def consent_choice(value: str) -> bool | None:
    """A consent cell's choice: ``True`` or ``False``, ``None`` for an empty cell. Raises
    ``ValueError`` for a value that is neither (the caller names the line and column)."""
    value = value.strip()
    if not value:
        return None
    choice = CONSENT_VALUES.get(value.casefold())
    if choice is None:
        raise ValueError(value)
    return choice


def consent_choices_hint() -> str:
    return "/".join(CONSENT_VALUES)


def import_consent_source(path: Path) -> str:
    """What the consent history names as the source of choices read from ``path``."""
    return clipped_consent_source(f"import:{path.name}")


def check_purposes(purposes: Iterable[str], *, field: str) -> frozenset[str]:
    """``purposes`` as a set, or :class:`InvalidInput` naming the first unknown one."""
    if isinstance(purposes, str):  # one purpose, not its letters
        purposes = [purposes]
    wanted = frozenset(p.strip() for p in purposes)
    unknown = sorted(wanted - set(CONSENT_PURPOSES))
    if unknown:
        raise InvalidInput(
            f"Unknown consent purpose {unknown[0]!r}; use one of {', '.join(CONSENT_PURPOSES)}",
            field=field,
        )
    return wanted


# Longest value each customers column holds (see customers/models.py). Checked while reading
# because PostgreSQL refuses longer values mid-batch, while SQLite would silently keep them.
MAX_LENGTHS = {
    "external_id": 100,
    "email": 320,
    "phone": 40,
    "first_name": 100,
    "last_name": 100,
    "locale": 10,
    "city": 120,
    "loyalty_card": 320,
    "time_zone": TIME_ZONE_MAX_LENGTH,
}
TEXT_FIELDS = (
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "city",
    "time_zone",
)
NUMBER_RANGES = {"latitude": (-90.0, 90.0), "longitude": (-180.0, 180.0)}
SINGLE_FIELDS = (*TEXT_FIELDS, "latitude", "longitude", "loyalty_card")
CONSENT_PREFIX = "consent."


@dataclass(frozen=True)
class ColumnMapping:
    """Which CSV column holds each customer field; ``None`` means the file has no such field.

    Columns in ``required`` (and ``external_id``, always) must be in the header; other mapped
    columns are used when present and ignored when absent, so one preset fits exports that
    differ a little. Header names match case-insensitively."""

    external_id: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    city: str | None = None
    time_zone: str | None = None
    latitude: str | None = None
    longitude: str | None = None
    loyalty_card: str | None = None
    consents: Mapping[str, str] = field(default_factory=dict)  # purpose -> column
    # Purposes granted to every imported customer (the shop collected them): a row's own
    # choice in a consent column wins.
    granted_consents: frozenset[str] = frozenset()
    attributes: tuple[str, ...] = ()  # columns copied into ``attributes`` under their name
    default_locale: str = "en"
    required: frozenset[str] = frozenset()
    # field -> other header names read for it when its own column is not in the file (the
    # crm preset reads the customer number from ``external_id``, the API's name for it, too)
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.consents) - set(CONSENT_PURPOSES))
        if unknown:
            raise InvalidInput(
                f"Unknown consent purpose {unknown[0]!r}; use one of {', '.join(CONSENT_PURPOSES)}",
                field="consents",
            )
        check_purposes(self.granted_consents, field="grant_consent")
        if not self.external_id.strip():
            raise InvalidInput("external_id needs a column", field="external_id")
        if len(self.default_locale) > MAX_LENGTHS["locale"]:
            raise InvalidInput("default locale is longer than 10 characters", field="locale")

    def fields(self) -> dict[str, str]:
        """Every mapped field (``consent.<purpose>`` for consents) and its column."""
        mapped = {name: getattr(self, name) for name in SINGLE_FIELDS}
        mapped.update({CONSENT_PREFIX + p: c for p, c in self.consents.items()})
        return {name: column for name, column in mapped.items() if column}

    def with_overrides(
        self,
        columns: Mapping[str, str] | None = None,
        *,
        attributes: Sequence[str] = (),
        default_locale: str | None = None,
        granted_consents: Iterable[str] = (),
    ) -> ColumnMapping:
        """This mapping with some fields read from other columns (an empty column stops reading
        that field), more attribute columns and more purposes granted to everyone. Columns
        named here must be in the file."""
        changes: dict[str, Any] = {}
        consents = dict(self.consents)
        aliases = dict(self.aliases)
        required = set(self.required)
        for name, column in (columns or {}).items():
            column = column.strip()
            if name.startswith(CONSENT_PREFIX):
                purpose = name.removeprefix(CONSENT_PREFIX)
                if purpose not in CONSENT_PURPOSES:
                    raise InvalidInput(
                        f"Unknown consent purpose {purpose!r}; use one of "
                        f"{', '.join(CONSENT_PURPOSES)}",
                        field=name,
                    )
                if column:
                    consents[purpose] = column
                else:
                    consents.pop(purpose, None)
            elif name in SINGLE_FIELDS:
                if not column and name == "external_id":
                    raise InvalidInput("external_id cannot be unmapped", field=name)
                changes[name] = column or None
                aliases.pop(name, None)  # a column named with --map is the only one read
            else:
                raise InvalidInput(
                    f"Unknown field {name!r}; use one of {', '.join(mappable_fields())}",
                    field=name,
                )
            if column:
                required.add(column)
        names = dict.fromkeys((*self.attributes, *(a.strip() for a in attributes if a.strip())))
        required.update(names.keys() - set(self.attributes))
        return replace(
            self,
            **changes,
            consents=consents,
            aliases=aliases,
            attributes=tuple(names),
            default_locale=self.default_locale if default_locale is None else default_locale,
            required=frozenset(required),
            granted_consents=self.granted_consents
            | check_purposes(granted_consents, field="grant_consent"),
        )


def mappable_fields() -> list[str]:
    """The field names ``--map FIELD=COLUMN`` accepts."""
    return [*SINGLE_FIELDS, *(CONSENT_PREFIX + p for p in CONSENT_PURPOSES)]


PRESETS: dict[str, ColumnMapping] = {
    # A CRM export with plain column names; any of them but customer_id may be missing.
    "crm": ColumnMapping(
        external_id="customer_id",
        email="email",
        phone="phone",
        first_name="first_name",
        last_name="last_name",
        locale="locale",
        city="city",
        time_zone="time_zone",
        latitude="latitude",
        longitude="longitude",
        loyalty_card="loyalty_card",
        consents={p: f"consent_{p}" for p in CONSENT_PURPOSES},
        aliases={"external_id": ("external_id",)},
    ),
    # Olist's customers.csv: customer_unique_id is the person; customer_id is one per order,
    # so it is not an identity of the person and is not imported.
    "olist": ColumnMapping(
        external_id="customer_unique_id",
        city="customer_city",
        attributes=("customer_zip_code_prefix", "customer_state"),
        default_locale="pt-BR",
        required=frozenset(
            {"customer_unique_id", "customer_city", "customer_zip_code_prefix", "customer_state"}
        ),
    ),
}


@dataclass(frozen=True)
class ImportSummary:
    """What one import did. ``read`` counts data rows; a row whose external id appeared
    earlier in the file is a duplicate (the first row wins) and is not imported."""

    read: int
    added: int
    skipped_existing: int
    duplicates_in_file: int
    skipped_erased: int = 0  # rows naming a person who was erased: never brought back
    # Customers added without their phone, which another customer holds: one message each,
    # naming the line and column.
    phones_left_out: tuple[str, ...] = ()
    emails_left_out: tuple[str, ...] = ()  # the same, for an email another customer holds
    ignored_fields: tuple[str, ...] = ()  # mapped, but their column is not in the file
    unused_columns: tuple[str, ...] = ()  # in the file, but mapped to nothing


class CustomerCsv:
    """An open customer CSV (plain, gzip or zip): the header is checked against the mapping on
    opening; :meth:`customers` parses the rows one at a time."""

    def __init__(
        self,
        path: Path,
        mapping: ColumnMapping,
        *,
        encoding: str = "utf-8-sig",
        delimiter: str = ",",
    ) -> None:
        self.path = path
        self.mapping = mapping
        self.encoding = encoding
        self.delimiter = delimiter
        self._stack = ExitStack()
        self._raw: IO[bytes] | None = None
        self._reader: Any = None  # the csv module's reader type is not public
        self.header: list[str] = []
        self.ignored_fields: tuple[str, ...] = ()
        self.unused_columns: tuple[str, ...] = ()
        self._index: dict[str, int] = {}  # field -> position in the row
        self._attribute_index: list[tuple[str, int]] = []

    def __enter__(self) -> CustomerCsv:
        try:
            self._open()
            self._read_header()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def position(self) -> int:
        """Bytes of the stored file consumed so far (read ahead in chunks, so approximate)."""
        return self._raw.tell() if self._raw is not None else 0

    def _open(self) -> None:
        raw, stream = open_decompressed(self._stack, self.path, fail=MalformedFile)
        self._raw = raw
        text = self._stack.enter_context(
            io.TextIOWrapper(stream, encoding=self.encoding, errors="surrogateescape", newline="")
        )
        self._reader = csv.reader(text, delimiter=self.delimiter, strict=True)

    def _next_row(self) -> tuple[int, list[str]] | None:
        """The next non-blank record and the line it starts on, or ``None`` at the end;
        quoting, encoding and decompression errors become :class:`MalformedFile`."""
        reader = self._reader
        while True:
            start = reader.line_num + 1
            try:
                row: list[str] = next(reader)
            except StopIteration:
                return None
            except csv.Error as error:
                raise MalformedFile(
                    f"{error}; check the quotes in the record starting here", line=start
                ) from error
            except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
                # A truncated or corrupt gzip/zip stream surfaces here, mid-file.
                raise MalformedFile(
                    f"the compressed file is damaged ({error}); export it again", line=start
                ) from error
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank: [] from the csv module (often at the end), or spaces only
            # Undecodable bytes arrive as lone surrogates (errors="surrogateescape"), so the
            # error can name the exact line and column; a decoding error would name a chunk.
            if not "".join(row).isascii():
                for position, value in enumerate(row):
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError as error:
                        raise MalformedFile(
                            f"this value is not {text_encoding(self.encoding)} text; export the "
                            "file as UTF-8 or pass its encoding (--encoding cp1252)",
                            line=start,
                            column=self._column_name(position),
                        ) from error
            return start, row

    def _column_name(self, position: int) -> str | None:
        if not self.header:
            return None
        return self.header[position] if position < len(self.header) else None

    def _present(self, name: str, column: str, positions: Mapping[str, list[int]]) -> str:
        """The header's column for field ``name``: its mapped column, else the first of the
        field's aliases in the header, else the mapped column (missing)."""
        if column.casefold() in positions:
            return column
        for other in self.mapping.aliases.get(name, ()):
            if other.casefold() in positions:
                return other
        return column

    def _described(self, column: str, name: str) -> str:
        """A missing column as the error names it: the field it holds and every header name
        read for it (``'customer_id' (field external_id: a column named 'customer_id' or
        'external_id')``)."""
        if name.startswith("attribute."):
            return repr(column)
        accepted = " or ".join(repr(c) for c in (column, *self.mapping.aliases.get(name, ())))
        return f"{column!r} (field {name}: a column named {accepted})"

    def _read_header(self) -> None:
        mapping = self.mapping
        first = self._next_row()
        if first is None:
            raise MalformedFile(
                f"the file is empty; expected a header row with {mapping.external_id!r}", line=1
            )
        self.header = [name.strip() for name in first[1]]
        positions: dict[str, list[int]] = {}
        for position, name in enumerate(self.header):
            positions.setdefault(name.casefold(), []).append(position)

        wanted = [
            (name, self._present(name, column, positions))
            for name, column in mapping.fields().items()
        ]
        wanted += [("attribute." + column, column) for column in mapping.attributes]
        must_have = {mapping.external_id.casefold()} | {c.casefold() for c in mapping.required}
        missing = sorted(
            {(column, name) for name, column in wanted if column.casefold() in must_have}
            - {(column, name) for name, column in wanted if column.casefold() in positions},
        )
        if missing:
            plural = "s" if len(missing) > 1 else ""
            described = ", ".join(self._described(column, name) for column, name in missing)
            raise MalformedFile(
                f"missing column{plural} {described}; the header has "
                f"{', '.join(repr(c) for c in self.header)}. Rename the column{plural} in the "
                f"file or map another one with --map {missing[0][1]}=COLUMN",
                line=1,
                column=missing[0][0],
            )
        ignored = []
        used: set[int] = set()
        for name, column in wanted:
            found = positions.get(column.casefold())
            if found is None:
                ignored.append(name)
                continue
            if len(found) > 1:
                raise MalformedFile(
                    f"the header names {column!r} {len(found)} times; rename the duplicates",
                    line=1,
                    column=column,
                )
            used.add(found[0])
            if name.startswith("attribute."):
                self._attribute_index.append((self.header[found[0]], found[0]))
            else:
                self._index[name] = found[0]
        self.ignored_fields = tuple(ignored)
        self.unused_columns = tuple(c for i, c in enumerate(self.header) if i not in used)

    def customers(self) -> Iterator[ImportedCustomer]:
        """Parse the remaining rows, one customer each, raising :class:`MalformedFile` at the
        first bad row."""
        width = len(self.header)
        while (record := self._next_row()) is not None:
            line, row = record
            if len(row) != width:
                raise self._ragged(row, line=line)
            yield self._customer(row, line=line)

    def _ragged(self, row: list[str], *, line: int) -> MalformedFile:
        width = len(self.header)
        if len(row) < width:
            return MalformedFile(
                f"the row has {len(row)} fields but the header has {width}; the row ends "
                f"before this column (a missing field or a stray line break?)",
                line=line,
                column=self.header[len(row)],
            )
        return MalformedFile(
            f"the row has {len(row)} fields but the header has {width}; quote values that "
            f"contain {self.delimiter!r}",
            line=line,
            column=None,
        )

    def _customer(self, row: list[str], *, line: int) -> ImportedCustomer:
        index = self._index

        def text(name: str) -> str | None:
            position = index.get(name)
            if position is None:
                return None
            value = row[position].strip()
            if not value:
                return None
            limit = MAX_LENGTHS[name]
            if len(value) > limit:
                raise MalformedFile(
                    f"{len(value)} characters is too long for {name} (at most {limit})",
                    line=line,
                    column=self.header[position],
                )
            return value

        def number(name: str) -> float | None:
            position = index.get(name)
            if position is None or not row[position].strip():
                return None
            value = row[position].strip()
            low, high = NUMBER_RANGES[name]
            try:
                parsed = float(value)
            except ValueError:
                parsed = math.nan
            if not math.isfinite(parsed) or not low <= parsed <= high:
                raise MalformedFile(
                    f"{value!r} is not a {name}; use a decimal number from {low:g} to {high:g} "
                    "with a dot (48.8566), or leave it empty",
                    line=line,
                    column=self.header[position],
                )
            return parsed

        external_id = text("external_id")
        if external_id is None:
            raise MalformedFile(
                "the external id is empty; every row needs one",
                line=line,
                column=self.header[index["external_id"]],
            )
        problem = customer_number_refusal(external_id)
        if problem is not None:
            raise MalformedFile(problem, line=line, column=self.header[index["external_id"]])
        email = text("email")
        if email is not None and "@" not in email:
            raise MalformedFile(
                f"{email!r} is not an email address (no '@'); correct it or leave it empty",
                line=line,
                column=self.header[index["email"]],
            )
        phone = text("phone")
        if phone is not None:
            try:
                phone = canonical_phone(phone)
            except ValueError as problem:
                raise MalformedFile(
                    f"{phone!r} is no phone number Rapport can keep. {problem}; correct it or "
                    "leave it empty",
                    line=line,
                    column=self.header[index["phone"]],
                ) from None
        time_zone = text("time_zone")
        if time_zone is not None and (zone := time_zone_problem(time_zone)) is not None:
            raise MalformedFile(
                f"{zone}, or leave it empty",
                line=line,
                column=self.header[index["time_zone"]],
            )
        consents: dict[str, bool] = {}
        for purpose in CONSENT_PURPOSES:
            position = index.get(CONSENT_PREFIX + purpose)
            if position is None:
                continue
            try:
                granted = consent_choice(row[position])
            except ValueError:
                raise MalformedFile(
                    f"{row[position].strip()!r} is not a consent choice for {purpose}; use one "
                    f"of {consent_choices_hint()}, or leave it empty when no choice was made",
                    line=line,
                    column=self.header[position],
                ) from None
            if granted is not None:  # no choice recorded: has_consent() reads that as "no"
                consents[purpose] = granted
        for purpose in self.mapping.granted_consents:
            consents.setdefault(purpose, True)
        loyalty_card = text("loyalty_card")
        return ImportedCustomer(
            external_id=external_id,
            email=email,
            phone=phone,
            first_name=text("first_name"),
            last_name=text("last_name"),
            locale=text("locale") or self.mapping.default_locale,
            home_city=text("city"),
            time_zone=time_zone,
            home_latitude=number("latitude"),
            home_longitude=number("longitude"),
            consents=consents,
            identities={"loyalty_card": loyalty_card} if loyalty_card else {},
            attributes={
                name: row[position].strip()
                for name, position in self._attribute_index
                if row[position].strip()
            },
            line=line,
        )


def read_customers(
    path: Path,
    mapping: ColumnMapping,
    *,
    encoding: str = "utf-8-sig",
    delimiter: str = ",",
) -> Iterator[ImportedCustomer]:
    """Stream the customers of a CSV, gzip or zip file, one per data row (duplicates too),
    raising :class:`MalformedFile` at the first problem."""
    with CustomerCsv(path, mapping, encoding=encoding, delimiter=delimiter) as source:
        yield from source.customers()


@dataclass(frozen=True)
class FileCheck:
    """A file that parsed from end to end: its data rows and how its columns were used."""

    rows: int
    ignored_fields: tuple[str, ...]
    unused_columns: tuple[str, ...]


def check_file(
    path: Path,
    mapping: ColumnMapping,
    *,
    encoding: str = "utf-8-sig",
    delimiter: str = ",",
    progress: Progress | None = None,
) -> FileCheck:
    """Parse the whole file without keeping it, raising :class:`MalformedFile` at the first
    problem."""
    report = progress or (lambda _phase, _done, _total: None)
    size = path.stat().st_size
    report("check", 0, size)
    rows = 0
    with CustomerCsv(path, mapping, encoding=encoding, delimiter=delimiter) as source:
        for _ in source.customers():
            rows += 1
            if rows % PROGRESS_EVERY_ROWS == 0:
                report("check", min(source.position(), size), size)
    report("check", size, size)
    return FileCheck(
        rows=rows, ignored_fields=source.ignored_fields, unused_columns=source.unused_columns
    )


def import_customers_file(
    db: Session,
    path: Path,
    mapping: ColumnMapping,
    progress: Progress | None = None,
    *,
    encoding: str = "utf-8-sig",
    delimiter: str = ",",
    batch_size: int = BATCH_SIZE,
) -> ImportSummary:
    """Check the whole file, then load it in batches through
    :func:`rapport.customers.import_batch.import_customers`. A malformed file raises
    :class:`MalformedFile` before anything is written; customers already present (by external
    id) are left as they are, so running the same import again adds nothing."""
    report = progress or (lambda _phase, _done, _total: None)
    checked = check_file(path, mapping, encoding=encoding, delimiter=delimiter, progress=progress)
    total = checked.rows
    seen: set[str] = set()
    read = added = duplicates = erased = 0
    batch: list[ImportedCustomer] = []
    phones_left_out: list[str] = []
    emails_left_out: list[str] = []

    def flush() -> None:
        nonlocal added, erased
        if batch:
            outcome = load_customers(
                db, customers=batch, consent_source=import_consent_source(path)
            )
            added += outcome.added
            erased += outcome.erased
            phones_left_out.extend(
                _left_out(c, "phone", mapping.phone) for c in outcome.phones_left_out
            )
            emails_left_out.extend(
                _left_out(c, "email", mapping.email) for c in outcome.emails_left_out
            )
            batch.clear()
        report("import", read, total)

    report("import", 0, total)
    for customer in read_customers(path, mapping, encoding=encoding, delimiter=delimiter):
        read += 1
        if customer.external_id in seen:
            duplicates += 1  # first row wins: a later row cannot change a committed batch
        else:
            seen.add(customer.external_id)
            batch.append(customer)
        if len(batch) >= batch_size:
            flush()
    flush()
    return ImportSummary(
        read=read,
        added=added,
        skipped_existing=read - duplicates - added - erased,
        duplicates_in_file=duplicates,
        skipped_erased=erased,
        phones_left_out=tuple(phones_left_out),
        emails_left_out=tuple(emails_left_out),
        ignored_fields=checked.ignored_fields,
        unused_columns=checked.unused_columns,
    )


def _left_out(customer: ImportedCustomer, kind: str, column: str | None) -> str:
    """Why ``customer`` was imported without its ``kind`` (``phone``, ``email``), naming its
    line and column: another customer holds the value."""
    value = customer.phone if kind == "phone" else canonical_email(customer.email or "")
    return MalformedFile(
        f"{value!r} is another customer's {kind}; {customer.external_id} was imported "
        "without it (merge the two if they are one person)",
        line=customer.line,
        column=column,
    ).detail
