"""GET /v1/recommendations and the rules and models endpoints over HTTP."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.platform import clock
from rapport.platform.settings import Settings
from rapport.recommend import service
from tests.conftest import auth, command

from .factories import NOW, seed_shop


@pytest.fixture
def shop(db: Session, settings: Settings) -> dict[str, str]:
    clock.set_clock(clock.FrozenClock(NOW))
    ids = seed_shop(db)
    service.train_model(db, data_dir=settings.data_dir, trained_by="test")
    return ids


def test_recommendations_answer_items_with_explanations(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    response = client.get(
        "/v1/recommendations",
        params={"placement": "product_complements", "item_id": "W-CHIANTI", "limit": 2},
        headers=auth(api_key("read")),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["placement"] == "product_complements"
    assert body["personalized"] is False
    assert [i["sku"] for i in body["items"]] == ["K-GLASS", "K-CORK"]
    assert body["items"][0]["explanation"] == "Often bought with Chianti Classico"


def test_cart_items_are_repeated_query_keys(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    response = client.get(
        "/v1/recommendations?placement=cart&cart=W-RIOJA&cart=K-CORK",
        headers=auth(api_key("read")),
    )
    assert response.status_code == 200
    found = [i["sku"] for i in response.json()["items"]]
    assert "W-RIOJA" not in found
    assert "K-CORK" not in found


def test_a_cart_joined_with_commas_is_the_same_cart(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    # given the same two cart items, as repeated keys and joined with a comma (SKUs hold none)
    def complements(query: str) -> list[str]:
        response = client.get(f"/v1/recommendations?{query}", headers=auth(api_key("read")))
        assert response.status_code == 200
        return [i["sku"] for i in response.json()["items"]]

    repeated = complements("placement=cart&cart=W-RIOJA&cart=K-CORK")
    joined = complements("placement=cart&cart=W-RIOJA,%20K-CORK")

    # then both answer the same complements, and neither shows what is in the cart
    assert repeated
    assert joined == repeated


def test_a_cart_of_more_than_a_hundred_items_is_refused(client: TestClient, api_key) -> None:
    skus = ",".join(f"SKU-{n}" for n in range(101))
    response = client.get(
        f"/v1/recommendations?placement=cart&cart={skus}", headers=auth(api_key("read"))
    )
    assert response.status_code == 422
    assert response.json()["field"] == "cart"
    assert "at most 100 cart items" in response.json()["detail"]
    too_long = client.get(
        f"/v1/recommendations?placement=cart&cart=W-RIOJA,{'X' * 65}", headers=auth(api_key("read"))
    )
    assert too_long.status_code == 422
    assert too_long.json()["field"] == "cart"


def test_keys_without_read_scope_are_refused(client: TestClient, api_key) -> None:
    assert client.get("/v1/recommendations?placement=home").status_code == 401
    response = client.get("/v1/recommendations?placement=home", headers=auth(api_key("ingest")))
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("placement=sofa", "placement"),
        ("placement=product_similar", "item_id"),
        ("placement=cart", "cart"),
        ("placement=home&limit=0", "limit"),
        ("placement=home&lat=123", "lat"),
        ("placement=home&at=yesterday", "at"),
    ],
)
def test_bad_requests_name_the_field(client: TestClient, api_key, query: str, field: str) -> None:
    response = client.get(f"/v1/recommendations?{query}", headers=auth(api_key("read")))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.json()["detail"] or response.json().get("field") == field


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("lat=48.85", "lon", "lat and lon go together: give both, or neither"),
        ("lon=2.35", "lat", "lat and lon go together: give both, or neither"),
        (
            "device=toaster",
            "device",
            "Input should be 'mobile', 'tablet', 'app', 'desktop' or 'pos'",
        ),
    ],
)
def test_half_a_point_and_an_unknown_device_are_refused_naming_the_parameter(
    client: TestClient, api_key, shop: dict[str, str], query: str, field: str, message: str
) -> None:
    # given a latitude without its longitude (or the other way), or a device the docs do not list
    response = client.get(
        f"/v1/recommendations?placement=home&{query}", headers=auth(api_key("read"))
    )
    # then it is refused, naming the parameter to fix, rather than quietly ignored
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"] == field
    assert problem["detail"] == f"{field}: {message}"


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("placement=home&customer_id={c1}&anonymous_id=anon-1", "anonymous_id", "not both"),
        ("placement=home&item_id=W-CHIANTI", "item_id", "home takes no item_id"),
        ("placement=discover&item_id=W-CHIANTI", "item_id", "discover takes no item_id"),
        ("placement=email&item_id=W-CHIANTI", "item_id", "email takes no item_id"),
        ("placement=cart&cart=K-CORK&item_id=W-CHIANTI", "item_id", "send it in cart"),
        ("placement=home&store_id=st-par-01&lat=48.85&lon=2.35", "lat", "not both"),
    ],
)
def test_a_parameter_the_placement_would_not_read_is_refused_saying_what_to_send(
    client: TestClient, api_key, shop: dict[str, str], query: str, field: str, says: str
) -> None:
    # given a parameter the answer would silently not read
    response = client.get(
        f"/v1/recommendations?{query.format(**shop)}", headers=auth(api_key("read"))
    )
    # then it is refused, naming it and saying what to send instead
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"] == field
    assert says in problem["detail"]


def test_both_halves_of_a_point_and_a_listed_device_in_any_case_are_taken(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    headers = auth(api_key("read"))
    for query in ("lat=48.85&lon=2.35", "device=mobile", "device=Desktop"):
        response = client.get(f"/v1/recommendations?placement=home&{query}", headers=headers)
        assert response.status_code == 200, (query, response.text)


def test_the_devices_taken_are_those_ranking_knows() -> None:
    from typing import get_args

    from rapport.recommend.ranking import DEVICE_CHANNELS
    from rapport.recommend.schemas import Device

    assert get_args(Device) == tuple(DEVICE_CHANNELS)


def test_unknown_customer_store_and_product_are_not_found(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    headers = auth(api_key("read"))
    for query, field in [
        ("placement=home&customer_id=cus_nobody", "customer_id"),
        ("placement=home&store_id=st-nowhere", "store_id"),
        ("placement=product_similar&item_id=NOPE", "item_id"),
    ]:
        response = client.get(f"/v1/recommendations?{query}", headers=headers)
        assert response.status_code == 404, query
        assert response.json()["field"] == field


def test_rules_are_created_once_per_idempotency_key_and_audited(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    headers = {**auth(api_key("read", "write")), "Idempotency-Key": "rule-1"}
    rule = {"name": "Montepulciano first", "action": "pin", "sku": "W-MONTE", "position": 1}
    first = client.post("/v1/recommendations/rules", json=rule, headers=headers)
    again = client.post("/v1/recommendations/rules", json=rule, headers=headers)
    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert len(client.get("/v1/recommendations/rules", headers=headers).json()["items"]) == 1
    home = client.get("/v1/recommendations?placement=home", headers=headers).json()
    assert home["items"][0]["sku"] == "W-MONTE"
    assert home["items"][0]["reason"] == "pinned"
    rule_id = first.json()["id"]
    changed = client.put(
        f"/v1/recommendations/rules/{rule_id}",
        json={**rule, "position": 2},
        headers={**headers, "Idempotency-Key": "rule-1-update"},
    )
    assert changed.json()["position"] == 2
    deleted = client.delete(f"/v1/recommendations/rules/{rule_id}", headers=headers)
    assert deleted.status_code == 204
    assert "content-type" not in deleted.headers  # no body, so no claim of JSON
    changes = client.get(f"/v1/recommendations/rules/{rule_id}/changes", headers=headers).json()
    assert [c["change"] for c in changes] == ["deleted", "updated", "created"]
    # a new rule never takes the deleted one's id, so its trail holds only its own changes
    # (SQLite gave the highest deleted id to the next row)
    other = {"name": "No corkscrews", "action": "exclude", "sku": "W-MONTE"}
    new = client.post(
        "/v1/recommendations/rules", json=other, headers={**headers, "Idempotency-Key": "rule-2"}
    ).json()
    assert new["id"] != rule_id
    trail = client.get(f"/v1/recommendations/rules/{new['id']}/changes", headers=headers).json()
    assert [c["change"] for c in trail] == ["created"]


def test_a_rule_that_never_existed_has_no_changes_and_a_deleted_one_keeps_them(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    headers = {**auth(api_key("read", "write")), "Idempotency-Key": "rule-gone"}
    # a rule that never existed: its changes are 404 naming rule_id, as PUT and DELETE are
    rule = {"name": "No sofas", "action": "exclude", "sku": "H-SOFA"}
    for method, path, body in (
        ("GET", "/v1/recommendations/rules/999/changes", None),
        ("PUT", "/v1/recommendations/rules/999", rule),
        ("DELETE", "/v1/recommendations/rules/999", None),
    ):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 404, (method, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["field"] == "rule_id"
        assert response.json()["detail"] == "rule 999 not found"
    # a deleted rule: its changes are still there, and editing it says it was deleted
    rule_id = client.post("/v1/recommendations/rules", json=rule, headers=headers).json()["id"]
    assert client.delete(f"/v1/recommendations/rules/{rule_id}", headers=headers).status_code == 204
    changes = client.get(f"/v1/recommendations/rules/{rule_id}/changes", headers=headers)
    assert changes.status_code == 200
    assert [c["change"] for c in changes.json()] == ["deleted", "created"]
    for method, body in (("PUT", rule), ("DELETE", None)):
        response = client.request(
            method,
            f"/v1/recommendations/rules/{rule_id}",
            json=body,
            headers={**headers, "Idempotency-Key": f"gone-{method}"},
        )
        assert response.status_code == 404
        assert response.json()["field"] == "rule_id"
        assert response.json()["detail"] == (
            f"rule {rule_id} was deleted; its changes are still listed"
        )


def test_a_rule_put_unchanged_records_no_change(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    headers = auth(api_key("read", "write"))
    rule = {
        "name": "Wine up",
        "action": "boost",
        "attribute": "category",
        "value": "Wine",
        "factor": 2,
        "starts_at": "2026-12-08T00:00:30.5+02:00",
    }
    created = client.post("/v1/recommendations/rules", json=rule, headers=command(headers)).json()
    path = f"/v1/recommendations/rules/{created['id']}"
    # the same settings again, the moment given at UTC this time: the same instant
    same = {**rule, "starts_at": "2026-12-07T22:00:30.5Z"}
    again = client.put(path, json=same, headers=command(headers))
    assert again.status_code == 200
    assert again.json()["updated_at"] == created["updated_at"]
    changes = client.get(f"{path}/changes", headers=headers).json()
    assert [c["change"] for c in changes] == ["created"]


def test_an_item_pinned_by_two_rules_is_shown_once_where_the_placements_pin_puts_it(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    # given one pin for every placement and one for home, of the same product
    headers = auth(api_key("read", "write"))
    pin = {"name": "Montepulciano", "action": "pin", "sku": "W-MONTE"}
    for n, body in enumerate(({**pin, "position": 1}, {**pin, "position": 3, "placement": "home"})):
        created = client.post(
            "/v1/recommendations/rules", json=body, headers={**headers, "Idempotency-Key": f"p{n}"}
        )
        assert created.status_code == 201, created.json()
    # when home is asked for
    home = client.get("/v1/recommendations?placement=home&limit=4", headers=headers).json()
    # then the product is there once, where the home pin puts it, and the list is full
    found = [i["sku"] for i in home["items"]]
    assert found.count("W-MONTE") == 1
    assert found.index("W-MONTE") == 2
    assert len(found) == 4
    # and elsewhere the pin for every placement puts it first
    email = client.get("/v1/recommendations?placement=email&limit=4", headers=headers).json()
    assert [i["sku"] for i in email["items"]].count("W-MONTE") == 1
    assert email["items"][0]["sku"] == "W-MONTE"


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        (
            {"action": "boost", "attribute": "category", "value": "Wine"},
            "factor",
            "boost needs factor",
        ),
        ({"action": "pin", "sku": "W-MONTE"}, "position", "a pin needs sku and position"),
        ({"action": "pin", "position": 1}, "sku", "a pin needs sku and position"),
        ({"action": "exclude", "attribute": "brand"}, "value", "attribute and value go together"),
        ({"action": "filter"}, "attribute", "filter needs attribute and value"),
        (
            {
                "action": "exclude",
                "sku": "W-MONTE",
                "starts_at": "2026-12-02T00:00:00Z",
                "ends_at": "2026-12-01T00:00:00Z",
            },
            "ends_at",
            "must be after starts_at",
        ),
    ],
)
def test_an_incomplete_rule_is_refused_naming_the_field_to_fix(
    client: TestClient, api_key, rule: dict[str, object], field: str, message: str
) -> None:
    # given a rule whose fields do not fit together (each field fine on its own)
    headers = auth(api_key("read", "write"))
    response = client.post(
        "/v1/recommendations/rules", json={"name": "Draft", **rule}, headers=headers
    )
    # then the refusal names the field to fix, in the rule's own words, not the whole body
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == field
    assert problem["errors"][0]["pointer"] == f"/{field}"
    assert problem["detail"] == f"{field}: {message}"
    # and nothing is saved
    assert client.get("/v1/recommendations/rules", headers=headers).json()["items"] == []


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        (
            {"action": "pin", "sku": "W-MONTE", "position": 1, "attribute": "brand", "value": "X"},
            "attribute",
            "pin takes no attribute: a pin places one sku",
        ),
        (
            {"action": "pin", "sku": "W-MONTE", "position": 1, "factor": 2},
            "factor",
            "pin takes no factor: only boost and bury have one",
        ),
        (
            {
                "action": "boost",
                "attribute": "category",
                "value": "Wine",
                "factor": 2,
                "position": 3,
            },
            "position",
            "boost takes no position: only a pin has one",
        ),
        (
            {"action": "bury", "sku": "W-MONTE", "factor": 2, "position": 3},
            "position",
            "bury takes no position: only a pin has one",
        ),
        (
            {"action": "exclude", "sku": "W-MONTE", "factor": 2},
            "factor",
            "exclude takes no factor: only boost and bury have one",
        ),
        (
            {"action": "filter", "attribute": "category", "value": "Wine", "sku": "W-MONTE"},
            "sku",
            "filter takes no sku: a filter keeps the items whose attribute has a value",
        ),
    ],
)
def test_a_rule_with_a_setting_its_action_ignores_is_refused_naming_it(
    client: TestClient, api_key, shop: dict[str, str], rule: dict[str, object], field: str,
    message: str,
) -> None:  # fmt: skip
    # given a rule with a setting its action does not take (it would be kept and shown, and
    # do nothing)
    headers = {**auth(api_key("read", "write")), "Idempotency-Key": f"extra-{field}"}
    response = client.post(
        "/v1/recommendations/rules", json={"name": "Draft", **rule}, headers=headers
    )
    # then it is refused, naming that setting, and nothing is saved
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == field
    assert problem["errors"][0]["pointer"] == f"/{field}"
    assert problem["detail"] == f"{field}: {message}"
    assert client.get("/v1/recommendations/rules", headers=headers).json()["items"] == []
    # and without it the same rule is taken
    without = {
        k: v
        for k, v in rule.items()
        if k not in (field, "value" if field == "attribute" else field)
    }
    taken = client.post(
        "/v1/recommendations/rules",
        json={"name": "Draft", **without},
        headers={**headers, "Idempotency-Key": f"fixed-{field}"},
    )
    assert taken.status_code == 201, taken.json()


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"sku": "W-MONTEE"}, "sku", "No product 'W-MONTEE' in the catalogue"),
        ({"segment": "platinum"}, "segment", "use customers, anonymous or a loyalty tier id"),
    ],
)
def test_a_rule_that_could_never_apply_is_refused_naming_its_field(
    client: TestClient, api_key, shop: dict[str, str], change: dict[str, str], field: str,
    words: str,
) -> None:  # fmt: skip
    # given a pin that names a mistyped product, or a segment that does not exist
    headers = {**auth(api_key("read", "write")), "Idempotency-Key": f"typo-{field}"}
    rule = {"name": "Montepulciano first", "action": "pin", "sku": "W-MONTE", "position": 1}
    response = client.post("/v1/recommendations/rules", json={**rule, **change}, headers=headers)
    # then it is refused, naming the field and what to do, and nothing is saved
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    assert client.get("/v1/recommendations/rules", headers=headers).json()["items"] == []
    # and a rule already saved cannot be changed into one either
    saved = client.post(
        "/v1/recommendations/rules", json=rule, headers={**headers, "Idempotency-Key": "ok"}
    )
    assert saved.status_code == 201
    changed = client.put(
        f"/v1/recommendations/rules/{saved.json()['id']}",
        json={**rule, **change},
        headers={**headers, "Idempotency-Key": "ok-update"},
    )
    assert changed.status_code == 422
    assert changed.json()["field"] == field
    kept = client.get("/v1/recommendations/rules", headers=headers).json()["items"]
    assert [(r["sku"], r["segment"]) for r in kept] == [("W-MONTE", None)]


def test_rules_need_the_write_scope(client: TestClient, api_key) -> None:
    rule = {"name": "No sofas", "action": "exclude", "sku": "H-SOFA"}
    response = client.post("/v1/recommendations/rules", json=rule, headers=auth(api_key("read")))
    assert response.status_code == 403


def test_models_list_versions_and_training_is_queued_once(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    headers = auth(api_key("read", "write"))
    versions = client.get("/v1/recommendations/models", headers=headers).json()
    assert len(versions) == 1
    assert versions[0]["active"] is True
    assert versions[0]["customers"] == 12
    first = client.post("/v1/recommendations/models", headers=command(headers))
    second = client.post("/v1/recommendations/models", headers=command(headers))
    assert first.status_code == 202
    assert second.json()["job_id"] == first.json()["job_id"]


def test_training_takes_no_body_and_refuses_a_field(
    client: TestClient, api_key, shop: dict[str, str], db: Session
) -> None:
    from rapport.platform.models import Job

    headers = auth(api_key("read", "write"))
    # a field is refused, naming it, as every other /v1 body refuses an unknown field
    refused = client.post("/v1/recommendations/models", json={"foo": 1}, headers=command(headers))
    assert refused.status_code == 422
    assert refused.json()["field"] == "foo"
    assert "Unknown field" in refused.json()["detail"]
    # and nothing is queued
    assert db.query(Job).filter(Job.kind == service.TRAIN_JOB).count() == 0
    # no body, or an empty object, queues the run
    for body in ({}, None):
        taken = client.post("/v1/recommendations/models", json=body, headers=command(headers))
        assert taken.status_code == 202
    assert db.query(Job).filter(Job.kind == service.TRAIN_JOB).count() == 1


def _history(db: Session, customer_id: str) -> set[str]:
    from rapport.orders import service as orders

    return set(orders.recently_bought(db, customer_id=customer_id, since=NOW.replace(year=2000)))


@pytest.mark.parametrize("query", ["placement=discover", "placement=home&exclude_purchased=true"])
def test_discovery_never_shows_what_the_customer_bought(
    client: TestClient, api_key, shop: dict[str, str], db: Session, query: str
) -> None:
    # c1 buys coffee every week, red wine and a corkscrew: a home page leads with them
    home = client.get(
        f"/v1/recommendations?placement=home&customer_id={shop['c1']}&limit=20",
        headers=auth(api_key("read")),
    ).json()
    bought = _history(db, shop["c1"])
    assert bought & {i["sku"] for i in home["items"]}
    response = client.get(
        f"/v1/recommendations?{query}&customer_id={shop['c1']}&limit=20",
        headers=auth(api_key("read")),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["personalized"] is True
    found = {i["sku"] for i in body["items"]}
    assert found, "there are items c1 never bought"
    assert not found & bought
    assert "buy_again" not in {i["reason"] for i in body["items"]}


def test_exclude_purchased_must_be_a_boolean(client: TestClient, api_key) -> None:
    response = client.get(
        "/v1/recommendations?placement=home&exclude_purchased=maybe",
        headers=auth(api_key("read")),
    )
    assert response.status_code == 422
    assert "exclude_purchased" in response.text


@pytest.mark.parametrize(
    ("query", "field", "detail"),
    [
        ("margin_weight=nan", "margin_weight", "Input should be a number from 0 to 1"),
        ("margin_weight=1.5", "margin_weight", "Input should be a number from 0 to 1"),
        ("lat=nan&lon=nan", "lat", "Input should be a number from -90 to 90 (and 1 more)"),
        ("lat=48.85&lon=NaN", "lon", "Input should be a number from -180 to 180"),
        ("lat=inf&lon=2.35", "lat", "Input should be a number from -90 to 90"),
    ],
)
def test_a_number_out_of_range_or_nan_is_told_the_whole_range(
    client: TestClient, api_key, query: str, field: str, detail: str
) -> None:
    # given NaN (which compares as neither below nor above a bound) or a number out of range
    response = client.get(
        f"/v1/recommendations?placement=home&{query}", headers=auth(api_key("read"))
    )
    # then the problem names the parameter and says it must be a number in the range
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == field
    assert problem["detail"] == f"{field}: {detail}"


@pytest.mark.parametrize(
    "at",
    [
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2026-06-02T12:00:01Z",
        "9999-12-31T23:59:59Z",
    ],
)
def test_a_moment_before_1970_or_over_a_day_ahead_is_refused_naming_at(
    client: TestClient, api_key, shop: dict[str, str], at: str
) -> None:
    # given a consenting customer (whose browsing is read back from `at`) and a moment far off
    response = client.get(
        "/v1/recommendations",
        params={"placement": "home", "customer_id": shop["c1"], "at": at},
        headers=auth(api_key("read")),
    )
    # then it is a 422 naming `at`, not a server error
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == "at"
    assert problem["detail"] == (
        "at: Input should be a moment from 1970-01-01T00:00:00Z to a day after now"
    )


@pytest.mark.parametrize("at", ["1970-01-01T00:00:00Z", "2026-06-02T12:00:00Z"])
def test_a_moment_from_1970_to_a_day_ahead_is_answered(
    client: TestClient, api_key, shop: dict[str, str], at: str
) -> None:
    response = client.get(
        "/v1/recommendations",
        params={"placement": "home", "customer_id": shop["c1"], "at": at},
        headers=auth(api_key("read")),
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"]


def test_a_put_replaces_the_whole_rule_and_the_reference_says_so(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    headers = auth(api_key("read", "write"))
    # given a disabled rule
    rule = {"name": "Rioja up", "action": "boost", "sku": "W-RIOJA", "factor": 2, "active": False}
    created = client.post("/v1/recommendations/rules", json=rule, headers=command(headers)).json()
    # when it is replaced by a body without `active`
    without_active = {k: v for k, v in rule.items() if k != "active"} | {"factor": 3}
    replaced = client.put(
        f"/v1/recommendations/rules/{created['id']}", json=without_active, headers=command(headers)
    )
    # then it is active again, as the reference tells integrators
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["active"] is True
    route = client.get("/openapi.json").json()["paths"]["/v1/recommendations/rules/{rule_id}"]
    description = route["put"]["description"]
    assert "Replace the whole rule" in description
    assert "leaving out `active` switches a disabled rule back on" in description


def test_every_setting_naming_what_does_not_exist_is_in_the_problems_errors(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    # given a filter on 'wine' (the category is 'Wine') for a segment that does not exist
    headers = {**auth(api_key("read", "write")), "Idempotency-Key": "two-wrongs"}
    rule = {
        "name": "Wine only",
        "action": "filter",
        "attribute": "category",
        "value": "wine",
        "segment": "platinum",
    }
    response = client.post("/v1/recommendations/rules", json=rule, headers=headers)
    # then both are named, the first as the problem's field, and nothing is saved
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "value"
    assert [e["pointer"] for e in problem["errors"]] == ["/value", "/segment"]
    assert "use 'Wine'" in problem["errors"][0]["message"]
    assert problem["detail"].endswith("(and 1 more)")
    assert client.get("/v1/recommendations/rules", headers=headers).json()["items"] == []


def test_a_category_value_is_stored_without_a_trailing_slash(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    headers = {**auth(api_key("read", "write")), "Idempotency-Key": "slash"}
    rule = {"name": "Reds", "action": "filter", "attribute": "category", "value": "Wine/Red/"}
    created = client.post("/v1/recommendations/rules", json=rule, headers=headers)
    assert created.status_code == 201, created.json()
    assert created.json()["value"] == "Wine/Red"
    path = f"/v1/recommendations/rules/{created.json()['id']}"
    updated = client.put(path, json={**rule, "value": "Wine/"}, headers=command(headers))
    assert updated.json()["value"] == "Wine"
    # a path of nothing but slashes is refused naming the value
    refused = client.put(path, json={**rule, "value": "/"}, headers=command(headers))
    assert refused.status_code == 422
    assert refused.json()["field"] == "value"
    # a brand is kept as written
    brand = {"name": "B", "action": "exclude", "attribute": "brand", "value": "Castello"}
    assert client.put(path, json=brand, headers=command(headers)).json()["value"] == "Castello"


@pytest.mark.parametrize("who", ["", "&anonymous_id=visitor-unknown"])
def test_exclude_purchased_for_an_anonymous_visitor_is_the_answer_without_it(
    client: TestClient, api_key, shop: dict[str, str], who: str
) -> None:
    # given a visitor nobody knows (no customer, or an anonymous id linked to none)
    ask = f"/v1/recommendations?placement=home&limit=20{who}"

    # when they ask with and without exclude_purchased
    plain = client.get(ask, headers=auth(api_key("read")))
    excluding = client.get(ask + "&exclude_purchased=true", headers=auth(api_key("read")))

    # then it is accepted and changes nothing: there is no purchase of theirs to leave out,
    # as the OpenAPI document says
    assert plain.status_code == excluding.status_code == 200, excluding.text
    assert excluding.json() == plain.json()
    assert excluding.json()["personalized"] is False
    described = next(
        parameter["description"]
        for parameter in client.get("/openapi.json").json()["paths"]["/v1/recommendations"]["get"][
            "parameters"
        ]
        if parameter["name"] == "exclude_purchased"
    )
    assert "only for a known customer" in described
