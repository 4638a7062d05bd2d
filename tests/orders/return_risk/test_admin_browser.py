"""The orders page names the return-risk model that won at training, with every candidate's
validation figures, in headless Chromium."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rapport.demo.generator import DemoRetailer
from rapport.demo.loader import load_demo, load_demo_orders
from rapport.orders.return_risk import BoostingParams, ReturnRiskModel
from rapport.orders.return_risk import serving as risk
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import DemoSite, sign_in

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)


def test_orders_page_shows_which_model_won(page, live_server, tmp_path: Path) -> None:
    # given a shop with two years of orders and returns, and a model trained on them
    clock.set_clock(lambda: NOW)
    risk.forget_cached_models()
    retailer = DemoRetailer(seed=21, customers=300)
    with open_session(live_server.database_url) as db:
        load_demo(db, retailer=retailer)
        load_demo_orders(db, retailer=retailer)
        platform.create_admin_user(db, email="risk@example.com", password="a long passphrase 19")
        db.commit()
        model = ReturnRiskModel(grid=[BoostingParams(0.1, 40, 7, 20, 1.0)], calibration_folds=2)
        path = risk.train_return_risk(db, data_dir=tmp_path, seed=3, model=model)
    assert path is not None
    trained = ReturnRiskModel.load(path)
    report = trained.report
    assert report is not None
    assert len(report.candidate_pr_auc) == 3

    # when the admin opens the orders page
    site = DemoSite(server=live_server, email="risk@example.com", password="a long passphrase 19")
    sign_in(page, site)
    page.goto(f"{live_server.base_url}/admin/orders")

    # then the first view, before the server has read the order history, says it is reading
    # it rather than keep the page waiting; a reload a moment later has the model
    assert "reading the order history" in page.get_by_test_id("risk-loading").inner_text()
    for _ in range(100):
        page.reload()
        if page.get_by_test_id("risk-loading").count() == 0:
            break
        page.wait_for_timeout(200)

    # and it names the served model and shows the three candidates' validation figures
    assert page.get_by_test_id("risk-model-kind").inner_text() == trained.kind_label
    rows = page.get_by_test_id("risk-candidates").locator("tbody tr")
    assert rows.count() == 3
    for number in range(3):
        row = rows.nth(number)
        kind = row.get_attribute("data-kind")
        assert kind in report.candidate_pr_auc
        cells = row.locator("td")
        assert cells.nth(1).inner_text() == f"{report.candidate_pr_auc[kind]:.3f}"
        assert cells.nth(2).inner_text() == f"{report.candidate_brier[kind]:.4f}"
        assert (row.get_attribute("data-chosen") == "true") == (kind == report.model_chosen)
    chosen = page.locator("[data-testid=risk-candidates] tr[data-chosen=true]")
    assert "(served)" in chosen.inner_text()
    sentence = page.get_by_test_id("risk-model").inner_text()
    assert "the best of 3 candidates" in sentence
    assert f"{report.validation_rows:,} orders" in sentence
