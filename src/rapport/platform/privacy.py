"""The person a privacy request is about, as each domain's privacy handlers see them.

``rapport.flows.privacy`` gathers it once, before anything is erased, and hands it to every
domain's ``erase_customer_data`` and ``export_customer_data``: a domain can then find the
person's rows by their customer ids, and their data inside stored documents by the values
they were known by (those values are gone from the profile once the customers domain has
erased it).
"""

from __future__ import annotations

from dataclasses import dataclass


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
