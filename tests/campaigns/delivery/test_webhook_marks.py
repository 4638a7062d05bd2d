"""A webhook's mark commits as soon as its answer arrives, not with a group: while a slow
receiver holds some requests, the deliveries it already answered are committed ``sent`` (as
another session sees them), so a worker killed then would repeat only the requests in flight
(at most WEBHOOK_CONCURRENCY), not a whole group."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

from sqlalchemy import select

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.sending import WEBHOOK_CONCURRENCY, dispatch_due
from rapport.campaigns.models import Delivery, WebhookAttempt
from rapport.platform.db import open_session
from tests.campaigns.delivery.factories import make_campaign, make_customer, make_endpoint
from tests.campaigns.receivers import ReceivingServer
from tests.conftest import free_port

FAST = 10
TOTAL = 30


class HoldingReceiver:
    """Answers the first ``fast`` requests at once and holds every later one until
    ``release`` is set."""

    def __init__(self, fast: int) -> None:
        self.fast = fast
        self.received = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.port = free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.received += 1
                    held = receiver.received > receiver.fast
                if held:
                    receiver.release.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ReceivingServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _statuses(url: str, campaign_id: int) -> Counter[str]:
    with open_session(url) as db:
        return Counter(
            db.scalars(select(Delivery.status).where(Delivery.campaign_id == campaign_id))
        )


def test_answered_webhooks_are_committed_sent_while_others_are_still_in_flight(
    committed_url: str,
) -> None:
    receiver = HoldingReceiver(FAST)
    try:
        with open_session(committed_url) as db:
            endpoint = make_endpoint(db, url=f"http://127.0.0.1:{receiver.port}/hooks")
            people = [make_customer(db, consents={"marketing_push": True}) for _ in range(TOTAL)]
            campaign = make_campaign(
                db, channel="webhook", webhook_endpoint_id=endpoint.id, body="Hi {{ first_name }}"
            )
            queue_deliveries(
                db, campaign=campaign, recipients=[Recipient(customer_id=p) for p in people]
            )
            db.commit()
            campaign_id = campaign.id
        worker = threading.Thread(
            target=dispatch_due, kwargs={"worker": "w1", "database_url": committed_url}
        )
        worker.start()
        # The fast answers free their slots: the receiver then holds a full set of requests.
        deadline = time.monotonic() + 20
        while receiver.received < FAST + WEBHOOK_CONCURRENCY and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.received == FAST + WEBHOOK_CONCURRENCY
        held = _statuses(committed_url, campaign_id)
        assert held == Counter({"sent": FAST, "sending": TOTAL - FAST})

        receiver.release.set()
        worker.join(30)
        assert not worker.is_alive()
        assert _statuses(committed_url, campaign_id) == Counter({"sent": TOTAL})
        assert receiver.received == TOTAL
        with open_session(committed_url) as db:
            tries = db.scalars(
                select(WebhookAttempt.status_code).where(WebhookAttempt.endpoint_id == endpoint.id)
            ).all()
        assert tries == [200] * TOTAL
    finally:
        receiver.stop()
