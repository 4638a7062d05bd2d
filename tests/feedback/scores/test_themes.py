"""A comment theme's figure is on one scale: the share of its comments that came with an
unhappy answer (NPS 0-6, CSAT 1-2, CES 1-2), and a mean value only over one kind of survey,
where CES 1s and CSAT 5s were averaged into 50.5."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.platform import service as platform
from tests.conftest import auth, command
from tests.feedback.factories import frozen_clock
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in


def _answers(client: TestClient, writer: str) -> None:
    for kind in ("ces", "csat"):
        survey = {"survey_id": f"t-{kind}", "name": kind, "kind": kind, "trigger": "manual"}
        assert (
            client.post("/v1/feedback/surveys", json=survey, headers=command(writer)).status_code
            == 200
        )
    for survey_id, score in [("t-ces", 1)] * 3 + [("t-csat", 5)] * 3:
        answered = client.post(
            "/v1/feedback/responses",
            json={"survey_id": survey_id, "score": score, "comment": "checkout zebra impossible"},
            headers=command(writer),
        )
        assert answered.status_code == 201


def _zebra(themes: list[dict]) -> dict:
    [found] = [t for t in themes if t["phrase"] == "zebra"]
    return {k: found[k] for k in ("mentions", "kind", "mean_value", "unhappy_share")}


def test_a_theme_mentioned_by_two_kinds_of_survey_has_no_mixed_mean(
    client: TestClient, api_key, db: Session
) -> None:
    frozen_clock()
    _answers(client, api_key("write"))
    reader = auth(api_key("read"))
    both = client.get("/v1/feedback/themes", headers=reader)
    assert both.status_code == 200
    assert _zebra(both.json()) == {
        "mentions": 6,
        "kind": None,
        "mean_value": None,
        "unhappy_share": 50.0,
    }
    ces = client.get("/v1/feedback/themes?kind=ces", headers=reader).json()
    assert _zebra(ces) == {"mentions": 3, "kind": "ces", "mean_value": 1.0, "unhappy_share": 100.0}
    csat = client.get("/v1/feedback/themes?kind=csat", headers=reader).json()
    assert _zebra(csat) == {
        "mentions": 3,
        "kind": "csat",
        "mean_value": 100.0,
        "unhappy_share": 0.0,
    }
    # the dashboard shows the unhappy share, and no score for the mixed theme
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303
    table = client.get("/admin/feedback").text.split('data-testid="themes"', 1)[1]
    row = table.split("zebra", 1)[1].split("</tr>", 1)[0]
    assert "50%" in row
    assert "mixed" in row
    assert "50.5" not in row
