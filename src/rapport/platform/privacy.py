"""The person a privacy request is about, as each domain's privacy handlers see them.

``rapport.flows.privacy`` gathers it once, before anything is erased, and hands it to every
domain's ``erase_customer_data`` and ``export_customer_data``: a domain can then find the
person's rows by their customer ids, and their data inside stored documents by the values
they were known by (those values are gone from the profile once the customers domain has
erased it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect


@dataclass(frozen=True)
class PrivacySubject:
    # The profile the request names (the survivor of any merges) ...
    customer_id: str
    # ... and it with every profile merged into it: rows anywhere may name any of them.
    customer_ids: tuple[str, ...]
    # (kind, value) of every identity the profiles had, as stored (normalised).
    identities: tuple[tuple[str, str], ...] = ()
    # Contact details and names from the profile: email, phone, first and last name, the
    # full name, the home city.
    details: tuple[str, ...] = ()

    def identity_values(self, *kinds: str) -> list[str]:
        return sorted({value for kind, value in self.identities if kind in kinds})

    @property
    def known_values(self) -> tuple[str, ...]:
        """Every value the person was known by (ids, identities, contact details, names)."""
        values = {*self.customer_ids, *(v for _, v in self.identities), *self.details}
        return tuple(sorted(v for v in values if v))

    @property
    def identifiers(self) -> tuple[str, ...]:
        """The values that name only this person (ids, email, phone, cards), not names: safe
        to search other documents for without catching other people's."""
        values = {*self.customer_ids, *(v for k, v in self.identities if k != "device_id")}
        return tuple(sorted(v for v in values if len(v) >= 5))


@dataclass(frozen=True)
class ExportedColumns:
    """How a privacy export shows the rows of one ``table``: each column is either in
    ``exported`` (under its own name, or the one ``renamed`` gives it) or in ``left_out`` with
    the reason it is not the person's data (an id internal to Rapport, another person's, one
    the export shows by nesting the row under its parent...). A test holds every column of
    every table a domain's privacy handlers cover to one or the other, so a column added
    later is not left out of the export without a decision."""

    table: str
    exported: tuple[str, ...]
    left_out: Mapping[str, str] = field(default_factory=dict)
    renamed: Mapping[str, str] = field(default_factory=dict)

    def row(self, row: Any) -> dict[str, Any]:
        """``row`` (an ORM object of the table's class, or a row selected from the table) as
        the export shows it: the exported columns, times in ISO 8601."""
        values = _column_values(row)
        return {self.renamed.get(name, name): _json_ready(values[name]) for name in self.exported}


def _column_values(row: Any) -> Mapping[str, Any]:
    mapping = getattr(row, "_mapping", None)
    if mapping is not None:
        return {str(key): value for key, value in mapping.items()}
    mapper = inspect(type(row))
    return {
        column.name: getattr(row, mapper.get_property_by_column(column).key)
        for column in mapper.columns
    }


def _json_ready(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value
