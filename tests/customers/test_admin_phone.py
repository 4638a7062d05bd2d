"""The customer page's profile phone and the phone identity agree: a phone added as an identity
is the profile's contact phone when it had none (as identify does), and a profile holding only
the identity (a merge or an identity added before December 2026) says the number only
recognises them rather than showing no phone beside it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.models import Customer


def _profile_phone(html: str) -> str:
    found = re.search(r'data-testid="profile-phone">(.*?)</dd>', html, re.S)
    assert found is not None, "the profile has no phone row"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def test_a_phone_added_as_an_identity_is_the_profiles_contact_phone(
    admin: TestClient, db: Session
) -> None:
    # given a customer known by email only, who then gives a phone (POST …/identities)
    customer_id = customers.identify_customer(
        db, identities={"email": "ines.marlowe@example.org"}
    ).customer_id
    customers.add_identity(db, customer_id=customer_id, kind="phone", value="+33 6 99 88 77 66")

    # then the profile's contact phone is that number
    db.expire_all()
    stored = db.get(Customer, customer_id)
    assert stored is not None
    assert stored.phone == "+33699887766"
    # and the page shows it in the profile, as in the identities
    html = admin.get(f"/admin/customers/{customer_id}").text
    assert _profile_phone(html) == "+33699887766"


def test_a_phone_added_keeps_the_contact_phone_the_profile_has(db: Session) -> None:
    customer_id = customers.identify_customer(
        db, identities={"email": "ines.marlowe@example.org", "phone": "+33611223344"}
    ).customer_id
    customers.add_identity(db, customer_id=customer_id, kind="phone", value="+33699887766")

    db.expire_all()
    stored = db.get(Customer, customer_id)
    assert stored is not None
    assert stored.phone == "+33611223344"


def test_a_phone_identity_without_a_contact_phone_is_labelled_as_an_identity(
    admin: TestClient, db: Session
) -> None:
    # given a profile holding a phone identity but no contact phone (as one written before)
    customer_id = customers.identify_customer(
        db, identities={"email": "ines.marlowe@example.org", "phone": "+33699887766"}
    ).customer_id
    stored = db.get(Customer, customer_id)
    assert stored is not None
    stored.phone = None
    db.commit()

    html = admin.get(f"/admin/customers/{customer_id}").text

    # then the profile says there is no contact number and what the identity is
    assert _profile_phone(html).endswith(
        " no contact number: +33699887766 only recognises them (a phone identity, below)"
    )
