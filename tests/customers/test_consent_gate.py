"""The outbound gate every producer of messages and personal uses asks: an existing, active
profile (merges followed), a granted purpose (no choice means no), and no identity of an
erased person."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rapport.customers import service as customers
from rapport.customers.models import Identity
from rapport.events.service import suppress_identities
from rapport.flows import privacy
from rapport.platform.errors import InvalidInput
from rapport.platform.identity import identity_digest


def _customer(db, email: str, **consents: bool) -> str:  # type: ignore[no-untyped-def]
    customer = customers.identify_customer(db, identities={"email": email})
    for purpose, granted in consents.items():
        customers.set_consent(
            db, customer_id=customer.customer_id, purpose=purpose, granted=granted, source="test"
        )
    return customer.customer_id


def test_only_a_granted_purpose_lets_a_customer_be_contacted(db) -> None:
    # given customers with no choice, a refusal, a grant, and a grant later withdrawn
    silent = _customer(db, "silent@example.com")
    refused = _customer(db, "refused@example.com", marketing_email=False)
    granted = _customer(db, "granted@example.com", marketing_email=True)
    withdrawn = _customer(db, "withdrawn@example.com", marketing_email=True)
    customers.set_consent(
        db, customer_id=withdrawn, purpose="marketing_email", granted=False, source="unsubscribe"
    )
    everyone = [silent, refused, granted, withdrawn, "cus_unknown"]
    # then only the grant passes for marketing email, and nobody for push
    assert customers.contactable(db, customer_ids=everyone, purpose="marketing_email") == {
        granted: granted
    }
    assert customers.contactable(db, customer_ids=everyone, purpose="marketing_push") == {}
    assert customers.may_contact(db, customer_id=granted, purpose="marketing_email")
    assert not customers.may_contact(db, customer_id=silent, purpose="marketing_email")
    # and service messages need no marketing consent, only a live, known profile
    assert set(customers.contactable(db, customer_ids=everyone, purpose="service")) == {
        silent,
        refused,
        granted,
        withdrawn,
    }


def test_an_erased_customer_is_never_contacted_whatever_they_granted(db) -> None:
    # given a customer who granted everything, then was erased
    cid = _customer(
        db, "erased@example.com", marketing_email=True, marketing_push=True, personalization=True
    )
    privacy.erase_customer(db, customer_id=cid, requested_by="dpo")
    # then no purpose lets anything reach them, not even a service message
    for purpose in customers.GATE_PURPOSES:
        assert not customers.may_contact(db, customer_id=cid, purpose=purpose), purpose


def test_a_merged_id_is_contacted_as_the_profile_it_was_merged_into(db) -> None:
    # given a profile merged into one that granted marketing email
    old = _customer(db, "old@example.com")
    survivor = _customer(db, "new@example.com", marketing_email=True)
    customers.merge_customers(
        db, source_customer_id=old, target_customer_id=survivor, reason="same", actor="test"
    )
    # then the old id maps to the survivor, and both ask once
    assert customers.contactable(db, customer_ids=[old, survivor], purpose="marketing_email") == {
        old: survivor,
        survivor: survivor,
    }


def test_a_profile_holding_an_erased_identity_is_not_contacted(db) -> None:
    # given a consenting customer who (from data older than the blocklist check) holds a
    # phone number an erased person had
    cid = _customer(db, "holder@example.com", marketing_email=True)
    db.add(
        Identity(
            customer_id=cid,
            kind="phone",
            value="+33600000001",
            is_unique=True,
            source="legacy",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    db.flush()
    suppress_identities(db, digests=[identity_digest("phone", "+33600000001")])
    # then the gate refuses them
    assert not customers.may_contact(db, customer_id=cid, purpose="marketing_email")
    assert not customers.may_contact(db, customer_id=cid, purpose="service")


def test_an_unknown_purpose_is_refused_naming_the_field(db) -> None:
    with pytest.raises(InvalidInput) as raised:
        customers.may_contact(db, customer_id="cus_x", purpose="telepathy")
    assert raised.value.field == "purpose"


def test_the_gate_answers_for_many_customers_at_once(db) -> None:
    # given 1,203 imported customers, every third one consenting (three of the gate's chunks)
    customers.import_customers(
        db,
        customers=[
            customers.ImportedCustomer(
                external_id=f"BULK-{n}",
                email=None,
                first_name=None,
                last_name=None,
                locale="en",
                home_city=None,
                home_latitude=None,
                home_longitude=None,
                consents={"marketing_push": n % 3 == 0},
            )
            for n in range(1203)
        ],
    )
    ids = customers.customer_ids_by_external_id(db, external_ids=[f"BULK-{n}" for n in range(1203)])
    # then the bulk answer is exactly the consenting ones
    allowed = customers.contactable(db, customer_ids=list(ids.values()), purpose="marketing_push")
    assert set(allowed) == {ids[f"BULK-{n}"] for n in range(0, 1203, 3)}
