"""The loyalty API: commands with idempotency keys, scopes, problem+json, member and statement."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rapport.customers import service as customers
from rapport.loyalty import service as loyalty
from rapport.platform import clock, idempotency
from tests.conftest import auth
from tests.loyalty.factories import make_customer


@pytest.fixture
def writer(api_key):  # type: ignore[no-untyped-def]
    return auth(api_key("write"))


def _post(client, path, body, headers, key):  # type: ignore[no-untyped-def]
    return client.post(
        f"/v1/loyalty/members/{path}", json=body, headers={**headers, "Idempotency-Key": key}
    )


def test_earn_then_redeem_over_http(client, db, writer) -> None:
    # given a customer
    customer_id = make_customer(db)
    # when they earn 100 and redeem 30
    earned = _post(
        client,
        f"{customer_id}/earn",
        {"points": 100, "reason": "Order O-1", "order_id": "O-1", "rule_id": "base"},
        writer,
        "e-1",
    )
    redeemed = _post(client, f"{customer_id}/redeem", {"points": 30}, writer, "r-1")
    # then both are created and the balances follow
    assert earned.status_code == 201, earned.text
    assert (earned.json()["points"], earned.json()["balance"]) == (100, 100)
    assert redeemed.status_code == 201, redeemed.text
    assert (redeemed.json()["points"], redeemed.json()["balance"]) == (-30, 70)
    # and the member and statement show it
    reader = auth_reader(client, db)
    member = client.get(f"/v1/loyalty/members/{customer_id}", headers=reader).json()
    assert (member["balance"], member["debt"]) == (70, 0)
    assert [(lot["amount"], lot["remaining"]) for lot in member["lots"]] == [(100, 70)]
    statement = client.get(f"/v1/loyalty/members/{customer_id}/statement", headers=reader)
    assert [(m["kind"], m["points"], m["order_id"]) for m in statement.json()["items"]] == [
        ("redeem", -30, None),
        ("earn", 100, "O-1"),
    ]
    assert statement.json()["next_cursor"] is None


def test_the_member_lists_the_soonest_expiring_lots_and_counts_the_rest(client, db) -> None:  # type: ignore[no-untyped-def]
    customer_id = make_customer(db)
    start = clock.now() + timedelta(days=30)
    for n in range(25):  # each later order's points expire sooner
        loyalty.earn(
            db,
            customer_id=customer_id,
            points=n + 1,
            reason=f"Order O-{n}",
            order_id=f"O-{n}",
            expires_at=start + timedelta(days=25 - n),
        )
    member = client.get(f"/v1/loyalty/members/{customer_id}", headers=auth_reader(client, db))
    assert member.status_code == 200
    # then 20 lots come, soonest to expire first, and the 5 others are counted
    lots = member.json()["lots"]
    assert [lot["order_id"] for lot in lots] == [f"O-{n}" for n in range(24, 4, -1)]
    assert member.json()["more_lots"] == 5
    assert member.json()["balance"] == sum(range(1, 26))


def auth_reader(client, db):  # type: ignore[no-untyped-def]
    from rapport.platform import service as platform

    return auth(platform.create_api_key(db, name="reader", scopes=[platform.Scope.READ]).secret)


def test_a_retry_with_the_same_key_is_answered_not_applied(client, db, writer) -> None:
    customer_id = make_customer(db)
    body = {"points": 50, "reason": "Order"}
    first = _post(client, f"{customer_id}/earn", body, writer, "same")
    again = _post(client, f"{customer_id}/earn", body, writer, "same")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert loyalty.balance(db, customer_id=customer_id) == 50
    assert len(loyalty.statement(db, customer_id=customer_id)) == 1


def test_the_same_key_with_another_body_is_422(client, db, writer) -> None:
    customer_id = make_customer(db)
    _post(client, f"{customer_id}/earn", {"points": 50, "reason": "Order"}, writer, "k")
    other = _post(client, f"{customer_id}/earn", {"points": 51, "reason": "Order"}, writer, "k")
    assert other.status_code == 422
    assert other.json()["field"] == "Idempotency-Key"
    assert loyalty.balance(db, customer_id=customer_id) == 50


def test_a_missing_key_is_400_and_a_running_key_is_409(client, db, writer) -> None:
    customer_id = make_customer(db)
    missing = client.post(
        f"/v1/loyalty/members/{customer_id}/earn",
        json={"points": 5, "reason": "Order"},
        headers=writer,
    )
    assert missing.status_code == 400
    assert missing.json()["field"] == "Idempotency-Key"
    # given a command under this key that has started and not finished
    from rapport.platform import service as platform

    secret = platform.create_api_key(db, name="w2", scopes=[platform.Scope.WRITE])
    body = {"points": 5, "reason": "Order", "channel": "web"}
    idempotency.claim(
        db,
        scope=f"loyalty.earn:{secret.key.id}",
        key="busy",
        fingerprint=idempotency.request_fingerprint(
            {
                "customer_id": customer_id,
                **body,
                "order_id": None,
                "rule_id": None,
                "expires_at": None,
            }
        ),
    )
    busy = _post(client, f"{customer_id}/earn", body, auth(secret.secret), "busy")
    assert busy.status_code == 409
    assert busy.json()["field"] == "Idempotency-Key"
    assert loyalty.balance(db, customer_id=customer_id) == 0


def test_not_enough_points_is_409_problem_naming_points_and_its_key_answers_it_again(
    client, db, writer
) -> None:
    customer_id = make_customer(db)
    _post(client, f"{customer_id}/earn", {"points": 10, "reason": "Order"}, writer, "e")
    refused = _post(client, f"{customer_id}/redeem", {"points": 11}, writer, "r")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert (problem["field"], problem["balance"]) == ("points", 10)
    assert problem["type"].endswith("/insufficient-points")
    assert "10 points available" in problem["detail"]
    # the refusal is the key's answer, as any first answer: a retry under it, once the member
    # has points enough, is the same refusal, replayed, and redeems nothing
    _post(client, f"{customer_id}/earn", {"points": 5, "reason": "Order"}, writer, "e2")
    retried = _post(client, f"{customer_id}/redeem", {"points": 11}, writer, "r")
    assert retried.status_code == 409
    assert retried.headers["content-type"] == "application/problem+json"
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json() == problem
    assert loyalty.balance(db, customer_id=customer_id) == 15
    # the key with a corrected body is another request (422); a new key runs it
    other = _post(client, f"{customer_id}/redeem", {"points": 10}, writer, "r")
    assert (other.status_code, other.json()["field"]) == (422, "Idempotency-Key")
    assert _post(client, f"{customer_id}/redeem", {"points": 10}, writer, "r2").status_code == 201
    assert loyalty.balance(db, customer_id=customer_id) == 5


def test_a_request_refused_as_invalid_stores_nothing_under_its_key(client, db, writer) -> None:
    # given a member with points
    customer_id = make_customer(db)
    _post(client, f"{customer_id}/earn", {"points": 10, "reason": "Order"}, writer, "e")

    # when a redeem is refused as invalid (422) under a key, and a command is sent without
    # a key and with an invalid body
    invalid = _post(client, f"{customer_id}/redeem", {"points": 0}, writer, "r")
    keyless = client.post(f"/v1/loyalty/members/{customer_id}/redeem", json={}, headers=writer)

    # then the body is judged first, and the key kept nothing: corrected, it runs
    assert (invalid.status_code, invalid.json()["field"]) == (422, "points")
    assert keyless.status_code == 422
    corrected = _post(client, f"{customer_id}/redeem", {"points": 4}, writer, "r")
    assert corrected.status_code == 201, corrected.text
    assert loyalty.balance(db, customer_id=customer_id) == 6


def test_invalid_bodies_name_the_field(client, db, writer) -> None:
    customer_id = make_customer(db)
    zero = _post(client, f"{customer_id}/earn", {"points": 0, "reason": "x"}, writer, "a")
    assert (zero.status_code, zero.json()["field"]) == (422, "points")
    extra = _post(client, f"{customer_id}/redeem", {"points": 1, "pts": 2}, writer, "b")
    assert (extra.status_code, extra.json()["field"]) == (422, "pts")
    unknown = _post(client, "cus_nobody/earn", {"points": 1, "reason": "x"}, writer, "c")
    assert (unknown.status_code, unknown.json()["field"]) == (404, "customer_id")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"returned_minor": 500},
            "order_total_minor",
            "returned_minor needs a non-zero order_total_minor",
        ),
        ({"order_total_minor": 400}, "returned_minor", "order_total_minor needs returned_minor"),
        (
            {"returned_minor": 500, "order_total_minor": 400},
            "returned_minor",
            "cannot exceed order_total_minor",
        ),
        (
            {"points": 5, "returned_minor": 1, "order_total_minor": 2},
            "points",
            "give points, or returned_minor with order_total_minor",
        ),
    ],
)
def test_a_return_whose_amounts_do_not_fit_names_the_field_to_fix(
    client, db, writer, body: dict[str, int], field: str, message: str
) -> None:  # fmt: skip
    customer_id = make_customer(db)
    earned = {"points": 100, "reason": "Order", "order_id": "O-7"}
    _post(client, f"{customer_id}/earn", earned, writer, "e")
    refused = _post(client, f"{customer_id}/reverse", {"order_id": "O-7", **body}, writer, "ret")
    assert refused.status_code == 422
    assert (refused.json()["field"], refused.json()["detail"]) == (field, f"{field}: {message}")
    assert loyalty.balance(db, customer_id=customer_id) == 100


def test_an_adjustment_of_no_points_names_the_points(client, db, api_key) -> None:
    customer_id = make_customer(db)
    body = {"points": 0, "reason": "Goodwill"}
    refused = _post(client, f"{customer_id}/adjust", body, auth(api_key("admin")), "a")
    assert refused.status_code == 422
    assert (refused.json()["field"], refused.json()["detail"]) == (
        "points",
        "points: must not be zero",
    )


def test_adjust_needs_the_admin_scope(client, db, api_key) -> None:
    customer_id = make_customer(db)
    body = {"points": 15, "reason": "Goodwill"}
    refused = _post(client, f"{customer_id}/adjust", body, auth(api_key("write")), "a")
    assert refused.status_code == 403
    assert loyalty.balance(db, customer_id=customer_id) == 0
    allowed = _post(client, f"{customer_id}/adjust", body, auth(api_key("admin")), "a")
    assert allowed.status_code == 201
    assert allowed.json()["balance"] == 15


def test_reads_need_a_key_with_read_scope(client, db, api_key) -> None:
    customer_id = make_customer(db)
    assert client.get(f"/v1/loyalty/members/{customer_id}").status_code == 401
    denied = client.get(f"/v1/loyalty/members/{customer_id}", headers=auth(api_key("ingest")))
    assert denied.status_code == 403
    fresh = client.get(f"/v1/loyalty/members/{customer_id}", headers=auth(api_key("read")))
    assert fresh.json() == {
        "customer_id": customer_id,
        "balance": 0,
        "debt": 0,
        "lots": [],
        "more_lots": 0,
    }
    missing = client.get("/v1/loyalty/members/cus_nobody", headers=auth(api_key("read")))
    assert missing.status_code == 404


def test_a_return_over_http_reverses_by_value_and_records_debt(client, db, writer) -> None:
    customer_id = make_customer(db)
    _post(
        client,
        f"{customer_id}/earn",
        {"points": 100, "reason": "Order", "order_id": "O-7"},
        writer,
        "e",
    )
    _post(client, f"{customer_id}/redeem", {"points": 90}, writer, "r")
    reversed_ = _post(
        client,
        f"{customer_id}/reverse",
        {"order_id": "O-7", "returned_minor": 3000, "order_total_minor": 4000},
        writer,
        "ret",
    )
    assert reversed_.status_code == 201, reversed_.text
    body = reversed_.json()
    assert (body["points"], body["balance"], body["debt"], body["debt_change"]) == (-10, 0, 65, 65)
    both = _post(
        client,
        f"{customer_id}/reverse",
        {"order_id": "O-7", "points": 5, "returned_minor": 1, "order_total_minor": 2},
        writer,
        "bad",
    )
    assert both.status_code == 422


def test_statement_pages_with_a_cursor(client, db, writer) -> None:
    customer_id = make_customer(db)
    for number in range(5):
        _post(
            client,
            f"{customer_id}/earn",
            {"points": number + 1, "reason": "x"},
            writer,
            f"{number}",
        )
    reader = auth_reader(client, db)
    url = f"/v1/loyalty/members/{customer_id}/statement"
    first = client.get(url, params={"limit": 3}, headers=reader).json()
    assert [m["points"] for m in first["items"]] == [5, 4, 3]
    rest = client.get(url, params={"limit": 3, "cursor": first["next_cursor"]}, headers=reader)
    assert [m["points"] for m in rest.json()["items"]] == [2, 1]
    assert rest.json()["next_cursor"] is None


def test_a_key_reused_for_another_member_or_the_shops_number_is_refused_not_applied(
    client, db, writer
) -> None:
    """A key is claimed once per API key and command, whatever the path names: the same key
    for another member, or the same member by their shop number, is 422 and earns nothing
    (the path's reference was part of the key's scope, so both were applied)."""
    first, second = make_customer(db), make_customer(db)
    number = customers.get_customer(db, customer_id=first).external_id
    body = {"points": 7, "reason": "retry"}
    assert _post(client, f"{first}/earn", body, writer, "k-1").status_code == 201
    for path in (f"{second}/earn", f"{number}/earn"):
        again = _post(client, path, body, writer, "k-1")
        assert again.status_code == 422, again.text
        assert again.json()["field"] == "Idempotency-Key"
    assert loyalty.balance(db, customer_id=first) == 7
    assert loyalty.balance(db, customer_id=second) == 0


@pytest.mark.parametrize("length", [40, 41, 100])
def test_earn_and_redeem_take_the_shops_number_of_any_valid_length(
    client, db, writer, length
) -> None:
    number = f"EXT-{'7' * (length - 9)}-9342"
    customer_id = make_customer(db, external_id=number)
    earned = _post(client, f"{number}/earn", {"points": 10, "reason": "x"}, writer, "e-1")
    redeemed = _post(client, f"{number}/redeem", {"points": 4}, writer, "r-1")
    assert (earned.status_code, redeemed.status_code) == (201, 201), redeemed.text
    assert redeemed.json()["customer_id"] == customer_id
    assert loyalty.balance(db, customer_id=customer_id) == 6
    unknown = number.replace("EXT-", "NON-")
    missing = _post(client, f"{unknown}/earn", {"points": 1, "reason": "x"}, writer, "u-1")
    assert (missing.status_code, missing.json()["field"]) == (404, "customer_id")


@pytest.mark.parametrize("verb", ["earn", "redeem", "adjust"])
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "", None]
)
def test_a_body_not_sent_as_json_is_415_naming_the_content_type(
    client, db, api_key, verb, content_type
) -> None:
    """earn and redeem read their own bodies, as every endpoint does: what the request says it
    sends is checked as for /adjust (and every FastAPI-read body), and nothing is applied."""
    customer_id = make_customer(db)
    headers = {**auth(api_key("write", "admin")), "Idempotency-Key": f"ct-{verb}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    answer = client.post(
        f"/v1/loyalty/members/{customer_id}/{verb}",
        content=b'{"points": 1, "reason": "x"}',
        headers=headers,
    )
    assert answer.status_code == 415, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == "Content-Type"
    assert "application/json" in answer.json()["detail"]
    assert loyalty.balance(db, customer_id=customer_id) == 0


@pytest.mark.parametrize("verb", ["earn", "adjust"])
def test_a_body_with_a_byte_order_mark_is_read_like_any_other(client, db, api_key, verb) -> None:
    customer_id = make_customer(db)
    answer = client.post(
        f"/v1/loyalty/members/{customer_id}/{verb}",
        content=b'\xef\xbb\xbf{"points": 3, "reason": "x"}',
        headers={
            **auth(api_key("write", "admin")),
            "Idempotency-Key": "bom",
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 201, answer.text
    assert loyalty.balance(db, customer_id=customer_id) == 3


@pytest.mark.parametrize("verb", ["earn", "redeem", "adjust"])
@pytest.mark.parametrize("body", [[], 5, "points"])
def test_a_body_that_is_not_an_object_says_so_without_class_names(
    client, db, api_key, verb, body
) -> None:
    customer_id = make_customer(db)
    answer = _post(
        client, f"{customer_id}/{verb}", body, auth(api_key("write", "admin")), "not-object"
    )
    assert (answer.status_code, answer.json()["field"]) == (422, "body"), answer.text
    detail = answer.json()["detail"]
    assert f"{verb.capitalize()}In" not in detail, detail
    assert "instance" not in detail, detail
    if verb != "adjust":  # read by earn and redeem themselves, worded as tracking words it
        assert detail == "The body must be a JSON object"
        assert [error["field"] for error in answer.json()["errors"]] == ["body"]
