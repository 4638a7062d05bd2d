"""Breakage is one figure on every admin page that shows it: the points that expired unused
over every point issued, earned or added by staff (docs/analytics.md), computed once by
``loyalty.lifetime_flows``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from tests.loyalty.factories import frozen_clock, make_customer


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_every_page_shows_one_breakage_over_points_earned_and_added_by_staff(
    admin: TestClient, db: Session
) -> None:
    # given 500 points earned and 100 added by staff as goodwill; 200 redeemed, 300 expired
    clock = frozen_clock(datetime(2026, 1, 10, 9, 0, tzinfo=UTC))
    ann, bob = make_customer(db), make_customer(db)
    loyalty.earn(
        db, customer_id=ann, points=500, reason="Order", expires_at=datetime(2026, 4, 1, tzinfo=UTC)
    )
    loyalty.adjust(db, customer_id=bob, points=100, reason="Goodwill: Late delivery")
    clock.advance(timedelta(days=31))
    loyalty.redeem(db, customer_id=ann, points=200, reason="Reward")
    clock.at = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
    loyalty.expire_lots(db)
    db.commit()

    # when the overview, the loyalty page and the program page are opened
    pages = {
        path: admin.get(path) for path in ("/admin", "/admin/loyalty", "/admin/loyalty/program")
    }

    # then each shows 300 of the 600 points issued expired: 50.0%, not 300 of 500 (60.0%)
    for path, page in pages.items():
        assert page.status_code == 200, path
        text = _text(page.text)
        assert "50.0%" in text, path
        assert "60.0%" not in text, path
        assert re.search(r"\b600 points (ever )?issued", text), path
    assert "300 of 600 points issued expired unused" in _text(pages["/admin/loyalty/program"].text)
    assert "300 of 600 points issued expired" in _text(pages["/admin"].text)
