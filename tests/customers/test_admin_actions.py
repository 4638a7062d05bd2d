"""The customer page's merge and erase forms over HTTP: a refusal comes back beside the field
it concerns, saying what to do, with what was typed kept, and nothing changes."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.models import Customer
from tests.platform.admin_forms import (
    page_form,
    post_form,
    typed,
)


def _customer(db: Session, email: str, first_name: str) -> str:
    return customers.identify_customer(
        db, identities={"email": email}, profile={"first_name": first_name}
    ).customer_id


def _error(html: str, field: str) -> str | None:
    found = re.search(rf'data-field-error="{field}">([^<]*)<', html)
    return found.group(1) if found else None


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("erase", "Confirm erasure: type ERASE in capitals to erase this customer"),
        ("", "Confirm erasure: type ERASE to erase this customer"),
    ],
)
def test_erase_without_the_confirmation_word_is_refused_beside_it_keeping_the_reason(
    admin: TestClient, db: Session, word: str, message: str
) -> None:
    customer_id = _customer(db, "oriel@example.org", "Oriel")
    path = f"/admin/customers/{customer_id}"
    action = f"{path}/erase"
    fields = page_form(admin.get(path).text, action=action)
    fields = typed(typed(fields, "reason", "DPO ticket 5120"), "confirm", word)

    answer = post_form(admin, action, fields)

    # the page comes back with the message beside the confirmation field, not in a banner
    assert answer.status_code == 422
    assert _error(answer.text, "confirm") == message
    assert 'data-testid="message"' not in answer.text
    form = answer.text[answer.text.index('data-testid="erase-form"') :]
    assert form.index('data-field-error="confirm"') < form.index("</form>")
    # the reason and the word typed are kept
    assert re.search(r'name="reason" type="text" value="DPO ticket 5120"', answer.text)
    assert re.search(rf'name="confirm" type="text" value="{word}"', answer.text)
    # and nobody was erased
    db.expire_all()
    stored = db.get(Customer, customer_id)
    assert stored is not None
    assert stored.status == "active"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "cus_nobody",
            "Duplicate customer id: no customer has the id or customer number cus_nobody; "
            "paste the cus_… id or the shop&#39;s customer number",
        ),
        (
            "",
            "Duplicate customer id: paste the cus_… id or the shop&#39;s customer number of the "
            "profile to merge into this one",
        ),
        ("self", "Duplicate customer id: give another customer&#39;s id, not this one&#39;s"),
    ],
)
def test_a_refused_merge_is_said_beside_the_duplicate_id_keeping_what_was_typed(
    admin: TestClient, db: Session, source: str, message: str
) -> None:
    customer_id = _customer(db, "ann@example.org", "Ann")
    source = customer_id if source == "self" else source
    path = f"/admin/customers/{customer_id}"
    action = f"{path}/merge"
    fields = page_form(admin.get(path).text, action=action)
    fields = typed(typed(fields, "source_customer_id", source), "reason", "Same person, ticket 77")

    answer = post_form(admin, action, fields)

    assert answer.status_code == 422
    assert _error(answer.text, "source_customer_id") == message
    assert 'data-testid="message"' not in answer.text
    assert f'name="source_customer_id" type="text" value="{source}"' in answer.text
    assert 'value="Same person, ticket 77"' in answer.text
    assert customers.merge_history(db, customer_id=customer_id) == []


def test_join_dates_the_wrong_way_round_are_named_beside_the_later_one(admin: TestClient) -> None:
    page = admin.get("/admin/customers?joined_from=2026-12-01&joined_to=2026-01-01")
    assert page.status_code == 422
    assert "wrong way round" in (_error(page.text, "joined_to") or "")
    assert "Nobody matches" not in page.text  # no search ran
    assert 'value="2026-12-01"' in page.text  # what was typed stays
    assert (
        admin.get("/admin/customers?joined_from=2026-01-01&joined_to=2026-12-01").status_code == 200
    )


def test_the_merge_form_takes_the_shop_customer_number(admin: TestClient, db: Session) -> None:
    target = _customer(db, "ann@example.org", "Ann")
    duplicate = customers.identify_customer(
        db, identities={"email": "ann.b@example.org", "external_id": "C0000015"}
    ).customer_id
    path = f"/admin/customers/{target}"
    action = f"{path}/merge"
    fields = page_form(admin.get(path).text, action=action)
    answer = post_form(admin, action, typed(fields, "source_customer_id", "C0000015"))
    assert answer.status_code == 303, _error(answer.text, "source_customer_id")
    db.expire_all()
    assert [m.source_customer_id for m in customers.merge_history(db, customer_id=target)] == [
        duplicate
    ]
    # the same again: it was merged into this one already, and the form says so
    again = post_form(admin, action, typed(fields, "source_customer_id", duplicate))
    assert again.status_code == 422
    assert _error(again.text, "source_customer_id") == (
        f"Duplicate customer id: {duplicate} was already merged into {target}; nothing to merge"
    )


@pytest.mark.parametrize("query", ["consent=bogus", "purpose=bogus"])
def test_a_filter_the_customer_list_does_not_know_is_said_not_ignored(
    admin: TestClient, db: Session, query: str
) -> None:
    _customer(db, "listed@example.org", "Listed")
    page = admin.get(f"/admin/customers?{query}")
    assert page.status_code == 422
    assert "listed@example.org" not in page.text
    if query.startswith("consent"):
        assert "Unknown filter consent" in page.text
    else:
        assert "Not a consent purpose" in (_error(page.text, "purpose") or "")
