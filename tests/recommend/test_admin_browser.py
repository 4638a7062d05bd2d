"""The recommendations page in headless Chromium: metrics chart, preview with explanations,
merchandising rules added (and refused) and applied."""

from __future__ import annotations

from pathlib import Path

from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.recommend import service
from rapport.recommend.models import MerchRule

from .factories import NOW, seed_shop

PASSWORD = "correct horse battery"


def test_preview_rules_and_metrics(page, live_server, tmp_path: Path) -> None:
    clock.set_clock(clock.FrozenClock(NOW))
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="merch@example.com", password=PASSWORD)
        ids = seed_shop(db)
        service.train_model(db, data_dir=tmp_path, trained_by="test")
    page.goto(f"{live_server.base_url}/admin/login")
    page.get_by_label("Email").fill("merch@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Recommendations").click()

    # the metrics chart and the serving version
    page.wait_for_function("() => Chart.getChart('metrics-chart') !== undefined")
    assert "serving" in page.get_by_test_id("model-versions").inner_text()

    # a customer's home placement, explained
    preview = page.get_by_test_id("preview-form")
    preview.get_by_label("Customer id").fill(ids["c2"])
    preview.get_by_role("button", name="Preview").click()
    assert "personal" in page.get_by_test_id("preview-summary").inner_text()
    first = page.get_by_test_id("preview-items").locator("tbody tr").first.inner_text()
    assert "Ground coffee" in first
    assert "You buy this regularly" in first

    # a pin without a position is refused, naming the field, and nothing is saved
    form = page.get_by_test_id("rule-form")
    form.get_by_label("Name").fill("Montepulciano first")
    form.get_by_label("Action").select_option("pin")
    form.get_by_label("SKU").fill("W-MONTE")
    form.get_by_role("button", name="Add rule").click()
    assert "a pin needs sku and position" in page.get_by_test_id("rule-errors").inner_text()
    with open_session(live_server.database_url) as db:
        assert db.query(MerchRule).count() == 0

    # with the position it is saved, audited, and the preview shows it first
    form = page.get_by_test_id("rule-form")
    form.get_by_label("Name").fill("Montepulciano first")
    form.get_by_label("Action").select_option("pin")
    form.get_by_label("SKU").fill("W-MONTE")
    form.get_by_label("Position (pin)").fill("1")
    form.get_by_role("button", name="Add rule").click()
    assert "added" in page.get_by_test_id("recommend-message").inner_text()
    assert "merch@example.com" in page.get_by_test_id("rules").inner_text()
    preview = page.get_by_test_id("preview-form")
    preview.get_by_label("Customer id").fill(ids["c2"])
    preview.get_by_role("button", name="Preview").click()
    first = page.get_by_test_id("preview-items").locator("tbody tr").first.inner_text()
    assert "Montepulciano" in first
    assert "Pinned by merchandiser" in first
