"""A shop's page in a real browser (headless Chromium) sending tracking events to Rapport on
another origin, as analytics.js and RudderStack's JavaScript SDK send them; and a page that
may not call the rest of the API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from rapport.events.models import Event
from rapport.platform import service as platform
from rapport.platform.db import open_session

SHOP_PAGE = b"<!doctype html><title>Shop</title><h1>Wok shop</h1>"


class _Shop(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(SHOP_PAGE)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def shop() -> Iterator[str]:
    """The shop's own site: another origin (another port) than Rapport's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


SEND = """async ([base, key]) => {
  const answers = {};
  // analytics.js: text/plain (no preflight), the write key in the body, apiHost + "/t"
  let r = await fetch(base + "/v1/t", {
    method: "POST",
    headers: {"Content-Type": "text/plain"},
    body: JSON.stringify({type: "track", event: "Product Viewed", userId: "u-1",
                          messageId: "ajs-1", writeKey: key}),
  });
  answers.ajs = [r.status, await r.json()];
  // RudderStack's JavaScript SDK: JSON with basic auth and its AnonymousId header (preflight)
  r = await fetch(base + "/v1/batch", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Authorization": "Basic " + btoa(key + ":"),
              "AnonymousId": btoa("anon-1")},
    body: JSON.stringify({batch: [{type: "page", anonymousId: "anon-1", messageId: "rs-1",
                                   name: "Home"}]}),
  });
  answers.rudder = [r.status, await r.json()];
  // any other route: the browser gets no allowance
  try {
    r = await fetch(base + "/v1/customers", {headers: {"Authorization": "Bearer " + key}});
    answers.customers = ["read", r.status];
  } catch (error) {
    answers.customers = ["refused", String(error)];
  }
  return answers;
}"""


def test_a_shop_page_sends_tracking_events_across_origins(live_server, shop, page) -> None:
    # given an ingest key (public in the shop's pages) and the shop's page open in a browser
    with open_session(live_server.database_url) as db:
        key = platform.create_api_key(db, name="site", scopes=[platform.Scope.INGEST]).secret
    page.goto(shop)

    # when its scripts send events to Rapport, on another origin, as the SDKs do
    answers = page.evaluate(SEND, [live_server.base_url, key])

    # then the browser lets them through and reads Rapport's answers
    assert answers["ajs"] == [200, {"success": True}]
    assert answers["rudder"][0] == 200
    assert answers["rudder"][1]["accepted"] == 1
    # but refuses the page any other route
    assert answers["customers"][0] == "refused"
    with open_session(live_server.database_url) as db:
        stored = list(db.execute(select(Event.event_id, Event.type).order_by(Event.position)))
    assert [tuple(row) for row in stored] == [("ajs-1", "product_viewed"), ("rs-1", "page_viewed")]
