"""The admin page of a customer Rapport no longer holds says so plainly: erased on a day with
nothing personal kept, or no customer with that id; never a search's "correct the filters"."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from tests.customers.factories import erased_customer, says_erased


def test_an_erased_customers_page_says_when_they_were_erased_and_that_nothing_is_kept(
    admin: TestClient, db: Session
) -> None:
    # given a customer erased on 3 December 2026
    customer_id = erased_customer(db)

    # when their admin page is opened
    answer = admin.get(f"/admin/customers/{customer_id}")

    # then it says they were erased, when, and that nothing personal is kept
    assert answer.status_code == 404
    assert says_erased(answer.text, customer_id)
    # and not that filters nobody set are to be corrected
    assert "Correct the filters" not in answer.text


def test_an_unknown_customers_page_says_no_customer_has_the_id(admin: TestClient) -> None:
    answer = admin.get("/admin/customers/cus_nobody")

    assert answer.status_code == 404
    assert "No customer has the id cus_nobody." in answer.text
    assert "Correct the filters" not in answer.text


def test_gone_notice_says_nothing_of_an_active_customer_or_an_id_merged_into_one(
    db: Session,
) -> None:
    kept = customers.identify_customer(db, identities={"email": "ivy.kept@example.org"})
    merged = customers.identify_customer(db, identities={"email": "ivy.old@example.org"})
    customers.merge_customers(
        db,
        source_customer_id=merged.customer_id,
        target_customer_id=kept.customer_id,
        reason="same person",
        actor="agent@example.com",
    )

    assert customers.gone_notice(db, kept.customer_id) is None
    assert customers.gone_notice(db, merged.customer_id) is None
    assert customers.gone_notice(db, "cus_nobody") == "No customer has the id cus_nobody."
