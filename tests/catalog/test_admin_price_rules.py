"""Ending a price rule from the product page, as ``DELETE /v1/prices/channel/{rule_id}`` does:
each rule not yet ended has an *End rule* link; its confirmation says what the price there
becomes, and its form (CSRF token, no JavaScript needed, htmx alike) ends it through the same
verb, on SQLite and PostgreSQL (the pages in a browser: test_admin_browser.py)."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import StoreUpsert
from rapport.platform import clock
from tests.catalog.factories import add_products
from tests.conftest import auth
from tests.platform.admin_forms import (
    csrf_token,
    page_form,
    post_form,
    said_after,
    status_line,
)

PAGE = "/admin/catalog/products/W-1"


def _shop(db: Session) -> tuple[int, int]:
    """W-1 at 12.00, 9.00 in the app and 8.00 in the Lyon store; the rules' ids."""
    add_products(db, "W-1", "W-2")
    catalog.upsert_stores(
        db,
        stores=[
            StoreUpsert(
                store_id="st-lyon", name="Lyon", city="Lyon", address="1 rue", country="FR",
                timezone="Europe/Paris",
            )
        ],
    )  # fmt: skip
    app = catalog.set_channel_price(
        db, sku="W-1", channel="app", price_minor=900, reason="app launch"
    )
    lyon = catalog.set_channel_price(
        db, sku="W-1", channel="store", store_id="st-lyon", price_minor=800, reason="clearance"
    )
    return app.id, lyon.id


def _end_links(html: str) -> list[str]:
    return re.findall(r'href="(/admin/catalog/products/W-1/rules/\d+/end)"', html)


def test_a_rule_is_ended_from_the_product_page_with_its_form(
    admin: TestClient, db: Session, api_key
) -> None:
    app_rule, lyon_rule = _shop(db)
    # the product page offers to end each rule
    page = admin.get(PAGE).text
    end = f"/admin/catalog/products/W-1/rules/{app_rule}/end"
    assert _end_links(page) == [end, f"/admin/catalog/products/W-1/rules/{lyon_rule}/end"]
    # the confirmation says what the app's price becomes, and ends nothing yet
    confirm = admin.get(end)
    assert confirm.status_code == 200
    assert "€12.00" in confirm.text
    assert "from the catalogue price" in confirm.text
    assert catalog.effective_price(db, sku="W-1", channel="app") == 900
    # when its form is sent as a browser sends it (no JavaScript)
    answer = post_form(admin, end, page_form(confirm.text, action=end))
    # then the rule has ended, and the product page says so
    assert answer.status_code == 303
    assert answer.headers["location"] == PAGE
    shown = admin.get(answer.headers["location"]).text
    assert status_line(shown) == (
        f"Price rule {app_rule} (app launch) ended; the price on app now comes from the "
        "catalogue price"
    )
    db.expire_all()
    assert catalog.effective_price(db, sku="W-1", channel="app") == 1200
    assert _end_links(shown) == [f"/admin/catalog/products/W-1/rules/{lyon_rule}/end"]
    # and the API reads it ended, as its own DELETE leaves it
    ended = admin.get("/v1/prices/consistency", headers=auth(api_key("read"))).json()
    assert [item["rule_id"] for item in ended["items"]] == [lyon_rule]


def test_htmx_ends_a_store_rule_and_is_sent_to_the_product(admin: TestClient, db: Session) -> None:
    _, lyon_rule = _shop(db)
    catalog.set_channel_price(db, sku="W-1", channel="store", price_minor=1000, reason="shops")
    end = f"/admin/catalog/products/W-1/rules/{lyon_rule}/end"
    confirm = admin.get(end).text
    assert "€10.00" in confirm  # the store channel's rule takes over in Lyon
    # when htmx sends the form (the CSRF token in its header, as the shell sets it)
    answer = admin.post(end, headers={"HX-Request": "true", "X-CSRF-Token": csrf_token(confirm)})
    # then the rule has ended and htmx is sent to the product page saying so
    assert answer.status_code == 204
    assert answer.headers["HX-Redirect"] == PAGE
    assert "in store st-lyon now comes from rule" in str(said_after(admin, answer))
    db.expire_all()
    assert catalog.effective_price(db, sku="W-1", channel="store", store_id="st-lyon") == 1000


def test_ending_needs_the_forms_token_and_a_rule_of_the_product(
    admin: TestClient, db: Session
) -> None:
    app_rule, _ = _shop(db)
    end = f"/admin/catalog/products/W-1/rules/{app_rule}/end"
    # without the CSRF token: refused, nothing ended
    assert admin.post(end, data={}).status_code == 403
    # a rule of another product, or none: 404 naming rule_id, nothing ended
    other = admin.post(
        f"/admin/catalog/products/W-2/rules/{app_rule}/end",
        headers={"X-CSRF-Token": csrf_token(admin.get(PAGE).text), "Accept": "application/json"},
    )
    assert other.status_code == 404
    assert other.json()["field"] == "rule_id"
    assert admin.get("/admin/catalog/products/W-1/rules/999999/end").status_code == 404
    db.expire_all()
    assert catalog.effective_price(db, sku="W-1", channel="app") == 900


def test_a_rule_that_has_ended_is_not_ended_again(admin: TestClient, db: Session) -> None:
    app_rule, _ = _shop(db)
    end = f"/admin/catalog/products/W-1/rules/{app_rule}/end"
    form = page_form(admin.get(end).text, action=end)
    catalog.end_channel_price(db, rule_id=app_rule)  # another admin, or the API, ended it
    ended_at = catalog.channel_prices(db, skus=["W-1"])["W-1"][0].valid_to
    clock.set_clock(clock.FrozenClock(clock.now() + timedelta(minutes=5)))
    answer = post_form(admin, end, form)
    assert answer.status_code == 303
    assert said_after(admin, answer) == f"Price rule {app_rule} had already ended; nothing changed"
    db.expire_all()
    assert catalog.channel_prices(db, skus=["W-1"])["W-1"][0].valid_to == ended_at
    # its confirmation offers nothing to send
    again = admin.get(end).text
    assert 'data-testid="already-ended"' in again
    assert "end-rule-form" not in again


def test_a_rule_still_to_begin_ends_before_it_begins(admin: TestClient, db: Session) -> None:
    from rapport.catalog.models import ChannelPrice

    _shop(db)
    starts = clock.now() + timedelta(days=2)  # saved by an earlier version, to begin later
    rule = ChannelPrice(
        sku="W-1", channel="web", price_minor=1000, reason="weekend offer", valid_from=starts
    )
    db.add(rule)
    db.commit()
    end = f"/admin/catalog/products/W-1/rules/{rule.id}/end"
    assert end in _end_links(admin.get(PAGE).text)
    confirm = admin.get(end).text
    assert "It has not begun: it ends before it begins" in confirm
    assert post_form(admin, end, page_form(confirm, action=end)).status_code == 303
    db.expire_all()
    ended = db.get(ChannelPrice, rule.id)
    assert ended is not None
    assert clock.as_utc(ended.valid_to) == starts  # type: ignore[arg-type]
    assert end not in _end_links(admin.get(PAGE).text)
    assert "it never sets a price" in admin.get(end).text
