"""Customer endpoints: profiles (the 360), identities and merges, consent, preferences,
privacy rights."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from rapport.customers import service
from rapport.customers.models import CustomerGroup
from rapport.customers.schemas import (
    ConsentChangeOut,
    ConsentIn,
    ConsentOut,
    CustomerIn,
    ErasureIn,
    IdentifyIn,
    IdentityIn,
    IdentityKind,
    IdentityOut,
    MergeIn,
    MergeOut,
    PreferenceOut,
    PreferencesIn,
    PrivacyRequestOut,
    ProfileOut,
    Purpose,
    TimelineEventOut,
    TraitsOut,
)
from rapport.customers.traits import rfm_scores, trait_summary
from rapport.flows import preferences, privacy
from rapport.flows.currency import shown_currency
from rapport.platform import clock
from rapport.platform.auth import AdminKey, ReadKey, WriteKey
from rapport.platform.db import DbSession, WritingDbSession
from rapport.platform.errors import NotFound
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.middleware import is_head
from rapport.platform.schemas import Page, PageCursor, page_of

router = APIRouter(prefix="/v1/customers", tags=["customers"])

# Rapport's id or the shop's own (external_id): see docs/api.md, "Customer references".
CustomerIdPath = service.CustomerRefPath


def _profile(db: Session, customer_id: str) -> ProfileOut:
    customer = service.get_customer(db, customer_id=customer_id)
    if customer is None or customer.status != "active":
        raise NotFound(f"No customer {customer_id!r}", field="customer_id")
    cid = customer.customer_id
    traits_row = service.get_traits(db, customer_id=cid)
    traits = None
    if traits_row is not None:
        summary: dict[str, Any] = trait_summary(traits_row, now=clock.now())
        summary["rfm"] = rfm_scores(
            traits_row, service.rfm_boundaries(db), now=clock.now(), currency=shown_currency(db)
        )
        traits = TraitsOut(**summary)
    return ProfileOut(
        **{
            name: getattr(customer, name)
            for name in ProfileOut.model_fields
            if hasattr(customer, name)
        },
        consents=[ConsentOut.model_validate(c) for c in service.get_consents(db, customer_id=cid)],
        identities=[
            IdentityOut.model_validate(i) for i in service.get_identities(db, customer_id=cid)
        ],
        preferences=[
            PreferenceOut.model_validate(p) for p in service.get_preferences(db, customer_id=cid)
        ],
        traits=traits,
        group=db.get(CustomerGroup, customer.group_id) if customer.group_id else None,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProfileOut)
def create_customer(
    body: CustomerIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Register a customer with their consent choices."""
    return run_idempotent(
        db,
        scope=f"customers.create:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: service.create_customer(db, customer=body, before_commit=hook),
        render=lambda customer: _profile(db, customer.customer_id).model_dump(mode="json"),
    )


@router.get("/lookup")
def lookup_customer(
    kind: IdentityKind,
    value: Annotated[str, Query(min_length=1, max_length=320)],
    db: DbSession,
    _key: ReadKey,
) -> ProfileOut:
    """Find a customer by one of their identities (email, phone, loyalty card, ...)."""
    customer = service.find_customer(db, kind=kind, value=value)
    if customer is None or customer.status != "active":
        raise NotFound(f"No customer with {kind} {value!r}", field="value")
    return _profile(db, customer.customer_id)


@router.post("/identify", response_model=ProfileOut)
def identify_customer(
    body: IdentifyIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Find or create the one customer these identities name (merging profiles that share a
    unique identity)."""
    profile = {"first_name": body.first_name, "last_name": body.last_name}
    return run_idempotent(
        db,
        scope=f"customers.identify:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.identify_customer(
            db,
            identities={str(k): v for k, v in body.identities.items()},
            profile=profile,
            source="api",
            channel=body.channel,
            before_commit=hook,
        ),
        render=lambda customer: _profile(db, customer.customer_id).model_dump(mode="json"),
    )


@router.post("/merge", response_model=MergeOut)
def merge_customers(
    body: MergeIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Merge one profile into another, with an audit record."""
    # A merge names the profiles themselves: a merged one stays itself (and is refused).
    return run_idempotent(
        db,
        scope=f"customers.merge:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.merge_customers(
            db,
            source_customer_id=service.resolve_customer_ref(
                db, ref=body.source_customer_id, field="source_customer_id", follow_merges=False
            ),
            target_customer_id=service.resolve_customer_ref(
                db, ref=body.target_customer_id, field="target_customer_id", follow_merges=False
            ),
            reason=body.reason,
            actor=f"api key {key.name}",
            before_commit=hook,
        ),
        render=lambda merge: MergeOut.model_validate(merge).model_dump(mode="json"),
    )


@router.get("/{customer_id}")
def get_customer(customer_id: CustomerIdPath, db: DbSession, _key: ReadKey) -> ProfileOut:
    """The customer 360: profile, identities, consents, preferences and traits. A merged
    profile's id answers with the surviving profile."""
    return _profile(db, service.resolve_customer_ref(db, ref=customer_id))


@router.get("/{customer_id}/timeline")
def get_timeline(
    customer_id: CustomerIdPath,
    db: DbSession,
    _key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        int | None,
        Query(ge=1, le=2**63 - 1, description="position of the oldest event seen"),
    ] = None,
) -> list[TimelineEventOut]:
    """The customer's events, newest first."""
    profile = _profile(db, service.resolve_customer_ref(db, ref=customer_id))
    events = service.get_timeline(
        db, customer_id=profile.customer_id, limit=limit, before_position=before
    )
    return [TimelineEventOut.model_validate(e) for e in events]


@router.post(
    "/{customer_id}/identities", status_code=status.HTTP_201_CREATED, response_model=IdentityOut
)
def add_identity(
    customer_id: CustomerIdPath,
    body: IdentityIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Add a way to recognise the customer."""
    return run_idempotent(
        db,
        scope=f"customers.identity:{key.id}",
        key=idempotency_key,
        request_body={"customer_id": customer_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: service.add_identity(
            db,
            customer_id=service.resolve_customer_ref(db, ref=customer_id),
            kind=body.kind,
            value=body.value,
            before_commit=hook,
        ),
        render=lambda identity: IdentityOut.model_validate(identity).model_dump(mode="json"),
    )


@router.put("/{customer_id}/consents/{purpose}")
def set_consent(
    customer_id: CustomerIdPath,
    purpose: Annotated[Purpose, Path()],
    body: ConsentIn,
    db: DbSession,
    _key: WriteKey,
) -> ConsentOut:
    """Record the customer's choice for one purpose."""
    consent = service.set_consent(
        db,
        customer_id=service.resolve_customer_ref(db, ref=customer_id),
        purpose=purpose,
        granted=body.granted,
        source=body.source,
    )
    return ConsentOut.model_validate(consent)


@router.get("/{customer_id}/consents/history")
def get_consent_history(
    customer_id: CustomerIdPath,
    db: DbSession,
    _key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: PageCursor = None,
) -> Page[ConsentChangeOut]:
    """The customer's consent decisions, oldest first, a page at a time."""
    profile = _profile(db, service.resolve_customer_ref(db, ref=customer_id))
    found = service.consent_history(
        db, customer_id=profile.customer_id, limit=limit + 1, after=cursor
    )
    return page_of(
        found,
        limit=limit,
        item=ConsentChangeOut.model_validate,
        cursor=service.consent_cursor_of,
    )


@router.put("/{customer_id}/preferences")
def set_preferences(
    customer_id: CustomerIdPath, body: PreferencesIn, db: DbSession, _key: WriteKey
) -> list[PreferenceOut]:
    """Store preferences the customer shared (zero-party data); a field sent as ``null`` is
    forgotten. Answers the preferences stored by this call."""
    stored = preferences.share_preferences(
        db,
        customer_id=service.resolve_customer_ref(db, ref=customer_id),
        values=body.shared(),
        cleared=body.cleared(),
        source=body.source,
    )
    return [PreferenceOut.model_validate(p) for p in stored]


@router.get("/{customer_id}/export")
def export_customer(
    customer_id: CustomerIdPath,
    db: WritingDbSession,
    key: AdminKey,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Everything Rapport holds on the customer, from every domain, as one JSON document
    (right of access), sent with ``Cache-Control: no-store``."""
    # A person's whole file: no cache on the way (a proxy, the browser's) keeps a copy.
    response.headers["Cache-Control"] = "no-store"
    # Writing: every export is recorded with who asked for it; a HEAD (headers only, no
    # document handed out) records nothing.
    return privacy.export_customer(
        db,
        customer_id=service.resolve_customer_ref(db, ref=customer_id),
        requested_by=f"api key {key.name}",
        record=not is_head(request),
    )


@router.post("/{customer_id}/erase", response_model=PrivacyRequestOut)
def erase_customer(
    customer_id: CustomerIdPath,
    body: ErasureIn,
    db: DbSession,
    key: AdminKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Erase the customer's personal data in every domain (right to erasure); aggregates
    stay."""
    return run_idempotent(
        db,
        scope=f"customers.erase:{key.id}",
        key=idempotency_key,
        request_body={"customer_id": customer_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_200_OK,
        execute=lambda hook: privacy.erase_customer(
            db,
            customer_id=service.resolve_customer_ref(db, ref=customer_id),
            requested_by=body.requested_by,
            reason=body.reason,
            before_commit=hook,
        ),
        render=lambda request: PrivacyRequestOut.model_validate(request).model_dump(mode="json"),
    )
