"""The experience pages in headless Chromium: the CX dashboard, moderation and tickets."""

from __future__ import annotations

from rapport.feedback import service
from rapport.feedback.schemas import ResponseIn, ReviewIn, SurveyIn, TargetIn, TicketIn
from rapport.loyalty import service as loyalty
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as
from tests.feedback.factories import in_catalogue, in_stores, make_customer

PASSWORD = "correct horse battery"


def test_dashboard_moderation_and_ticket_queue(page, live_server) -> None:
    # given answers, a target missed, a held review and two tickets
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="cx@example.com", password=PASSWORD)
        customer, _ = make_customer(db)
        service.open_ticket(
            db,
            ticket=TicketIn(
                customer_id=customer, kind="delivery_problem", channel="email", subject="Lost"
            ),
        )
        service.save_survey(
            db,
            survey=SurveyIn(survey_id="nps", name="NPS", kind="nps", trigger="manual"),
        )
        for score, store in [(10, "st-1"), (9, "st-1"), (3, "st-2"), (8, "st-2")]:
            service.record_response(
                db,
                response=ResponseIn(
                    survey_id="nps", score=score, store_id=store, comment="Late delivery"
                ),
            )
        in_stores(db, "st-2")
        service.set_target(
            db,
            target=TargetIn(
                kind="nps", scope="store", scope_value="st-2", target=0, min_responses=2
            ),
        )
        in_catalogue(db, "SKU-1")
        service.submit_review(
            db, review=ReviewIn(customer_id="cus_ghost", sku="SKU-1", rating=5, text="Fantastic")
        )
    sign_in_as(page, live_server.base_url, "cx@example.com", PASSWORD)
    # when the experience dashboard opens
    page.goto(f"{live_server.base_url}/admin/feedback")
    # then NPS is 25 (2 promoters, 1 detractor of 4) with its interval and per-store figures
    assert page.get_by_test_id("value-nps").inner_text() == "25.0"
    # (the adjusted Wald interval: p+ = 2.75/7, p- = 1.75/7)
    assert page.get_by_test_id("interval-nps").inner_text() == "-44.2 to 72.7"
    rows = page.get_by_test_id("breakdown").locator("tbody tr").all_inner_texts()
    assert [row.split("\t")[:4] for row in rows] == [
        ["st-1", "100.0", "-24.4 to 100.0", "2"],
        ["st-2", "-50.0", "-79.4 to 39.4", "2"],
    ]
    assert page.get_by_test_id("below-target").inner_text() == "below target"
    themes = page.get_by_test_id("themes").locator("tbody tr").all_inner_texts()
    assert [[row.split("\t")[0], row.split("\t")[2]] for row in themes] == [
        ["delivery (en)", "4"],
        ["late (en)", "4"],
    ]
    page.wait_for_function("() => Chart.getChart('trend-nps') !== undefined")
    assert page.evaluate("() => Chart.getChart('trend-nps').data.datasets[0].data.at(-1)") == 25
    # (the detractor's answer opened a ticket too)
    # when the held review is published from the moderation queue
    page.get_by_role("navigation", name="Experience pages").get_by_role(
        "link", name="Review moderation"
    ).click()
    queue = page.get_by_test_id("moderation-queue")
    assert "The reviewer is not a known customer" in queue.inner_text()
    queue.get_by_role("button", name="Publish").click()
    assert page.get_by_role("status").inner_text().endswith("published")
    assert page.get_by_test_id("moderation-queue").inner_text().endswith("Nothing to moderate.")
    # when the ticket queue opens: equal priorities, the one due first comes first
    page.get_by_role("navigation", name="Experience pages").get_by_role(
        "link", name="Tickets"
    ).click()
    queue = page.get_by_test_id("ticket-queue")
    subjects = queue.locator("tbody tr td:nth-child(2) strong").all_inner_texts()
    assert subjects == ["Lost", "NPS 3 from NPS"]
    first = queue.locator("tbody tr").first
    assert first.get_by_test_id("ticket-customer").inner_text().startswith("Feedback Number")
    assert "due in 24.0 h" in first.inner_text() or "due in 23.9 h" in first.inner_text()
    # and resolving it from its page with apology points credits the member
    first.get_by_role("link", name="Lost").click()
    page.get_by_label("Reply and resolve").fill("Reshipped")
    page.get_by_label("Apology points").fill("150")
    page.get_by_role("button", name="Resolve ticket").click()
    assert page.get_by_role("status").inner_text().endswith("with 150 apology points")
    assert "Reshipped" in page.get_by_test_id("ticket-resolution").inner_text()
    with open_session(live_server.database_url) as db:
        assert loyalty.balance(db, customer_id=customer) == 150
