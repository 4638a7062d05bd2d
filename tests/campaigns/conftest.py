"""Fixtures for the campaigns tests: a real SMTP server and a real webhook receiver, and the
settings every sender reads (``get_settings``) pointed at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rapport.platform.db import open_session
from rapport.platform.settings import get_settings
from tests.campaigns.delivery.factories import send_at_any_hour
from tests.campaigns.receivers import (
    SmtpSink,
    WebhookReceiver,
    running_smtp_sink,
    running_webhook_receiver,
)

# The secret of the test app's settings (tests/conftest.py): unsubscribe links signed by the
# senders (which read get_settings) verify on the test app.
TEST_SECRET = "test-secret-key-not-for-production"


@pytest.fixture(autouse=True)
def _sender_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RAPPORT_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("RAPPORT_PUBLIC_BASE_URL", "http://testserver")
    # The receivers listen on loopback, which webhooks reach only when allowed.
    monkeypatch.setenv("RAPPORT_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def smtp_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    """A real SMTP server; email deliveries go to it (``.messages``)."""
    for sink in running_smtp_sink():
        monkeypatch.setenv("RAPPORT_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("RAPPORT_SMTP_PORT", str(sink.port))
        monkeypatch.setenv("RAPPORT_SMTP_SECURITY", "none")
        get_settings.cache_clear()
        yield sink
    get_settings.cache_clear()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP receiver (``.url``, ``.requests``, ``.responses`` to answer in turn)."""
    yield from running_webhook_receiver()


@pytest.fixture(autouse=True)
def _awake_at_any_hour(request: pytest.FixtureRequest) -> None:
    """Marketing sent by a test is not deferred by the default quiet hours when the suite runs
    at night (tests about quiet hours set their own policy)."""
    if "db" in request.fixturenames:
        send_at_any_hour(request.getfixturevalue("db"))
    elif "committed_url" in request.fixturenames:
        with open_session(request.getfixturevalue("committed_url")) as db:
            send_at_any_hour(db)
