"""Earn and redeem as one statement from the event loop (PostgreSQL), through the service
functions and through a real app whose commands commit on their own connections."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.loyalty import service as loyalty
from rapport.loyalty.events import PointsEarned, PointsRedeemed
from rapport.loyalty.ledger import one_statement
from rapport.loyalty.models import PointLot
from rapport.main import create_app
from rapport.platform import idempotency
from rapport.platform import service as platform
from rapport.platform.db import get_db, open_session
from rapport.platform.settings import Settings
from rapport.platform.statements import StatementPool
from tests.conftest import auth
from tests.loyalty.factories import make_customer

T = TypeVar("T")


@pytest.fixture
def postgres_url(committed_url: str, backend: str) -> str:
    if backend != "postgresql":
        pytest.skip("commands are sent as one statement on PostgreSQL only")
    return committed_url


def with_pool(url: str, work: Callable[[StatementPool], Awaitable[T]]) -> T:
    async def run() -> T:
        pool = StatementPool(url, connections=8)
        await pool.open()
        try:
            return await work(pool)
        finally:
            await pool.close()

    # In a thread of its own: the browser tests' Playwright keeps an event loop running in
    # this one.
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, run()).result()


def member_with(url: str, *lots: int) -> str:
    with open_session(url) as db:
        customer_id = make_customer(db)
        for points in lots:
            loyalty.earn(db, customer_id=customer_id, points=points, reason="Order")
    return customer_id


def answer_for(key: str, body: dict[str, Any]) -> dict[str, Any]:
    return idempotency.store_answer_parameters(
        scope="test", key=key, request_body=body, status_code=201
    )


def earn_now(pool: StatementPool, customer_id: str, points: int, key: str) -> Awaitable[Any]:
    return loyalty.earn_now(
        pool,
        customer_id=customer_id,
        points=points,
        reason="Order",
        order_id="O-1",
        rule_id="base",
        expires_at=None,
        channel="store",
        answer=answer_for(key, {"points": points}),
    )


def redeem_now(pool: StatementPool, customer_id: str, points: int, key: str) -> Awaitable[Any]:
    return loyalty.redeem_now(
        pool,
        customer_id=customer_id,
        points=points,
        reason="Reward",
        order_id=None,
        channel="web",
        answer=answer_for(key, {"points": points}),
    )


def test_earn_and_redeem_write_the_ledger_the_event_and_the_answer(postgres_url) -> None:
    # given a member with 100 points
    customer_id = member_with(postgres_url, 100)
    before = datetime.now(UTC)

    # when they earn 40 and redeem 120 as one statement each
    async def work(pool: StatementPool) -> tuple[Any, Any]:
        return (
            await earn_now(pool, customer_id, 40, "e-1"),
            await redeem_now(pool, customer_id, 120, "r-1"),
        )

    earned, redeemed = with_pool(postgres_url, work)
    # then both answer as the session path renders a posted movement
    earned, redeemed = orjson.loads(earned), orjson.loads(redeemed)
    assert {key: earned[key] for key in ("customer_id", "kind", "points", "balance", "debt")} == {
        "customer_id": customer_id,
        "kind": "earn",
        "points": 40,
        "balance": 140,
        "debt": 0,
    }
    expires = datetime.fromisoformat(earned["expires_at"])
    assert before + timedelta(days=360) < expires < before + timedelta(days=370)
    assert (redeemed["kind"], redeemed["points"], redeemed["balance"]) == ("redeem", -120, 20)
    assert redeemed["expires_at"] is None
    with open_session(postgres_url) as db:
        # and the lots were consumed oldest first, the journal balances, the answers are stored
        member = loyalty.get_member(db, customer_id=customer_id)
        assert member is not None
        assert [(lot.amount, lot.remaining) for lot in member.lots] == [(40, 20)]
        assert loyalty.invariant_violations(db) == []
        movements = loyalty.statement(db, customer_id=customer_id)
        assert [(m.kind, m.points, m.transaction_id) for m in movements[:2]] == [
            ("redeem", -120, redeemed["transaction_id"]),
            ("earn", 40, earned["transaction_id"]),
        ]
        events = db.scalars(
            select(Event)
            .where(Event.customer_id == customer_id, Event.type.like("points_%"))
            .order_by(Event.position)
        ).all()
        assert [(e.type, e.channel, e.properties) for e in events[-2:]] == [
            (
                "points_earned",
                "store",
                {
                    "transaction_id": earned["transaction_id"],
                    "points": 40,
                    "balance": 140,
                    "order_id": "O-1",
                    "rule_id": "base",
                    "reason": "Order",
                },
            ),
            (
                "points_redeemed",
                "web",
                {
                    "transaction_id": redeemed["transaction_id"],
                    "points": -120,
                    "balance": 20,
                    "order_id": None,
                    "reason": "Reward",
                },
            ),
        ]
        stored = idempotency.claim(
            db, scope="test", key="e-1", fingerprint=idempotency.request_fingerprint({"points": 40})
        )
        assert stored == idempotency.Replay(status_code=201, body=earned)
        # and each event is its typed class exactly (no key more or less)
        earned_event, redeemed_event = events[-2:]
        assert PointsEarned.model_validate(earned_event.properties).properties() == (
            earned_event.properties
        )
        assert PointsRedeemed.model_validate(redeemed_event.properties).properties() == (
            redeemed_event.properties
        )


def test_the_statements_build_their_events_and_answer_field_by_field_of_their_classes() -> None:
    # The SQL builds the events' properties and the answer itself: its keys are the classes'
    # fields, in their order, so that the two cannot drift apart.
    assert list(one_statement.EARNED_PROPERTIES) == list(PointsEarned.model_fields)
    assert list(one_statement.REDEEMED_PROPERTIES) == list(PointsRedeemed.model_fields)
    answer = one_statement.posted_answer(transaction="journal.id", expires="NULL")
    assert list(answer) == [field.name for field in dataclasses.fields(loyalty.Posted)]


def test_the_usual_member_only_and_nothing_changes_otherwise(postgres_url) -> None:
    # given a member with 10 points, one with debt, and a customer who never earned
    rich = member_with(postgres_url, 10)
    newcomer = member_with(postgres_url)
    with open_session(postgres_url) as db:
        indebted = make_customer(db)
        loyalty.earn(db, customer_id=indebted, points=10, reason="Order", order_id="D-1")
        loyalty.redeem(db, customer_id=indebted, points=10, reason="Spent")
        loyalty.reverse_for_return(db, customer_id=indebted, order_id="D-1", points=5)
        assert loyalty.get_member(db, customer_id=indebted).debt == 5  # type: ignore[union-attr]

    # when each is sent what only the session path can answer
    async def work(pool: StatementPool) -> list[Any]:
        return [
            await redeem_now(pool, rich, 11, "a"),  # more than the balance
            await earn_now(pool, indebted, 20, "b"),  # debt to pay first
            await earn_now(pool, newcomer, 20, "c"),  # no account yet
            await redeem_now(pool, "cus_nobody", 1, "d"),
        ]

    # then none is applied here, and nothing changed
    assert with_pool(postgres_url, work) == [None, None, None, None]
    with open_session(postgres_url) as db:
        assert loyalty.balance(db, customer_id=rich) == 10
        assert loyalty.get_member(db, customer_id=indebted).debt == 5  # type: ignore[union-attr]
        assert loyalty.get_member(db, customer_id=newcomer) is None
        assert idempotency.stored_keys(db, scope="test") == []


def test_a_stored_key_refuses_the_whole_statement(postgres_url) -> None:
    customer_id = member_with(postgres_url, 10)

    async def work(pool: StatementPool) -> list[Any]:
        return [await earn_now(pool, customer_id, 5, "same") for _ in range(2)]

    first, second = with_pool(postgres_url, work)
    assert orjson.loads(first)["balance"] == 15
    assert second is None  # the session path replays the first answer
    with open_session(postgres_url) as db:
        assert loyalty.balance(db, customer_id=customer_id) == 15
        earnings = [m for m in loyalty.statement(db, customer_id=customer_id) if m.points == 5]
        assert len(earnings) == 1


def test_lots_that_do_not_cover_the_balance_refuse_the_redemption(postgres_url) -> None:
    # given a ledger broken by hand: the lots hold 3 of the member's 10 points
    customer_id = member_with(postgres_url, 10)
    with open_session(postgres_url) as db:
        db.execute(update(PointLot).where(PointLot.customer_id == customer_id).values(remaining=3))
        db.commit()
    # when 5 are redeemed, the statement is refused as a whole
    with pytest.raises(psycopg.errors.InvalidTextRepresentation, match="less than the balance"):
        with_pool(postgres_url, lambda pool: redeem_now(pool, customer_id, 5, "broken"))
    with open_session(postgres_url) as db:
        assert loyalty.balance(db, customer_id=customer_id) == 10
        assert [m.kind for m in loyalty.statement(db, customer_id=customer_id)] == ["earn"]


def test_fifty_concurrent_redemptions_as_statements_never_overspend(postgres_url) -> None:
    # given a member whose 100 points, in lots of 30, 30 and 40, cover ten redemptions of 10
    customer_id = member_with(postgres_url, 30, 30, 40)

    # when 50 redemptions of 10 race on eight connections
    async def work(pool: StatementPool) -> list[Any]:
        return await asyncio.gather(
            *(redeem_now(pool, customer_id, 10, f"r-{n}") for n in range(50))
        )

    answers = with_pool(postgres_url, work)
    applied = [orjson.loads(answer) for answer in answers if answer is not None]
    # then at most ten applied (those that kept meeting others went to the session path),
    # and the balance is exactly what they left
    assert 1 <= len(applied) <= 10
    with open_session(postgres_url) as db:
        assert loyalty.balance(db, customer_id=customer_id) == 100 - 10 * len(applied)
        assert sorted(answer["balance"] for answer in applied) == [
            100 - 10 * n for n in range(len(applied), 0, -1)
        ]
        assert loyalty.invariant_violations(db) == []


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    commands=st.lists(
        st.tuples(st.sampled_from(["earn", "redeem"]), st.integers(min_value=1, max_value=60)),
        min_size=1,
        max_size=12,
    )
)
def test_statements_keep_the_balance_equal_to_the_applied_changes(
    postgres_url, commands: list[tuple[str, int]]
) -> None:
    # given a member with 50 points
    customer_id = member_with(postgres_url, 50)

    # when random earnings and redemptions are sent as statements
    async def work(pool: StatementPool) -> int:
        expected = 50
        for number, (verb, points) in enumerate(commands):
            send = earn_now if verb == "earn" else redeem_now
            answer = await send(pool, customer_id, points, f"{customer_id}-{number}")
            if answer is not None:
                expected += points if verb == "earn" else -points
                assert orjson.loads(answer)["balance"] == expected
            else:  # only a redemption the balance does not cover is left to the session path
                assert verb == "redeem"
                assert points > expected
        return expected

    expected = with_pool(postgres_url, work)
    # then the balance is what the answers said, the lots hold it, the journal balances
    with open_session(postgres_url) as db:
        assert loyalty.balance(db, customer_id=customer_id) == expected
        member = loyalty.get_member(db, customer_id=customer_id)
        assert member is not None
        assert sum(lot.remaining for lot in member.lots) == expected
        assert loyalty.invariant_violations(db) == []


# ---------------------------------------------------------------------- through the HTTP API


@pytest.fixture
def live_client(postgres_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app with commands sent as statements, on committed data (no test transaction)."""
    app = create_app(
        Settings(
            database_url=postgres_url,
            secret_key="test-secret-key-not-for-production",
            data_dir=tmp_path,
            command_connections=4,
        ),
        run_worker=False,
    )

    def session_on_this_database() -> Iterator[Session]:
        with open_session(postgres_url) as session:
            yield session

    app.dependency_overrides[get_db] = session_on_this_database
    with TestClient(app, raise_server_exceptions=False) as client:
        assert app.state.statements is not None
        yield client


def writer(url: str) -> dict[str, str]:
    with open_session(url) as db:
        return auth(platform.create_api_key(db, name="w", scopes=[platform.Scope.WRITE]).secret)


def test_commands_over_http_answer_replay_and_refuse_as_before(live_client, postgres_url) -> None:
    customer_id = member_with(postgres_url, 100)
    headers = writer(postgres_url)

    def post(verb: str, body: dict[str, Any], key: str) -> Any:
        return live_client.post(
            f"/v1/loyalty/members/{customer_id}/{verb}",
            json=body,
            headers={**headers, "Idempotency-Key": key},
        )

    earned = post("earn", {"points": 25, "reason": "Order O-9", "order_id": "O-9"}, "k1")
    assert earned.status_code == 201, earned.text
    assert (earned.json()["points"], earned.json()["balance"]) == (25, 125)
    # a retry answers the first answer and changes nothing
    again = post("earn", {"points": 25, "reason": "Order O-9", "order_id": "O-9"}, "k1")
    assert (again.status_code, again.json()) == (201, earned.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    # the same key with another body is 422; no key is 400; a bad field is named
    other = post("earn", {"points": 26, "reason": "Order O-9", "order_id": "O-9"}, "k1")
    assert (other.status_code, other.json()["field"]) == (422, "Idempotency-Key")
    keyless = live_client.post(
        f"/v1/loyalty/members/{customer_id}/redeem", json={"points": 1}, headers=headers
    )
    assert (keyless.status_code, keyless.json()["field"]) == (400, "Idempotency-Key")
    bad = post("redeem", {"points": -1}, "k2")
    assert (bad.status_code, bad.json()["field"]) == (422, "points")
    # not enough points is 409 with the balance, kept as the key's answer: a retry replays it
    refused = post("redeem", {"points": 126}, "k3")
    assert (refused.status_code, refused.json()["balance"]) == (409, 125)
    retried = post("redeem", {"points": 126}, "k3")
    assert (retried.status_code, retried.json()) == (409, refused.json())
    assert retried.headers["Idempotent-Replayed"] == "true"
    redeemed = post("redeem", {"points": 125}, "k4")
    assert (redeemed.status_code, redeemed.json()["balance"]) == (201, 0)
    with open_session(postgres_url) as db:
        assert loyalty.balance(db, customer_id=customer_id) == 0
        assert loyalty.invariant_violations(db) == []


def test_fifty_parallel_redemptions_over_http_apply_exactly_ten(live_client, postgres_url) -> None:
    # given a member whose 100 points cover ten redemptions of 10
    customer_id = member_with(postgres_url, 30, 30, 40)
    headers = writer(postgres_url)
    statuses: list[int] = []
    start = threading.Barrier(50)
    lock = threading.Lock()

    def redeem(number: int) -> None:
        start.wait()
        answer = live_client.post(
            f"/v1/loyalty/members/{customer_id}/redeem",
            json={"points": 10},
            headers={**headers, "Idempotency-Key": f"p-{number}"},
        )
        with lock:
            statuses.append(answer.status_code)

    # when 50 clients redeem 10 at the same moment
    threads = [threading.Thread(target=redeem, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then exactly ten are applied, the rest refused, and the balance is zero
    assert sorted(statuses) == [201] * 10 + [409] * 40
    with open_session(postgres_url) as db:
        assert loyalty.balance(db, customer_id=customer_id) == 0
        assert loyalty.invariant_violations(db) == []


@pytest.mark.parametrize("length", [40, 41, 59, 100])
def test_the_shops_number_of_any_valid_length_earns_and_redeems(
    live_client, postgres_url, length
) -> None:
    # given a member known by a shop's number of this length (references run to 100)
    number = f"EXT-{'7' * (length - 9)}-9342"
    with open_session(postgres_url) as db:
        customer_id = make_customer(db, external_id=number)
    headers = writer(postgres_url)

    def post(ref: str, verb: str, body: dict[str, Any], key: str) -> Any:
        return live_client.post(
            f"/v1/loyalty/members/{ref}/{verb}",
            json=body,
            headers={**headers, "Idempotency-Key": key},
        )

    # when they earn twice (the second as one statement) and redeem by that number
    for key in ("e-1", "e-2"):
        earned = post(number, "earn", {"points": 10, "reason": "x"}, key)
        assert earned.status_code == 201, earned.text
        assert earned.json()["customer_id"] == customer_id
    redeemed = post(number, "redeem", {"points": 5, "reason": "x"}, "r-1")
    # then both apply to the member
    assert redeemed.status_code == 201, redeemed.text
    assert redeemed.json()["balance"] == 15
    # and a number of that length that names no one is 404 naming the customer
    unknown = number.replace("EXT-", "NON-")
    for verb in ("earn", "redeem"):
        missing = post(unknown, verb, {"points": 1, "reason": "x"}, f"u-{verb}")
        assert (missing.status_code, missing.json()["field"]) == (404, "customer_id")
    with open_session(postgres_url) as db:
        assert loyalty.balance(db, customer_id=customer_id) == 15
