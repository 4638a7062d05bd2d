"""The price consistency report over the API (``GET /v1/prices/consistency``): the live
rules that set a price other than the catalogue's, a page at a time by SKU then rule, with
a cursor that walks every row once, ties on a SKU included."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.models import ChannelPrice
from rapport.platform import clock
from tests.catalog.factories import add_products
from tests.conftest import auth

URL = "/v1/prices/consistency"


def _rule(db: Session, sku: str, channel: str, price_minor: int, **window: object) -> int:
    rule = catalog.set_channel_price(
        db, sku=sku, channel=channel, price_minor=price_minor, reason=f"{channel} {price_minor}"
    )
    if window:
        for name, value in window.items():
            setattr(rule, name, value)
        db.commit()
    return rule.id


def _walk(client: TestClient, headers: dict[str, str], limit: int) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        answer = client.get(URL + query, headers=headers)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json()["items"])
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor does not move on"


def test_pages_walk_every_live_difference_once_by_sku_then_rule(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given three products, one of them with four rules that differ (ties on its SKU), a rule
    # at the catalogue price, one that has ended and one that has not started yet
    now = clock.now()
    add_products(db, "A-1", "B-2", "C-3")
    _rule(db, "B-2", "app", 1100)
    _rule(db, "A-1", "web", 1000)
    _rule(db, "B-2", "web", 1150)
    _rule(db, "B-2", "store", 1200)  # the catalogue price: no difference
    _rule(db, "B-2", "call_center", 1050)
    _rule(db, "C-3", "app", 900, valid_to=now - timedelta(days=1))  # ended
    _rule(db, "C-3", "web", 950, valid_from=now + timedelta(days=1))  # not yet
    _rule(db, "C-3", "store", 990, valid_from=now - timedelta(days=1))  # live, in a window
    _rule(db, "B-2", "store", 1300)
    reader = auth(api_key("read"))
    expected = [
        ("A-1", "web", 1000),
        ("B-2", "app", 1100),
        ("B-2", "web", 1150),
        ("B-2", "call_center", 1050),
        ("B-2", "store", 1300),
        ("C-3", "store", 990),
    ]

    for limit in (1, 2, 4, 6, 7):
        # when the report is read ``limit`` rows at a time, following next_cursor
        pages = _walk(client, reader, limit)

        # then every live difference comes once, in order, and no page is longer than asked
        seen = [(d["sku"], d["channel"], d["price_minor"]) for page in pages for d in page]
        assert seen == expected, limit
        assert all(len(page) <= limit for page in pages)
        assert len(pages) == max(1, -(-len(expected) // limit)), limit


def test_a_page_goes_on_from_its_cursor_after_that_rule_has_ended(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given a first page whose last rule ends before the next page is asked for
    add_products(db, "A-1", "B-2")
    last_on_page = _rule(db, "A-1", "web", 1000)
    _rule(db, "A-1", "app", 1100)
    _rule(db, "B-2", "web", 1000)
    reader = auth(api_key("read"))
    first = client.get(f"{URL}?limit=1", headers=reader).json()
    assert first["next_cursor"] is not None
    db.get(ChannelPrice, last_on_page).valid_to = clock.now() - timedelta(seconds=1)  # type: ignore[union-attr]
    db.commit()

    # when the next page is read from that cursor
    rest = client.get(f"{URL}?limit=5&cursor={first['next_cursor']}", headers=reader)

    # then it goes on just past it: nothing refused, repeated or skipped
    assert rest.status_code == 200, rest.text
    assert [(d["sku"], d["channel"]) for d in rest.json()["items"]] == [
        ("A-1", "app"),
        ("B-2", "web"),
    ]
    assert rest.json()["next_cursor"] is None


def test_a_hundred_rows_by_default_and_at_most_five_hundred(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given 501 live differences
    add_products(db, *(f"P-{n:03d}" for n in range(167)))
    db.add_all(
        ChannelPrice(sku=f"P-{n // 3:03d}", channel=channel, price_minor=1000, reason="offer")
        for n, channel in zip(range(501), ["web", "app", "store"] * 167, strict=True)
    )
    db.commit()
    reader = auth(api_key("read"))

    # then a page without a limit has 100 and a cursor, one of 500 has 500 and a cursor
    default = client.get(URL, headers=reader).json()
    assert len(default["items"]) == 100
    assert default["next_cursor"] is not None
    most = client.get(f"{URL}?limit=500", headers=reader).json()
    assert len(most["items"]) == 500
    last = client.get(f"{URL}?limit=500&cursor={most['next_cursor']}", headers=reader).json()
    assert len(last["items"]) == 1
    assert last["next_cursor"] is None
    # and a limit outside 1 to 500 is refused, naming it
    for limit in (0, 501):
        refused = client.get(f"{URL}?limit={limit}", headers=reader)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "limit"


@pytest.mark.parametrize(
    "cursor", ["nope", "0", "999999", "99999999999", "-1", "1.5", "\uff11", "W-1", "x" * 65]
)
def test_a_cursor_we_did_not_give_out_is_refused_naming_it(
    client: TestClient, db: Session, api_key: Callable[..., str], cursor: str
) -> None:
    add_products(db, "W-1")
    _rule(db, "W-1", "app", 1100)

    refused = client.get(URL, params={"cursor": cursor}, headers=auth(api_key("read")))

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem.get("field", (problem.get("errors") or [{}])[0].get("field")) == "cursor"
