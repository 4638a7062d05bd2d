"""Campaigns over HTTP: create (idempotent), edit, templates, preview, test send, launch,
schedule, pause, results; scopes and problem+json."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.planning import jobs as planning_jobs
from rapport.platform import clock
from rapport.platform.models import Job
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
