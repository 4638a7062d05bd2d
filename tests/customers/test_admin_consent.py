"""The customer page's consent panel over HTTP with a real sign-in: each purpose with its
choice, source and time, and a form that grants or withdraws the one purpose it names (a
phone call: "stop emailing me"), recorded through the consent verb as from the admin, with
the channel the customer used; nothing else changes. An erased customer has no form. Every
time on the page, the timeline's included, is shown as the admin pages show times."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.models import Consent, ConsentChange
from rapport.events import service as events
from rapport.events.models import Event
from rapport.flows import privacy
from rapport.loyalty.events import MembershipCancelled
from tests.platform.admin_forms import ADMIN_EMAIL, page_form, post_form, said_after, typed

OTHERS = ("analytics", "personalization", "marketing_push")


def _customer(db: Session) -> str:
    customer_id = customers.identify_customer(
        db, identities={"email": "greta@example.org"}, profile={"first_name": "Greta"}
    ).customer_id
    for purpose in ("marketing_email", *OTHERS):
        customers.set_consent(
            db, customer_id=customer_id, purpose=purpose, granted=True, source="checkout"
        )
    return customer_id


def _choices(db: Session, customer_id: str) -> dict[str, tuple[bool, str]]:
    db.expire_all()
    return {
        c.purpose: (c.granted, c.source)
        for c in db.scalars(select(Consent).where(Consent.customer_id == customer_id))
    }


def _history(db: Session, customer_id: str, purpose: str) -> list[tuple[bool, str]]:
    db.expire_all()
    return [
        (c.granted, c.source)
        for c in db.scalars(
            select(ConsentChange)
            .where(ConsentChange.customer_id == customer_id, ConsentChange.purpose == purpose)
            .order_by(ConsentChange.id)
        )
    ]


def _consent_form(admin: TestClient, customer_id: str) -> list[tuple[str, str]]:
    path = f"/admin/customers/{customer_id}"
    return page_form(admin.get(path).text, action=f"{path}/consent")


def test_staff_withdraw_one_purpose_the_customer_asked_about_and_nothing_else(
    admin: TestClient, db: Session
) -> None:
    customer_id = _customer(db)
    before = _choices(db, customer_id)
    # given the customer page's consent form, when staff record a phone call's withdrawal
    fields = typed(_consent_form(admin, customer_id), "purpose", "marketing_email")
    answer = post_form(
        admin, f"/admin/customers/{customer_id}/consent", [*fields, ("choice", "withdraw")]
    )

    # then the page says what was recorded
    assert answer.status_code == 303
    assert said_after(admin, answer) == (
        f"Marketing email: withdrawn, recorded as from admin:{ADMIN_EMAIL}"
    )
    # and only that purpose changed, with the admin as its source, in the history too
    after = _choices(db, customer_id)
    assert after["marketing_email"] == (False, f"admin:{ADMIN_EMAIL}")
    assert {p: after[p] for p in OTHERS} == {p: before[p] for p in OTHERS}
    assert "location" not in after
    assert _history(db, customer_id, "marketing_email") == [
        (True, "checkout"),
        (False, f"admin:{ADMIN_EMAIL}"),
    ]
    # and the event says the customer told us on the phone
    logged = db.scalars(
        select(Event).where(Event.customer_id == customer_id, Event.type == "consent_changed")
    ).all()
    assert [(e.channel, e.properties["granted"]) for e in logged][-1] == ("call_center", False)
    # and the same form sent again changes nothing, and says so
    again = post_form(
        admin, f"/admin/customers/{customer_id}/consent", [*fields, ("choice", "withdraw")]
    )
    assert said_after(admin, again) == (
        f"Marketing email: withdrawn already, as from admin:{ADMIN_EMAIL}: nothing changed"
    )
    assert len(_history(db, customer_id, "marketing_email")) == 2
    # and the gate no longer lets email marketing reach them
    assert not customers.may_contact(db, customer_id=customer_id, purpose="marketing_email")
    # and the panel shows the new choice, its source and time
    page = admin.get(f"/admin/customers/{customer_id}").text
    row = re.search(r'<tr data-purpose="marketing_email">(.*?)</tr>', page, re.DOTALL)
    assert row is not None
    assert "refused" in row.group(1)
    assert f"admin:{ADMIN_EMAIL}" in row.group(1)
    assert re.search(r"\d{1,2} \w{3} \d{4}, \d{2}:\d{2} UTC", row.group(1))


def test_staff_grant_a_purpose_never_asked_told_in_a_store(admin: TestClient, db: Session) -> None:
    customer_id = _customer(db)
    fields = typed(_consent_form(admin, customer_id), "purpose", "location")
    fields = typed(fields, "told_by", "store")
    answer = post_form(
        admin, f"/admin/customers/{customer_id}/consent", [*fields, ("choice", "grant")]
    )

    assert answer.status_code == 303
    assert _choices(db, customer_id)["location"] == (True, f"admin:{ADMIN_EMAIL}")
    logged = db.scalars(
        select(Event).where(Event.customer_id == customer_id, Event.type == "consent_changed")
    ).all()
    assert logged[-1].channel == "store"


def test_a_form_without_a_purpose_or_choice_is_refused_beside_them_and_changes_nothing(
    admin: TestClient, db: Session
) -> None:
    customer_id = _customer(db)
    before = _choices(db, customer_id)
    answer = post_form(
        admin, f"/admin/customers/{customer_id}/consent", _consent_form(admin, customer_id)
    )

    assert answer.status_code == 422
    assert 'data-field-error="purpose">Purpose: choose the purpose the customer asked about<' in (
        answer.text
    )
    assert 'data-field-error="choice">Choice: grant or withdraw<' in answer.text
    assert _choices(db, customer_id) == before

    # a purpose Rapport does not know is named as such
    fields = typed(_consent_form(admin, customer_id), "purpose", "everything")
    answer = post_form(
        admin, f"/admin/customers/{customer_id}/consent", [*fields, ("choice", "grant")]
    )
    assert answer.status_code == 422
    assert "Purpose: choose one of analytics, personalization" in answer.text
    assert _choices(db, customer_id) == before


def test_a_purpose_or_choice_sent_twice_is_refused_beside_it_and_records_nothing(
    admin: TestClient, db: Session
) -> None:
    customer_id = _customer(db)
    before = _choices(db, customer_id)
    fields = typed(_consent_form(admin, customer_id), "purpose", "marketing_push")
    sent = [*fields, ("purpose", "analytics"), ("choice", "withdraw"), ("choice", "grant")]
    answer = post_form(admin, f"/admin/customers/{customer_id}/consent", sent)

    assert answer.status_code == 422
    assert 'data-field-error="purpose">Purpose: sent more than once; choose one<' in answer.text
    assert 'data-field-error="choice">Choice: sent more than once; choose one<' in answer.text
    assert _choices(db, customer_id) == before
    assert _history(db, customer_id, "analytics") == [(True, "checkout")]


def test_the_form_needs_the_pages_csrf_token(admin: TestClient, db: Session) -> None:
    customer_id = _customer(db)
    fields = [
        (name, value)
        for name, value in typed(_consent_form(admin, customer_id), "purpose", "marketing_email")
        if name != "csrf_token"
    ]
    answer = post_form(
        admin, f"/admin/customers/{customer_id}/consent", [*fields, ("choice", "withdraw")]
    )

    assert answer.status_code in (400, 403)
    assert _choices(db, customer_id)["marketing_email"] == (True, "checkout")


def test_an_erased_customer_has_no_consent_form_and_a_sent_one_records_nothing(
    admin: TestClient, db: Session
) -> None:
    customer_id = _customer(db)
    fields = typed(_consent_form(admin, customer_id), "purpose", "marketing_email")
    privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo@example.com")
    erased = _choices(db, customer_id)  # every purpose refused, as erasure leaves them

    page = admin.get(f"/admin/customers/{customer_id}")
    assert page.status_code == 404
    assert 'data-testid="consent-form"' not in page.text
    answer = post_form(
        admin, f"/admin/customers/{customer_id}/consent", [*fields, ("choice", "grant")]
    )
    assert answer.status_code == 404
    assert "was erased" in answer.text
    assert _choices(db, customer_id) == erased


ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def test_every_time_on_the_customer_page_and_its_timeline_is_shown_as_a_moment(
    admin: TestClient, db: Session
) -> None:
    # given a customer whose timeline holds an event with a time among its properties
    customer_id = _customer(db)
    events.append_event(
        db,
        MembershipCancelled(plan_id="plus", benefits_until="2027-01-26T20:02:32+00:00"),
        channel="web",
        customer_id=customer_id,
        occurred_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    )
    db.commit()

    page = admin.get(f"/admin/customers/{customer_id}").text

    # then no time is written raw, and the property reads as the other times do
    assert ISO_TIME.findall(page) == []
    assert "benefits until: 26 Jan 2027, 20:02 UTC" in page
    assert "1 Dec 2026, 09:30 UTC" in page
