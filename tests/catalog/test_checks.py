"""Rows an earlier version saved that today's checks refuse (price rules for a place that is
no store, several rules live at once for one place, stores with half a position, an unknown
time zone or unreadable hours) are listed on the consistency page, each with what is wrong and
how to fix it, on SQLite and PostgreSQL; listing them changes nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.models import ChannelPrice, Store
from rapport.catalog.schemas import StoreUpsert
from rapport.platform import clock
from tests.catalog.factories import add_products
from tests.platform.admin_forms import page_form, post_form

PAGE = "/admin/catalog/consistency?show=checks"


def _good_store(db: Session) -> None:
    catalog.upsert_stores(
        db,
        stores=[
            StoreUpsert(
                store_id="st-lyon", name="Lyon", city="Lyon", address="1 rue", country="FR",
                latitude=45.76, longitude=4.83, timezone="Europe/Paris",
                opening_hours={"mon": "09:00-19:00", "sun": "closed"},
            )
        ],
    )  # fmt: skip


def _old_store(db: Session, store_id: str, **saved: object) -> None:
    now = clock.now()
    fields: dict[str, object] = {
        "name": store_id, "city": "Paris", "address": "-", "country": "FR",
        "timezone": "Europe/Paris", "opening_hours": {}, "created_at": now, "updated_at": now,
    }  # fmt: skip
    db.add(Store(store_id=store_id, **(fields | saved)))


def _rule(db: Session, sku: str, channel: str, store_id: str | None, price: int, why: str) -> int:
    rule = ChannelPrice(
        sku=sku, channel=channel, store_id=store_id, price_minor=price, reason=why,
        valid_from=clock.now() - timedelta(days=3),
    )  # fmt: skip
    db.add(rule)
    db.flush()
    return rule.id


def _listed(html: str) -> list[tuple[str, str]]:
    table = html[html.index('data-testid="catalog-checks"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr data-kind=\"[^\"]+\"[^>]*>(.*?)</tr>", table, re.S)
    cells = [re.findall(r"<td>(.*?)</td>", row, re.S) for row in rows]
    text = [[unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in row] for row in cells]
    return [(what, f"{problem} | {fix}") for what, problem, fix in text]


def test_a_clean_catalogue_has_nothing_to_fix(admin: TestClient, db: Session) -> None:
    add_products(db, "W-1")
    _good_store(db)
    catalog.set_channel_price(
        db, sku="W-1", channel="store", store_id="st-lyon", price_minor=900, reason="Lyon"
    )
    catalog.set_channel_price(
        db, sku="W-1", channel="store", store_id="st-lyon", price_minor=800, reason="Lyon again"
    )
    page = admin.get(PAGE).text
    assert _listed(page) == []
    assert "Nothing to fix" in page


def test_old_rules_and_stores_are_listed_with_what_is_wrong_and_the_fix(
    admin: TestClient, db: Session
) -> None:
    # given rows an earlier version saved without today's checks
    add_products(db, "W-1", "W-2")
    _good_store(db)
    _old_store(db, "st-half", latitude=48.85)
    _old_store(db, "st-mars", timezone="Mars/Olympus")
    _old_store(db, "st-hours", opening_hours={"mon": "9-5", "funday": "closed"})
    ghost = _rule(db, "W-1", "store", "st-gone", 700, "closed shop")
    warehouse = _rule(db, "W-1", "store", "web", 750, "warehouse")
    on_app = _rule(db, "W-2", "app", "st-lyon", 650, "app in Lyon")
    older = _rule(db, "W-2", "web", None, 1000, "old web offer")
    newer = _rule(db, "W-2", "web", None, 1100, "new web offer")
    ended = _rule(db, "W-2", "store", "st-gone", 500, "long gone")
    db.get(ChannelPrice, ended).valid_to = clock.now() - timedelta(days=1)  # type: ignore[union-attr]
    db.commit()

    # when the consistency page's list of rows to fix is opened
    page = admin.get(PAGE).text
    # then the tile counts them and each is listed with what is wrong and how to fix it
    assert re.search(r'data-testid="tile-checks">.*?<p class="stat-value">8</p>', page, re.S)
    again = (
        "End the rule; record it again for a store of the catalogue on channel store if it is "
        "wanted"
    )
    store = (
        "Send the store again with PUT /v1/stores/{}: both coordinates or neither, an IANA time "
        "zone such as Europe/Paris, hours such as '09:00-20:00' or 'closed'"
    )
    assert _listed(page) == [
        (
            f"rule {ghost} of W-1 (closed shop)",
            "names store 'st-gone', which is not in the catalogue: no order can be placed "
            f"there | End rule {ghost}: {again}",
        ),
        (
            f"rule {warehouse} of W-1 (warehouse)",
            f"names 'web', the online warehouse, as a store | End rule {warehouse}: {again}",
        ),
        (
            f"rule {on_app} of W-2 (app in Lyon)",
            "prices app orders at one store: a price for one store is on channel 'store' only | "
            f"End rule {on_app}: {again}",
        ),
        (
            f"rule {older} of W-2 (old web offer)",
            f"is live on web together with rule {newer} (new web offer), which sets the price "
            f"there | End rule {older}: End this rule: the price stays rule {newer}'s",
        ),
        (
            "store st-half (st-half)",
            "has half a position (no longitude): it is left out of the nearest store and of "
            f"distances | {store.format('st-half')}",
        ),
        (
            "store st-hours (st-hours)",
            "has opening hours on mon: '9-5' is not a time span: write '09:00-20:00', "
            f"'09:00-12:30, 14:00-19:00' or 'closed' | {store.format('st-hours')}",
        ),
        (
            "store st-hours (st-hours)",
            f"has opening hours for 'funday', which is not a weekday | {store.format('st-hours')}",
        ),
        (
            "store st-mars (st-mars)",
            "has time zone 'Mars/Olympus', which is not an IANA time zone | "
            f"{store.format('st-mars')}",
        ),
    ]
    # and listing them changed nothing
    db.expire_all()
    assert db.get(Store, "st-mars").timezone == "Mars/Olympus"  # type: ignore[union-attr]
    assert db.get(ChannelPrice, ghost).valid_to is None  # type: ignore[union-attr]

    # when the older of the two web rules is ended from its link
    end = f"/admin/catalog/products/W-2/rules/{older}/end"
    assert f'href="{end}"' in page
    assert post_form(admin, end, page_form(admin.get(end).text, action=end)).status_code == 303
    # then it is fixed: no longer listed, and W-2's web price is still the newer rule's
    listed_after = [what for what, _ in _listed(admin.get(PAGE).text)]
    assert f"rule {older} of W-2 (old web offer)" not in listed_after
    assert len(listed_after) == 7
    db.expire_all()
    assert catalog.effective_price(db, sku="W-2", channel="web") == 1100
