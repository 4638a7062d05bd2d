"""A template is bounded however it is written: one that would loop, build or write past the
limits is refused when saved, and one already stored (or a built-in campaign's) stops within
a second at preview (422 naming the template, the server still answering) and fails its own
delivery at send time while the others go out. A template that fails for any reason of its
author's (division by zero, adding text to a number, a bad format) is the author's 422, never
a 500."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.rendering import validate_template
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Delivery, InboxMessage
from rapport.platform.errors import InvalidInput
from tests.campaigns.delivery.factories import make_campaign, make_customer
from tests.campaigns.planning.factories import make_segment
from tests.conftest import auth

# Past a limit: every range of 99,999 rounds nested (the report's), a million rounds under the
# range cap, text a billion long, a number of a billion bits, a format a billion wide, text
# doubling in a loop, a macro writing twice what it is given twenty times over.
ENDLESS = (
    "{% for i in range(99999) %}{% for j in range(99999) %}{% if i == -1 %}x{% endif %}"
    "{% endfor %}{% endfor %}"
)
PAST_LIMITS = [
    ENDLESS,
    "{% for i in range(1000) %}{% for j in range(1000) %}{% if i == -1 %}x{% endif %}"
    "{% endfor %}{% endfor %}",
    '{{ "x" * 10**9 }}',
    "{{ 9 ** (9 ** 9) }}",
    '{{ "%1000000000d" % 1 }}',
    '{{ "{:>1000000000}".format(1) }}',
    '{{ "x"|center(1000000000) }}',
    '{% set ns = namespace(s="x") %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}'
    "{% endfor %}{{ ns.s }}",
    "{% macro twice(s) %}{{ s }}{{ s }}{% endmacro %}{{ "
    + "twice(" * 24
    + '"x"'
    + ")" * 24
    + " }}",
]
# Errors of the template's own: each a 422 saying what went wrong.
FAULTS = {
    "{{ 1/0 }}": "ZeroDivisionError",
    "{{ first_name + 1 }}": "TypeError",
    '{{ "%d" % first_name }}': "TypeError",
    "{% for i in range(100000000) %}{% endfor %}": "range() gives at most 1,000",
}


def _campaign(client: TestClient, db: Session, write: dict[str, str]) -> str:
    created = client.post(
        "/v1/campaigns",
        json={"name": "Limits", "segment_id": make_segment(db)},
        headers={**write, "Idempotency-Key": "limits-1"},
    )
    assert created.status_code == 201, created.text
    return f"/v1/campaigns/{created.json()['id']}"


@pytest.mark.parametrize("body", [*PAST_LIMITS, *FAULTS])
def test_a_template_past_the_limits_or_failing_is_refused_when_saved(
    client: TestClient, api_key, db: Session, body: str
) -> None:
    write = auth(api_key("write"))
    path = _campaign(client, db, write)
    started = time.monotonic()
    refused = client.put(
        f"{path}/templates/email/en", json={"subject": "Hi", "body": body}, headers=write
    )
    assert time.monotonic() - started < 3
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["field"] == "body"
    assert "sample customer" in refused.json()["detail"]
    subject = client.put(
        f"{path}/templates/email/en", json={"subject": body, "body": "<p>Hi</p>"}, headers=write
    )
    assert subject.status_code == 422
    assert subject.json()["field"] == "subject"


def test_templates_that_loop_over_what_messages_show_still_save() -> None:
    validate_template(
        "{{ first_name }}, {{ points }} points",
        "{% for item in recommendations %}<li>{{ loop.index }}. {{ item.name|title }}: "
        '{{ "%.2f"|format(item.price_minor / 100) }}</li>{% endfor %}'
        "{% for i in range(50) %}{{ i }}{% endfor %}"
        '{{ "{:>8}".format(tier) }} {{ "a,b"|replace(",", " and ") }} {{ 2 ** 64 }}',
    )
    # a value only the real occasion has is left to the preview, not refused on the sample
    validate_template("Hi", "{{ event.price / 100 }}", context_names=["event"], sample={})


def test_a_stored_template_past_the_limits_stops_at_preview_within_a_second(
    client: TestClient, api_key, db: Session
) -> None:
    read = auth(api_key("read"))
    person = make_customer(db)
    for body in [*PAST_LIMITS, *FAULTS]:
        # stored before limits were checked at save time (or a built-in campaign's)
        campaign = make_campaign(db, subject="Hi {{ first_name }}", body=body)
        db.commit()
        started = time.monotonic()
        answer = client.get(
            f"/v1/campaigns/{campaign.id}/preview", params={"customer_id": person}, headers=read
        )
        # the limits stop it within about a second; the margin is for a loaded machine (3.3 s
        # seen beside a full suite and eight other jobs on two cores), far below unbounded
        assert time.monotonic() - started < 6, body
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["field"] == "template"
        assert "the body of the email template 'en'" in problem["detail"]
        if body in FAULTS:
            assert FAULTS[body] in problem["detail"]
        shown = client.get(f"/v1/campaigns/{campaign.id}", headers=read)
        assert shown.status_code == 200  # the server goes on answering


def test_a_failing_subject_is_named_as_the_subject(
    client: TestClient, api_key, db: Session
) -> None:
    campaign = make_campaign(db, channel="inbox", subject="{{ 1/0 }}", body="ok")
    db.commit()
    answer = client.get(
        f"/v1/campaigns/{campaign.id}/preview",
        params={"customer_id": make_customer(db)},
        headers=auth(api_key("read")),
    )
    assert answer.status_code == 422
    assert "the subject of the inbox template 'en'" in answer.json()["detail"]


def test_a_send_past_the_limits_fails_that_delivery_and_the_others_go_out(db: Session) -> None:
    endless = make_campaign(db, channel="inbox", subject="Hi", body=ENDLESS)
    broken = make_campaign(db, channel="inbox", subject="Hi", body="{{ first_name + 1 }}")
    fine = make_campaign(db, channel="inbox", subject="Hi", body="Hello {{ first_name }}")
    people = [make_customer(db, consents={"marketing_push": True}) for _ in range(2)]
    for campaign in (endless, broken, fine):
        queue_deliveries(
            db, campaign=campaign, recipients=[Recipient(customer_id=p) for p in people]
        )
    db.commit()

    started = time.monotonic()
    assert dispatch_batch(db, limit=10, worker="w1") == 6
    assert time.monotonic() - started < 5

    def statuses(campaign_id: int) -> list[tuple[str, str]]:
        rows = db.execute(
            select(Delivery.status, Delivery.reason).where(Delivery.campaign_id == campaign_id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    for status, reason in statuses(endless.id):
        assert status == "dead"  # a template error is final
        assert "the body of the inbox template 'en': stopped: range() gives" in reason
    for status, reason in statuses(broken.id):
        assert status == "dead"  # a template error is final
        assert "TypeError" in reason
    assert [status for status, _ in statuses(fine.id)] == ["sent", "sent"]
    bodies = db.scalars(select(InboxMessage.body).where(InboxMessage.customer_id.in_(people)))
    assert sorted(bodies) == ["Hello Ada", "Hello Ada"]


def test_validate_template_names_the_field_past_a_limit() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_template("Hi", "{% for x in [1] recursive %}{{ loop(x) }}{% endfor %}")
    assert refused.value.field == "body"
    assert "recursive" in refused.value.detail


def test_a_test_send_past_the_limits_is_the_authors_422(
    client: TestClient, api_key, db: Session
) -> None:
    campaign = make_campaign(db, channel="inbox", subject="Hi", body=ENDLESS)
    db.commit()
    started = time.monotonic()
    answer = client.post(
        f"/v1/campaigns/{campaign.id}/test-send",
        json={"customer_id": make_customer(db, consents={"marketing_push": True})},
        headers={**auth(api_key("write")), "Idempotency-Key": "test-send-1"},
    )
    assert time.monotonic() - started < 2.5
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "template"
    assert "stopped: range() gives at most 1,000 numbers" in answer.json()["detail"]
