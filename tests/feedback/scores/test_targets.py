"""Targets are scores a kind can reach, for a store or channel that exists; and every page
judges a target the same way: too few answers (none included) is neither ok nor below."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.feedback.models import ScoreTarget
from rapport.platform import service as platform
from tests.conftest import auth, command
from tests.feedback.factories import frozen_clock
from tests.platform.admin_forms import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    page_form,
    post_form,
    sign_in,
    typed,
)

CES = {"survey_id": "ces-buy", "name": "CES", "kind": "ces", "trigger": "manual"}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "ces", "scope": "all", "target": -50}, "target", "A CES target is 1 to 7"),
        ({"kind": "ces", "scope": "all", "target": 50}, "target", "A CES target is 1 to 7"),
        ({"kind": "csat", "scope": "all", "target": -20}, "target", "A CSAT target is 0 to 100"),
        (
            {"kind": "nps", "scope": "store", "scope_value": "st-nope", "target": 10},
            "scope_value",
            "No store 'st-nope'",
        ),
        (
            {"kind": "nps", "scope": "channel", "scope_value": "pigeon", "target": 10},
            "scope_value",
            "use one of web, app, store",
        ),
    ],
)
def test_a_target_the_score_cannot_reach_or_for_nothing_is_refused(
    client: TestClient, api_key, db: Session, body: dict, field: str, words: str
) -> None:
    answer = client.put("/v1/feedback/targets", json=body, headers=auth(api_key("write")))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == field
    assert words in answer.json()["detail"]
    assert db.scalar(select(func.count()).select_from(ScoreTarget)) == 0


def test_the_dashboard_and_the_targets_page_judge_too_few_answers_alike(
    client: TestClient, api_key, db: Session
) -> None:
    frozen_clock()
    writer = api_key("write")
    assert client.post("/v1/feedback/surveys", json=CES, headers=command(writer)).status_code == 200
    for score in (6, 6, 6, 6, 4, 4):
        answered = client.post(
            "/v1/feedback/responses",
            json={"survey_id": "ces-buy", "score": score},
            headers=command(writer),
        )
        assert answered.status_code == 201
    # a CES target of 5.5 with 6 answers of the 10 it needs, and a CSAT one with none
    for body in (
        {"kind": "ces", "scope": "all", "target": 5.5, "min_responses": 10},
        {"kind": "csat", "scope": "all", "target": 80, "min_responses": 1},
    ):
        put = client.put("/v1/feedback/targets", json=body, headers=auth(writer))
        assert put.status_code == 200
        assert (put.json()["state"], put.json()["below"]) == ("too_few", False)
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303
    for url in ("/admin/feedback", "/admin/feedback/targets"):
        table = client.get(url).text.split('data-testid="targets"', 1)[1].split("</table>")[0]
        assert table.count("too few answers") == 2, url
        assert "ok" not in table.replace("<tbody>", ""), url
        assert "on target" not in table, url


def test_the_targets_form_refuses_a_ces_target_of_50_beside_the_field(
    client: TestClient, db: Session
) -> None:
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303
    fields = page_form(
        client.get("/admin/feedback/targets").text,
        action="/admin/feedback/targets",
        testid="target-form",
    )
    fields = typed(typed(fields, "kind", "ces"), "target", "50")
    answer = post_form(client, "/admin/feedback/targets", typed(fields, "window_days", "45"))
    assert answer.status_code == 422
    assert 'data-field-error="target">A CES target is 1 to 7' in answer.text
    kept = dict(page_form(answer.text, action="/admin/feedback/targets", testid="target-form"))
    assert (kept["kind"], kept["target"], kept["window_days"]) == ("ces", "50", "45")
    assert db.scalar(select(func.count()).select_from(ScoreTarget)) == 0
