"""The suppression list: salted digests of erased people's identities, whose events are
refused from then on (the personal data itself is not kept)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.events.models import SuppressedIdentity
from rapport.platform import clock
from rapport.platform.db import upsert_rows

# The identities of a person that events name in their own words, checked at ingestion in an
# identify call's traits, any call's context.traits and any event's properties (an erased
# person's email back in a newsletter signup's properties is refused). Personal keys to the
# scrub too (events.log.PERSONAL_KEYS).
IDENTIFYING_KEYS = ("email", "phone")


def suppress_identities(db: Session, *, digests: list[str]) -> None:
    """Refuse future events naming these identity digests (see ``identity_digest``). Adds to
    the caller's transaction; the erasure that calls this commits."""
    now = clock.now()
    rows = [{"digest": digest, "suppressed_at": now} for digest in sorted(set(digests))]
    upsert_rows(db, SuppressedIdentity.__table__, rows, key_columns=["digest"])


def suppressed(db: Session, *, digests: Iterable[str]) -> set[str]:
    """The digests among ``digests`` that belong to erased people (one query)."""
    wanted = sorted(set(digests))
    if not wanted:
        return set()
    return set(
        db.scalars(select(SuppressedIdentity.digest).where(SuppressedIdentity.digest.in_(wanted)))
    )
