"""The recommendations pages in headless Chromium: the metrics chart, the preview with
explanations, and a merchandiser editing a rule end to end (added through the form with a
sample customer's before and after, served by the API, edited, refused inline, deleted)."""

from __future__ import annotations

from pathlib import Path

import httpx

from rapport.customers import service as customers
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.recommend import service
from rapport.recommend.models import MerchRule
from tests.conftest import sign_in_as

from .factories import NOW, seed_shop

PASSWORD = "correct horse battery"


def _served(base_url: str, key: str, customer_id: str) -> list[str]:
    answer = httpx.get(
        f"{base_url}/v1/recommendations",
        params={"placement": "home", "customer_id": customer_id},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.text
    return [item["sku"] for item in answer.json()["items"]]


def _skus(page, testid: str) -> list[str]:
    rows = page.get_by_test_id(testid).locator("tbody tr[data-sku]")
    return [rows.nth(i).get_attribute("data-sku") for i in range(rows.count())]


def test_a_merchandiser_edits_a_rule(page, live_server, tmp_path: Path) -> None:
    clock.set_clock(clock.FrozenClock(NOW))
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="merch@example.com", password=PASSWORD)
        ids = seed_shop(db)
        service.train_model(db, data_dir=tmp_path, trained_by="test")
        key = platform.create_api_key(db, name="shop", scopes=[platform.Scope("read")]).secret
    customer = ids["c2"]
    sign_in_as(page, live_server.base_url, "merch@example.com", PASSWORD)

    # the overview: the serving version (this small shop is too small to measure, which the
    # page says, with the default weights it serves, rather than drawing an empty chart),
    # the preview
    page.goto(f"{live_server.base_url}/admin/recommendations")
    assert "serving" in page.get_by_test_id("model-versions").inner_text()
    assert "No version could be measured yet" in page.get_by_test_id("no-metrics").inner_text()
    notice = page.get_by_test_id("not-measured").inner_text()
    assert "could not be measured on the history" in notice
    # the versions table fits its half-width card: every column in view, each id on one line
    fits = page.evaluate(
        """() => {
            const wrap = document.querySelector('[data-testid=model-versions] .table-wrap');
            const id = wrap.querySelector('td .nowrap');
            const line = parseFloat(getComputedStyle(id).lineHeight);
            return [wrap.scrollWidth - wrap.clientWidth, id.getBoundingClientRect().height / line];
        }"""
    )
    assert fits[0] <= 0
    assert fits[1] < 1.5
    preview = page.get_by_test_id("preview-form")
    preview.get_by_label("Customer id").fill(customer)
    preview.get_by_role("button", name="Preview").click()
    assert page.get_by_test_id("preview-personal").inner_text() == "personal to this customer"
    assert "You buy this regularly" in page.get_by_test_id("preview-items").inner_text()
    # a customer who withdrew personalisation consent: the preview says so, not a guess
    with open_session(live_server.database_url) as db:
        customers.set_consent(
            db, customer_id=ids["c3"], purpose="personalization", granted=False, source="test"
        )
    preview = page.get_by_test_id("preview-form")
    preview.get_by_label("Customer id").fill(ids["c3"])
    preview.get_by_role("button", name="Preview").click()
    assert "has not consented to personalisation" in (
        page.get_by_test_id("preview-personal").inner_text()
    )
    assert "You buy this regularly" not in page.get_by_test_id("preview-items").inner_text()

    # the rules page; a new rule with the sample customer's list as it is now
    page.get_by_test_id("rules-link").click()
    page.get_by_test_id("new-rule").click()
    form = page.get_by_test_id("rule-form")
    form.get_by_label("Customer id").fill(customer)
    before_api = _served(live_server.base_url, key, customer)
    last = before_api[len(before_api) // 2]  # half way down: a boost should lift it
    assert before_api[0] != last

    # a boost without its factor is refused beside the field, and nothing is saved
    form.get_by_label("Name").fill("Push this one")
    form.get_by_label("Action").select_option("boost")
    form.get_by_label("SKU").fill(last)
    form.get_by_role("button", name="Add rule").click()
    assert "boost needs factor" in page.locator('[data-field-error="factor"]').inner_text()
    assert page.get_by_label("SKU").input_value() == last  # what was typed is kept
    with open_session(live_server.database_url) as db:
        assert db.query(MerchRule).count() == 0

    # a mistyped SKU is refused beside the SKU field too: a rule on no product does nothing
    form = page.get_by_test_id("rule-form")
    form.get_by_label("Factor (boost, bury)").fill("100")
    form.get_by_label("SKU").fill(f"{last}X")
    form.get_by_role("button", name="Add rule").click()
    assert "in the catalogue" in page.locator('[data-field-error="sku"]').inner_text()
    assert page.get_by_label("SKU").input_value() == f"{last}X"
    with open_session(live_server.database_url) as db:
        assert db.query(MerchRule).count() == 0

    # with a factor and the right SKU it is saved: the after list and the API both put it first
    form = page.get_by_test_id("rule-form")
    form.get_by_label("SKU").fill(last)
    form.get_by_label("Factor (boost, bury)").fill("100")
    form.locator("select[name=placement]").select_option("home")
    form.get_by_role("button", name="Add rule").click()
    assert "added" in page.get_by_test_id("recommend-message").inner_text()
    assert _skus(page, "preview-before") == before_api
    after = _skus(page, "preview-after")
    assert after[0] == last
    assert _served(live_server.base_url, key, customer) == after
    with open_session(live_server.database_url) as db:
        (rule,) = db.query(MerchRule).all()
        assert (rule.action, rule.sku, rule.factor, rule.placement) == ("boost", last, 100, "home")
        rule_id = rule.id

    # edited: only on the email placement now, so the home list the API serves is as before
    page.goto(f"{live_server.base_url}/admin/recommendations/rules/{rule_id}")
    form = page.get_by_test_id("rule-form")
    assert form.get_by_label("Factor (boost, bury)").input_value() == "100"
    form.locator("select[name=placement]").select_option("email")
    form.get_by_label("Customer id").fill(customer)
    form.get_by_role("button", name="Save rule").click()
    assert "saved" in page.get_by_test_id("recommend-message").inner_text()
    assert _served(live_server.base_url, key, customer) == before_api
    with open_session(live_server.database_url) as db:
        assert db.get(MerchRule, rule_id).placement == "email"

    # deleted from its page: gone from the list, the change audited
    page.get_by_test_id("delete-rule").get_by_role("button").click()
    assert f"Rule {rule_id} deleted" in page.get_by_test_id("recommend-message").inner_text()
    assert page.get_by_test_id("rules").count() == 0
    assert "deleted by merch@example.com" in page.get_by_test_id("rule-changes").text_content()
    with open_session(live_server.database_url) as db:
        assert db.query(MerchRule).count() == 0


def test_the_customer_panel_shows_reasons_and_respects_consent(
    page, live_server, tmp_path: Path
) -> None:
    clock.set_clock(clock.FrozenClock(NOW))
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="merch@example.com", password=PASSWORD)
        ids = seed_shop(db)
        service.train_model(db, data_dir=tmp_path, trained_by="test")
        customers.set_consent(
            db, customer_id=ids["c3"], purpose="personalization", granted=False, source="test"
        )
    sign_in_as(page, live_server.base_url, "merch@example.com", PASSWORD)
    panel = f"{live_server.base_url}/admin/recommendations/customers/{{}}/panel"
    page.goto(panel.format(ids["c2"]))
    shown = page.get_by_test_id("customer-recommendations").inner_text()
    assert "You buy this regularly" in shown
    assert page.locator(".topbar").count() == 0  # a fragment for the 360 page, no shell
    page.goto(panel.format(ids["c3"]))
    assert (
        "not consented to personalisation" in page.get_by_test_id("no-personalization").inner_text()
    )
    assert page.get_by_test_id("customer-recommendations").count() == 0
