"""PATCH /v1/webhooks/subscriptions/{id} refuses as creating one does: a 422 whose ``errors``
names each refused field, by the service's rules too (an unknown event type, a URL with a
space, a name in use among others, a null), changing nothing; a name in use alone is 409."""

from __future__ import annotations

from tests.campaigns.conftest import WebhookReceiver
from tests.conftest import auth

URL = "/v1/webhooks/subscriptions"


def _create(client, admin: dict[str, str], name: str, url: str) -> int:
    answer = client.post(
        URL,
        json={"name": name, "url": url, "event_types": ["points_earned"]},
        headers={**admin, "Idempotency-Key": f"create-{name}"},
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def test_a_patch_names_every_refused_field_in_errors(
    client, api_key, db, webhook_receiver: WebhookReceiver
) -> None:
    admin = auth(api_key("admin"))
    sub = _create(client, admin, "CRM", webhook_receiver.url)
    _create(client, admin, "Taken", webhook_receiver.url)
    before = client.get(f"{URL}/{sub}", headers=admin).json()
    for change, expected in (
        ({"event_types": ["nope"]}, [("event_types.0", "invalid")]),
        ({"url": "http://x y.example/"}, [("url", "invalid")]),
        ({"active": None}, [("active", "invalid")]),
        (
            {"name": "Taken", "url": "http://x y.example/", "event_types": ["points_earned", "x"]},
            [("name", "taken"), ("url", "invalid"), ("event_types.1", "invalid")],
        ),
    ):
        refused = client.patch(f"{URL}/{sub}", json=change, headers=admin)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        errors = [(e["field"], e["code"]) for e in refused.json()["errors"]]
        assert errors == expected, change
        assert refused.json()["field"] == expected[0][0]
    # nothing changed by any of them
    assert client.get(f"{URL}/{sub}", headers=admin).json() == before
    # a name in use alone is the 409 it is wherever a name is taken
    taken = client.patch(f"{URL}/{sub}", json={"name": "Taken"}, headers=admin)
    assert taken.status_code == 409, taken.text
    # a good change still applies
    renamed = client.patch(f"{URL}/{sub}", json={"name": "CRM 2"}, headers=admin)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "CRM 2"
