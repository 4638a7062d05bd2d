"""Customer references: every endpoint that names a customer takes either Rapport's id
(``cus_…``) or the shop's own customer number (its ``external_id``), resolved here to
Rapport's id in one way.

A Rapport id that exists wins (a shop's number could look like one); otherwise the shop's
number, held as an ``external_id`` identity or in ``Customer.external_id``. A merged profile
resolves to the profile it went into. An erased one's Rapport id answers 404 "was erased"
on every endpoint (reads, commands, export and a second erasure alike), so none answers for
an erased person as if they were an empty live one; their external id went with the rest of
their personal data, so it answers "No customer". Routers declare :data:`CustomerRefPath`
or :data:`CustomerRefQuery` (validation and the OpenAPI description) and call
:func:`resolve_customer_ref` after the key check, so an unauthorised caller cannot learn
which numbers exist.

A money command (earn, redeem, adjust, reverse) resolves with ``lock=True``: the profile it
resolved is held ``FOR KEY SHARE`` until the command commits, and a merge takes the profile
``FOR UPDATE`` before it moves the points, so a command runs wholly before a merge (its points
move with the merge) or wholly after it (on the survivor), never between the two.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.customers.models import Customer, Identity
from rapport.platform.errors import NotFound
from rapport.platform.identity import normalise_identity

# As long as the longest of the two: Rapport's ids are 40 characters at most, a shop's
# external id 100 (the column).
CUSTOMER_REF_MAX_LENGTH = 100

CUSTOMER_REF_DESCRIPTION = (
    "The customer: Rapport's id (`cus_…`) or the shop's own customer number (its "
    "`external_id`). A Rapport id that exists wins; a merged profile answers as the one it "
    "went into. Answers always give Rapport's `customer_id`."
)

CustomerRefPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=CUSTOMER_REF_MAX_LENGTH,
        description=CUSTOMER_REF_DESCRIPTION,
        examples=["cus_01JF3ZQ8W7K2", "C-10442"],
    ),
]
CustomerRefQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=CUSTOMER_REF_MAX_LENGTH,
        description=CUSTOMER_REF_DESCRIPTION,
        examples=["cus_01JF3ZQ8W7K2", "C-10442"],
    ),
]

# Merges chain at most a few deep (each merge moves everything to the survivor).
_MERGE_HOPS = 8


def _survivor(db: Session, customer: Customer) -> str:
    for _ in range(_MERGE_HOPS):
        if customer.status != "merged" or not customer.merged_into:
            break
        following = db.get(Customer, customer.merged_into)
        if following is None:
            break
        customer = following
    return customer.customer_id


def find_customer_ref(db: Session, *, ref: str, follow_merges: bool = True) -> str | None:
    """Rapport's customer id for ``ref`` (Rapport's id or the shop's external id), or
    ``None`` when neither names a customer. ``follow_merges=False`` keeps a merged
    profile's own id (a merge names the profiles themselves)."""
    customer = db.get(Customer, ref) if len(ref) <= 40 else None
    if customer is not None:
        return _survivor(db, customer) if follow_merges else customer.customer_id
    normal = normalise_identity("external_id", ref)
    if not normal:
        return None
    owner = db.scalar(
        select(Identity.customer_id)
        .where(Identity.kind == "external_id", Identity.value == normal)
        .limit(1)
    )
    customer = (
        db.get(Customer, owner)
        if owner is not None
        else db.scalar(select(Customer).where(Customer.external_id == normal))
    )
    if customer is None:
        return None
    return _survivor(db, customer) if follow_merges else customer.customer_id


def active_customer_sql(parameter: str) -> str:
    """SQL that is true when the Rapport id in the statement's ``%(parameter)s`` names an
    active profile: not merged away, not erased. For a statement that takes a customer's id
    as given, not through :func:`resolve_customer_ref` (loyalty's one-statement earn and
    redeem), so that it declines a merged-away profile's id, which answers as the profile it
    went into, from the moment the merge commits."""
    # FOR KEY SHARE: the profile stays active until the statement's transaction commits (a
    # merge takes it FOR UPDATE before moving points); at REPEATABLE READ a profile a merge
    # changed after the snapshot fails the statement, which runs again and declines it.
    return (
        f"EXISTS (SELECT 1 FROM customers WHERE customers.customer_id = %({parameter})s"
        " AND customers.status = 'active' FOR KEY SHARE)"
    )


def was_erased(ref: str, *, field: str = "customer_id") -> NotFound:
    """What every endpoint answers for an erased customer: 404, naming the field."""
    return NotFound(
        f"Customer {ref!r} was erased: their personal data is gone and nothing more is "
        "recorded for them",
        field=field,
    )


def _locked_survivor(db: Session, customer_id: str) -> tuple[str, str | None]:
    """Lock the profile ``customer_id`` ``FOR KEY SHARE`` (until the transaction ends) and
    follow its merges, locking each one it reaches: the id of the profile that is locked and
    not merged away, and its status. A merge waiting for the lock runs after the caller's
    transaction; one that committed meanwhile is read here, the lock reading the newest row."""
    status: str | None = None
    for _ in range(_MERGE_HOPS):
        row = db.execute(
            select(Customer.status, Customer.merged_into)
            .where(Customer.customer_id == customer_id)
            .with_for_update(key_share=True)
        ).first()
        if row is None:
            return customer_id, None
        status, merged_into = row
        if status != "merged" or not merged_into:
            break
        customer_id = merged_into
    return customer_id, status


def resolve_customer_ref(
    db: Session,
    *,
    ref: str,
    field: str = "customer_id",
    follow_merges: bool = True,
    lock: bool = False,
) -> str:
    """Rapport's customer id for ``ref``; 404 naming ``field`` (and both accepted forms)
    when it names no customer, and 404 "was erased" when it names an erased one.
    ``lock=True`` (a money command) holds the profile resolved ``FOR KEY SHARE`` until the
    caller's transaction ends, re-resolved once locked, so that no merge commits between the
    resolution and the command's writes (the module's docstring)."""
    found = find_customer_ref(db, ref=ref, follow_merges=follow_merges)
    if found is None:
        raise NotFound(
            f"No customer {ref!r}: give Rapport's customer id (cus_…) or the shop's own "
            "customer number (external_id)",
            field=field,
        )
    if lock:
        found, status = _locked_survivor(db, found)
    else:
        customer = db.get(Customer, found)
        status = None if customer is None else customer.status
    if status == "erased":
        raise was_erased(ref, field=field)
    return found


def resolve_optional_customer_ref(
    db: Session, *, ref: str | None, field: str = "customer_id"
) -> str | None:
    """:func:`resolve_customer_ref` for an optional field: ``None`` stays ``None``."""
    return None if ref is None else resolve_customer_ref(db, ref=ref, field=field)
