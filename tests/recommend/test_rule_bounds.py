"""Merchandising rules stay few enough to serve fast, their factors mean something, they are
listed a page at a time, and rules saved before a check existed are flagged, not crashed on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.recommend import service
from rapport.recommend.models import MerchRule
from tests.conftest import app_committing_to, auth, command
from tests.orders.factories import run_at_once

from . import test_admin
from .factories import NOW, seed_shop

signed_in = test_admin.signed_in  # an admin signed in (a fixture)


def _stored(db: Session, count: int, **settings: Any) -> list[MerchRule]:
    """``count`` rules written as they were stored before today's checks (straight to the
    table, bypassing them)."""
    rules = [
        MerchRule(
            **{
                "name": f"Stored {n}",
                "action": "exclude",
                "sku": "H-SOFA",
                "active": True,
                **settings,
            },
            created_by="earlier",
            created_at=NOW,
            updated_by="earlier",
            updated_at=NOW,
        )
        for n in range(count)
    ]
    db.add_all(rules)
    db.commit()
    return rules


BOOST = {"name": "Wine up", "action": "boost", "attribute": "category", "value": "Wine"}


def test_a_rule_switched_on_beyond_the_most_allowed_is_409_saying_what_to_do(
    client: TestClient, api_key, db: Session
) -> None:
    seed_shop(db)
    headers = command(api_key("write"))
    # given as many rules on as there may be
    stored = _stored(db, service.MAX_ACTIVE_RULES)
    # when another is added on
    response = client.post(
        "/v1/recommendations/rules", json={**BOOST, "factor": 2}, headers=headers
    )
    # then it is refused, naming active and saying how to make room
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"] == "active"
    assert f"the most there may be ({service.MAX_ACTIVE_RULES})" in problem["detail"]
    assert "Switch off (active false) or delete rules" in problem["detail"]
    assert "merge rules" in problem["detail"]
    # and one saved off is taken, but switching it on is refused too
    off = client.post(
        "/v1/recommendations/rules",
        json={**BOOST, "factor": 2, "active": False},
        headers=command(api_key("write")),
    )
    assert off.status_code == 201
    rule_id = off.json()["id"]
    on = client.put(
        f"/v1/recommendations/rules/{rule_id}",
        json={**BOOST, "factor": 2, "active": True},
        headers=command(api_key("write")),
    )
    assert (on.status_code, on.json()["field"]) == (409, "active")
    # while a rule already on is still edited freely
    kept = client.put(
        f"/v1/recommendations/rules/{stored[0].id}",
        json={"name": "Renamed", "action": "exclude", "sku": "H-SOFA"},
        headers=command(api_key("write")),
    )
    assert kept.status_code == 200
    # once one is switched off, the new one goes on
    service.delete_rule(db, rule_id=stored[1].id, by="test")
    on = client.put(
        f"/v1/recommendations/rules/{rule_id}",
        json={**BOOST, "factor": 2, "active": True},
        headers=command(api_key("write")),
    )
    assert on.status_code == 200


def test_the_rules_list_pages_by_cursor(client: TestClient, api_key, db: Session) -> None:
    seed_shop(db)
    made = [rule.id for rule in _stored(db, 5)]
    headers = auth(api_key("read"))
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/recommendations/rules", params=params, headers=headers)
        assert page.status_code == 200
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (made, 3)
    # a cursor the list did not give is refused, naming it
    bad = client.get("/v1/recommendations/rules?cursor=abc", headers=headers)
    assert (bad.status_code, bad.json()["field"]) == (422, "cursor")


def test_the_rules_page_shows_a_page_of_rules_and_how_many_are_on(
    client: Any, db: Session, signed_in: None
) -> None:
    seed_shop(db)
    _stored(db, 60)
    _stored(db, 5, active=False)
    first = client.get("/admin/recommendations/rules")
    assert first.status_code == 200
    assert len(re.findall(r"<tr data-rule=", first.text)) == 50
    assert 'data-testid="pager"' in first.text
    assert f"60 of at most {service.MAX_ACTIVE_RULES} rules on" in first.text
    second = client.get("/admin/recommendations/rules?page=2")
    assert len(re.findall(r"<tr data-rule=", second.text)) == 15


@pytest.mark.parametrize(
    ("action", "factor", "says"),
    [
        ("boost", 1, "a factor this close to 1 changes (almost) nothing: use 1.1 or more"),
        ("boost", 1e-300, "to never show the items use exclude"),
        ("boost", 0.5, "to lower items use bury with 2"),
        ("bury", 0.5, "to raise items use boost with 2"),
        ("bury", 1000, "to never show the items use exclude"),
        ("boost", 1000, "to put the items first use a pin"),
        # the factor as sent, not rounded into the range it is refused for
        ("boost", 100.0001, "from 1.1 to 100, not 100.0001: to put the items first use a pin"),
        ("bury", 1.0999999, "not 1.0999999: a factor this close to 1 changes (almost) nothing"),
    ],
)
def test_a_factor_that_means_nothing_or_hides_is_422_saying_what_to_use(
    client: TestClient, api_key, db: Session, action: str, factor: float, says: str
) -> None:
    seed_shop(db)
    rule = {**BOOST, "action": action, "factor": factor}
    response = client.post(
        "/v1/recommendations/rules", json=rule, headers=command(api_key("write"))
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "factor"
    assert "from 1.1 to 100" in problem["detail"]
    assert says in problem["detail"]


@pytest.mark.parametrize("factor", [1.1, 2, 100])
def test_a_factor_in_range_is_taken(
    client: TestClient, api_key, db: Session, factor: float
) -> None:
    seed_shop(db)
    rule = {**BOOST, "factor": factor}
    response = client.post(
        "/v1/recommendations/rules", json=rule, headers=command(api_key("write"))
    )
    assert response.status_code == 201


def test_rules_saved_before_the_checks_load_serve_and_are_flagged_on_the_rules_page(
    client: Any, db: Session, signed_in: None, api_key, settings: Any
) -> None:
    clock.set_clock(clock.FrozenClock(NOW))
    seed_shop(db)
    service.train_model(db, data_dir=settings.data_dir, trained_by="test")
    # given rules saved before factors were bounded and values checked
    hidden, no_value, fine = (
        _stored(db, 1, name="Hidden", action="boost", sku=None, attribute="category",
                value="Wine", factor=1e-300)[0],
        _stored(db, 1, name="Typo", sku=None, attribute="category", value="wine")[0],
        _stored(db, 1, name="Fine", action="bury", sku="H-SOFA", factor=2.0)[0],
    )  # fmt: skip
    # then the API still lists them, as saved
    listed = client.get("/v1/recommendations/rules", headers=auth(api_key("read")))
    assert listed.status_code == 200
    assert [r["factor"] for r in listed.json()["items"]] == [1e-300, None, 2.0]
    # and recommendations are still served
    served = client.get("/v1/recommendations?placement=home", headers=auth(api_key("read")))
    assert served.status_code == 200
    # and the rules page flags each one's problem beside it, the fine one not at all
    page = client.get("/admin/recommendations/rules")
    assert page.status_code == 200

    def flags(rule: MerchRule) -> list[str]:
        row = re.search(rf'<tr data-rule="{rule.id}">(.*?)</tr>', page.text, re.S)
        assert row is not None
        return re.findall(r'data-testid="rule-problem">([^<]+)<', row.group(1))

    assert flags(hidden) == [
        "boost multiplies the score by a factor from 1.1 to 100, not 1e-300: to never show the "
        "items use exclude; edit the rule to fix it"
    ]
    [typo] = flags(no_value)
    assert typo.startswith("No product in the catalogue has category &#39;wine&#39;")
    assert "use &#39;Wine&#39;" in typo
    assert flags(fine) == []


def test_rules_switched_on_at_the_same_moment_never_pass_the_most_allowed(
    committed_url: str, tmp_path: Path
) -> None:
    # given two rules fewer on than there may be
    with open_session(committed_url) as db:
        seed_shop(db)
        _stored(db, service.MAX_ACTIVE_RULES - 2)
        secret = platform.create_api_key(
            db, name="rules race", scopes=[platform.Scope("write")]
        ).secret
    application = app_committing_to(committed_url, tmp_path, secret_key="rules-race-secret")
    with TestClient(application, raise_server_exceptions=False) as http:

        def post() -> str:
            answer = http.post(
                "/v1/recommendations/rules", json={**BOOST, "factor": 2}, headers=command(secret)
            )
            return str(answer.status_code)

        # when four rules are added on at the same moment
        answers = run_at_once(*[post] * 4)
    # then two are taken, the others 409, and no more than the most allowed are on
    assert sorted(answers) == ["201", "201", "409", "409"], answers
    with open_session(committed_url) as db:
        assert service.count_rules(db)[1] == service.MAX_ACTIVE_RULES
