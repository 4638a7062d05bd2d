"""Erasing a customer from their admin page, in headless Chromium."""

from __future__ import annotations

from sqlalchemy import select

from rapport.customers import service as customers
from rapport.customers.models import Customer, PrivacyRequest
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as

PASSWORD = "correct horse battery"
EMAIL = "oriel.fairweather@example.org"


def test_erase_from_the_customer_page_after_typing_erase(page, live_server) -> None:  # type: ignore[no-untyped-def]
    # given a customer with a profile and a signed-in privacy officer on their page
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="dpo@example.com", password=PASSWORD)
        customer_id = customers.identify_customer(
            db,
            identities={"email": EMAIL, "external_id": "CRM-OF-3318"},
            profile={"first_name": "Oriel", "last_name": "Fairweather"},
        ).customer_id
    sign_in_as(page, live_server.base_url, "dpo@example.com", PASSWORD)
    page.goto(f"{live_server.base_url}/admin/customers/{customer_id}")
    assert page.get_by_test_id("customer-name").inner_text().strip() == "Oriel Fairweather"

    # when the form is sent without the confirmation word, then nothing is erased
    erasure = page.get_by_role("article").filter(has_text="Erase personal data")
    erasure.get_by_label("Reason").fill("DPO ticket 5120")
    erasure.get_by_label("Confirm erasure").fill("erase")
    erasure.get_by_role("button", name="Erase").click()
    # the message is beside the confirmation, the reason typed is kept
    erasure = page.get_by_role("article").filter(has_text="Erase personal data")
    assert erasure.locator('[data-field-error="confirm"]').inner_text() == (
        "Confirm erasure: type ERASE in capitals to erase this customer"
    )
    assert erasure.get_by_label("Reason").input_value() == "DPO ticket 5120"
    assert page.get_by_test_id("customer-name").inner_text().strip() == "Oriel Fairweather"

    # when ERASE is typed to confirm
    erasure.get_by_label("Reason").fill("DPO ticket 5120")
    erasure.get_by_label("Confirm erasure").fill("ERASE")
    erasure.get_by_role("button", name="Erase").click()

    # then the customers page says they were erased
    page.wait_for_url(f"{live_server.base_url}/admin/customers")
    assert page.get_by_role("status").inner_text() == f"Customer {customer_id} was erased."
    # and their page shows them as erased, with nothing of their profile
    answer = page.goto(f"{live_server.base_url}/admin/customers/{customer_id}")
    assert answer is not None
    assert answer.status == 404
    said = page.get_by_role("alert").inner_text()
    assert said.startswith(f"Customer {customer_id} was erased on ")
    assert said.endswith("; nothing personal is kept.")
    assert "Oriel" not in page.content()
    # and a lookup by their email or name finds nothing
    page.get_by_role("link", name="All customers").click()
    for query in (EMAIL, "Fairweather", "CRM-OF-3318"):
        page.get_by_label("Search customers").fill(query)
        page.get_by_role("button", name="Search").click()
        rows = page.get_by_test_id("customer-results").locator("tbody tr").all_inner_texts()
        assert rows == [f"Nobody matches “{query}”."], query
    # and the erasure is on record, asked by the signed-in officer with their reason
    with open_session(live_server.database_url) as db:
        assert db.get(Customer, customer_id).status == "erased"  # type: ignore[union-attr]
        request = db.scalars(select(PrivacyRequest).where(PrivacyRequest.kind == "erasure")).one()
        assert (request.requested_by, request.reason) == ("dpo@example.com", "DPO ticket 5120")
