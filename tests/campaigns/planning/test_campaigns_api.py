"""Campaigns over HTTP: create (idempotent), edit, templates, preview, test send, launch,
schedule, pause, results; scopes and problem+json."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from rapport.campaigns.delivery import webhooks
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import WebhookEndpoint
from rapport.campaigns.planning import editing, launching
from rapport.campaigns.planning import jobs as planning_jobs
from rapport.platform import clock
from rapport.platform.models import Job
from rapport.platform.settings import get_settings
from tests.campaigns.planning.factories import make_customer, make_segment
from tests.campaigns.receivers import SmtpSink
from tests.conftest import auth, command


def _new_campaign(client, headers: dict[str, str], segment_id: int) -> dict:  # type: ignore[type-arg]
    created = client.post(
        "/v1/campaigns",
        json={"name": "Autumn", "segment_id": segment_id, "control_percent": 20},
        headers={**headers, "Idempotency-Key": "autumn-1"},
    )
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def test_a_campaign_is_created_once_per_key_edited_previewed_and_launched(
    client, api_key, db: Session, smtp_sink: SmtpSink
) -> None:
    write = auth(api_key("write"))
    read = auth(api_key("read"))
    customer_id = make_customer(db, first_name="Ada")
    segment_id = make_segment(db)

    campaign = _new_campaign(client, write, segment_id)
    again = _new_campaign(client, write, segment_id)
    assert again["id"] == campaign["id"]
    assert campaign["status"] == "draft"
    path = f"/v1/campaigns/{campaign['id']}"

    changed = client.put(path, json={"conversion_days": 14}, headers=write)
    assert changed.status_code == 200
    assert changed.json()["conversion_days"] == 14
    assert changed.json()["control_percent"] == 20  # not named, not changed

    saved = client.put(
        f"{path}/templates/email/en",
        json={
            "subject": "Hello {{ first_name }}",
            "body": "<p>Autumn is here, {{ first_name }}</p>",
        },
        headers=write,
    )
    assert saved.status_code == 200, saved.text
    shown = client.get(path, headers=read).json()
    assert [(t["channel"], t["locale"]) for t in shown["templates"]] == [("email", "en")]

    preview = client.get(f"{path}/preview", params={"customer_id": customer_id}, headers=read)
    assert preview.status_code == 200, preview.text
    assert preview.json()["subject"] == "Hello Ada"

    sent = client.post(
        f"{path}/test-send",
        json={"customer_id": customer_id, "to_address": "qa@example.com"},
        headers=command(write),
    )
    assert sent.status_code == 200, sent.text
    assert [m.to for m in smtp_sink.messages] == ["qa@example.com"]
    assert smtp_sink.messages[0].subject == "[Test] Hello Ada"

    launched = client.post(f"{path}/launch", headers=command(write))
    assert launched.status_code == 200
    assert launched.json()["status"] == "sending"
    job = db.query(Job).filter(Job.kind == "campaigns.launch").one()
    planning_jobs.launch_campaign(db, job.payload)
    while dispatch_batch(db, worker="w1"):
        pass
    results = client.get(f"{path}/results", headers=read)
    assert results.status_code == 200
    body = results.json()
    assert body["treated"]["customers"] + body["control"]["customers"] == 1
    assert body["state"] in ("too_few_control", "no_control")
    assert body["reading"]

    listed = client.get("/v1/campaigns", params={"status": "sent"}, headers=read).json()
    assert [c["id"] for c in listed["items"]] == [campaign["id"]]
    assert listed["total"] == 1


def test_scheduling_and_pausing_over_http(client, api_key, db: Session) -> None:
    write = auth(api_key("write"))
    campaign = _new_campaign(client, write, make_segment(db))
    path = f"/v1/campaigns/{campaign['id']}"
    client.put(f"{path}/templates/email/en", json={"body": "<p>Hi</p>"}, headers=write)
    past = client.post(
        f"{path}/schedule", json={"scheduled_at": "2020-01-01T00:00:00Z"}, headers=command(write)
    )
    assert past.status_code == 422
    assert past.json()["field"] == "scheduled_at"
    assert past.json()["detail"] == "The time to send must be in the future"
    naive = (clock.now() + timedelta(days=1)).replace(tzinfo=None).isoformat()
    no_zone = client.post(f"{path}/schedule", json={"scheduled_at": naive}, headers=command(write))
    assert no_zone.status_code == 422, no_zone.text
    assert no_zone.json()["errors"][0]["field"] == "scheduled_at"
    # its segment cannot be deleted while the campaign may still send to it
    in_use = client.delete(f"/v1/segments/{campaign['segment_id']}", headers=write)
    assert in_use.status_code == 409, in_use.text
    assert "'Autumn'" in in_use.json()["detail"]
    when = (clock.now() + timedelta(days=1)).isoformat()
    scheduled = client.post(f"{path}/schedule", json={"scheduled_at": when}, headers=command(write))
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"
    assert client.post(f"{path}/pause", headers=command(write)).json()["status"] == "paused"
    assert client.post(f"{path}/resume", headers=command(write)).json()["status"] == "scheduled"
    assert client.post(f"{path}/cancel", headers=command(write)).json()["status"] == "cancelled"
    refused = client.post(f"{path}/launch", headers=command(write))
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"


def test_invalid_settings_unknown_campaigns_and_scopes(client, api_key, db: Session) -> None:
    write = auth(api_key("write"))
    read = auth(api_key("read"))
    refused = client.post("/v1/campaigns", json={"name": "x", "control_percent": 95}, headers=write)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    refused = client.post(
        "/v1/campaigns",
        json={"name": "x", "segment_id": 4242},
        headers={**write, "Idempotency-Key": "bad-segment"},
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "segment_id"
    assert client.get("/v1/campaigns/999999", headers=read).status_code == 404
    assert client.post("/v1/campaigns", json={"name": "x"}, headers=read).status_code == 403
    assert client.get("/v1/campaigns", headers={}).status_code == 401
    # The delivery part's routes under /v1/campaigns/ still answer.
    assert client.get("/v1/campaigns/sending-policy", headers=read).status_code == 200


def test_a_triggered_campaign_is_test_sent_with_a_sample_event(
    client, api_key, db: Session, smtp_sink: SmtpSink
) -> None:
    write = auth(api_key("write"))
    customer_id = make_customer(db, first_name="Zoe")
    created = client.post(
        "/v1/campaigns",
        json={
            "name": "Match won",
            "kind": "triggered",
            "trigger": {"event_type": "venue_event", "radius_km": 50, "within_minutes": 60},
        },
        headers={**write, "Idempotency-Key": "match-won-1"},
    )
    assert created.status_code == 201, created.text
    path = f"/v1/campaigns/{created.json()['id']}"
    saved = client.put(
        f"{path}/templates/email/en",
        json={"subject": "{{ event.venue }} celebrates", "body": "<p>{{ first_name }}</p>"},
        headers=write,
    )
    assert saved.status_code == 200, saved.text

    sent = client.post(
        f"{path}/test-send",
        json={"customer_id": customer_id, "to_address": "qa@example.com"},
        headers=command(write),
    )

    assert sent.status_code == 200, sent.text
    assert [m.subject for m in smtp_sink.messages] == ["[Test] Sample venue celebrates"]


def _webhook_campaign(client, db: Session, write: dict[str, str]) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """A webhook campaign to every customer, with its message written: its path and its
    endpoint's id."""
    endpoint = webhooks.create_endpoint(db, name="Push gateway", url="https://push.example/hooks")
    created = client.post(
        "/v1/campaigns",
        json={
            "name": "Push",
            "segment_id": make_segment(db),
            "channel": "webhook",
            "webhook_endpoint_id": endpoint.endpoint.id,
        },
        headers=command(write),
    )
    assert created.status_code == 201, created.text
    path = f"/v1/campaigns/{created.json()['id']}"
    written = client.put(f"{path}/templates/webhook/en", json={"body": "Hi"}, headers=write)
    assert written.status_code == 200, written.text
    return path, endpoint.endpoint.id


def _deactivate(db: Session, endpoint_id: int) -> None:
    """As deleting the subscription that made the endpoint leaves it: kept, inactive."""
    stored = db.get(WebhookEndpoint, endpoint_id)
    assert stored is not None
    stored.active = False
    db.commit()


def test_a_launch_that_cannot_go_out_is_refused_naming_what_to_fix(
    client, api_key, db: Session
) -> None:
    write = auth(api_key("write"))
    read = auth(api_key("read"))
    make_customer(db)
    path, endpoint_id = _webhook_campaign(client, db, write)
    # given its endpoint is inactive now
    _deactivate(db, endpoint_id)
    # when it is launched, or scheduled
    when = (clock.now() + timedelta(days=1)).isoformat()
    for refused in (
        client.post(f"{path}/launch", headers=command(write)),
        client.post(f"{path}/schedule", json={"scheduled_at": when}, headers=command(write)),
    ):
        # then it is refused naming the endpoint and what to do, and stays a draft
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["field"] == "webhook_endpoint_id"
        assert f"Webhook endpoint {endpoint_id} is inactive" in problem["detail"]
        assert "pick an active endpoint" in problem["detail"]
    shown = client.get(path, headers=read).json()
    assert (shown["status"], shown["started_at"], shown["failure_reason"]) == ("draft", None, None)
    assert db.query(Job).filter(Job.kind == "campaigns.launch").count() == 0


def test_a_scheduled_launch_found_unable_to_go_out_fails_saying_why(
    client, admin, api_key, db: Session
) -> None:
    write = auth(api_key("write"))
    read = auth(api_key("read"))
    make_customer(db)
    path, endpoint_id = _webhook_campaign(client, db, write)
    when = (clock.now() + timedelta(hours=1)).isoformat()
    scheduled = client.post(f"{path}/schedule", json={"scheduled_at": when}, headers=command(write))
    assert scheduled.status_code == 200, scheduled.text
    # given its endpoint went inactive after it was scheduled
    _deactivate(db, endpoint_id)
    # when its time comes and the scheduled check runs
    clock.set_clock(clock.FrozenClock(clock.now() + timedelta(hours=2)))
    planning_jobs.launch_scheduled(db, {})
    planning_jobs.launch_campaign(db, {"campaign_id": scheduled.json()["id"]})
    clock.reset_clock()
    # then it is failed, not cancelled nor sending, saying why and what to do, nothing queued
    shown = client.get(path, headers=read).json()
    assert shown["status"] == "failed"
    assert shown["failure_reason"] == (
        f"webhook_endpoint_id: Webhook endpoint {endpoint_id} is inactive; pick an active "
        "endpoint to send to, then launch it again"
    )
    assert shown["audience_count"] == 0
    listed = client.get("/v1/campaigns", params={"status": "failed"}, headers=read).json()
    assert [item["id"] for item in listed["items"]] == [shown["id"]]
    # and the admin campaign page says so
    page = admin.get(f"/admin/campaigns/{shown['id']}").text
    assert 'data-testid="campaign-status">failed<' in page
    assert "The launch failed; nothing was sent." in page
    assert f"Webhook endpoint {endpoint_id} is inactive" in page
    # and once mended (another endpoint), it is launched again
    other = webhooks.create_endpoint(db, name="New gateway", url="https://new.example/hooks")
    changed = client.put(path, json={"webhook_endpoint_id": other.endpoint.id}, headers=write)
    assert changed.status_code == 200, changed.text
    launched = client.post(f"{path}/launch", headers=command(write))
    assert launched.status_code == 200, launched.text
    assert (launched.json()["status"], launched.json()["failure_reason"]) == ("sending", None)


def test_an_email_launch_without_a_sender_address_is_refused_saying_what_to_set(
    client, api_key, db: Session, monkeypatch
) -> None:
    write = auth(api_key("write"))
    read = auth(api_key("read"))
    campaign = _new_campaign(client, write, make_segment(db))
    path = f"/v1/campaigns/{campaign['id']}"
    client.put(f"{path}/templates/email/en", json={"body": "<p>Hi</p>"}, headers=write)
    # given the operator set a From: without an address
    monkeypatch.setenv("RAPPORT_SMTP_FROM", "Our shop")
    get_settings.cache_clear()
    try:
        refused = client.post(f"{path}/launch", headers=command(write))
    finally:
        monkeypatch.delenv("RAPPORT_SMTP_FROM")
        get_settings.cache_clear()
    # then the launch is refused saying what to set, and the campaign stays a draft
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "channel"
    assert "set RAPPORT_SMTP_FROM" in refused.json()["detail"]
    assert client.get(path, headers=read).json()["status"] == "draft"


def test_a_sent_campaigns_messages_are_kept_as_sent_over_http(client, api_key, db: Session) -> None:
    """The API refuses a launched one-off's message like the admin does (409): the message
    sent and a new locale alike; the stored message stays what was sent."""
    write = auth(api_key("write"))
    make_customer(db)
    campaign = _new_campaign(client, write, make_segment(db))
    path = f"/v1/campaigns/{campaign['id']}"
    sent = {"subject": "Hello {{ first_name }}", "body": "<p>Autumn</p>"}
    assert client.put(f"{path}/templates/email/en", json=sent, headers=write).status_code == 200
    launching.launch_campaign(db, campaign_id=campaign["id"])
    changed = {"subject": "CHANGED AFTER SEND", "body": "<p>changed</p>"}
    for locale in ("en", "fr"):
        refused = client.put(f"{path}/templates/email/{locale}", json=changed, headers=write)
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "write a new campaign" in refused.json()["detail"]
    db.expire_all()
    [stored] = editing.get_templates(db, campaign_id=campaign["id"])
    assert (stored.subject, stored.body) == (sent["subject"], sent["body"])
