"""Points commands that name a merged-away profile land on the profile it went into, on both
databases and by every path (on PostgreSQL earn and redeem are sent as one statement when they
can: ``ledger.one_statement``); the merge moves the points (and debt) in its own transaction,
and a command racing it runs wholly before or wholly after it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rapport.customers import service as customers
from rapport.events.processors import registered_processors, run_batch
from rapport.loyalty import service as loyalty
from rapport.loyalty import tasks as loyalty_tasks  # noqa: F401  (registers the processor)
from rapport.loyalty.models import LoyaltyAccount
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import app_committing_to, auth
from tests.loyalty.factories import make_customer


@pytest.fixture
def live(committed_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app committing every request on its own session (on PostgreSQL with its statement
    pool, so earn and redeem go as one statement when they can)."""
    app = app_committing_to(
        committed_url, tmp_path, secret_key="test-secret-key-not-for-production"
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def keys(url: str) -> dict[str, str]:
    with open_session(url) as db:
        return auth(platform.create_api_key(db, name="a", scopes=[platform.Scope.ADMIN]).secret)


def process(url: str) -> None:
    with open_session(url) as db:
        for proc in registered_processors():
            while run_batch(db, proc):
                pass


def two_profiles(url: str, points: int) -> tuple[str, str]:
    """A survivor with no points and a profile with ``points`` (order O-1), to merge into it."""
    with open_session(url) as db:
        kept, gone = make_customer(db), make_customer(db)
        loyalty.earn(db, customer_id=gone, points=points, reason="Order O-1", order_id="O-1")
    return kept, gone


def merge(url: str, *, gone: str, kept: str) -> None:
    with open_session(url) as db:
        customers.merge_customers(
            db, source_customer_id=gone, target_customer_id=kept, reason="same", actor="t"
        )


def balances(url: str, *customer_ids: str) -> list[int]:
    with open_session(url) as db:
        assert loyalty.invariant_violations(db) == []
        return [loyalty.balance(db, customer_id=customer_id) for customer_id in customer_ids]


def post(client: TestClient, headers: dict[str, str], ref: str, verb: str, body: Any) -> Any:
    answer = client.post(
        f"/v1/loyalty/members/{ref}/{verb}",
        json=body,
        headers={**headers, "Idempotency-Key": f"{verb}-{body}"},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_commands_by_a_merged_id_move_the_survivors_points(live, committed_url) -> None:
    # given a member with 5 points merged into another, and the merge's points moved
    kept, gone = two_profiles(committed_url, 5)
    headers = keys(committed_url)
    merge(committed_url, gone=gone, kept=kept)
    process(committed_url)
    assert balances(committed_url, kept, gone) == [5, 0]

    # when points are earned, redeemed, adjusted and reversed by the merged-away id
    earned = post(live, headers, gone, "earn", {"points": 7, "reason": "Order O-2"})
    redeemed = post(live, headers, gone, "redeem", {"points": 2, "reason": "Reward"})
    adjusted = post(live, headers, gone, "adjust", {"points": 1, "reason": "Goodwill"})
    reversed_ = post(live, headers, gone, "reverse", {"order_id": "O-1", "points": 5})

    # then each answers for the survivor, with the survivor's balance
    assert [(a["customer_id"], a["balance"]) for a in (earned, redeemed, adjusted, reversed_)] == [
        (kept, 12),
        (kept, 10),
        (kept, 11),
        (kept, 6),
    ]
    # and the merged-away account took none of it
    assert balances(committed_url, kept, gone) == [6, 0]
    member = live.get(f"/v1/loyalty/members/{gone}", headers=headers).json()
    assert (member["customer_id"], member["balance"]) == (kept, 6)
    # and a second earning by the merged id (one statement where it can) lands there too
    again = post(live, headers, gone, "earn", {"points": 4, "reason": "Order O-3"})
    assert (again["customer_id"], again["balance"]) == (kept, 10)
    assert balances(committed_url, kept, gone) == [10, 0]


def test_the_merge_moves_the_points_at_once(live, committed_url) -> None:
    # given a member with 5 points merged into another, the event log not yet processed
    kept, gone = two_profiles(committed_url, 5)
    headers = keys(committed_url)
    merge(committed_url, gone=gone, kept=kept)

    # when 7 are earned and 3 redeemed by the merged-away id
    earned = post(live, headers, gone, "earn", {"points": 7, "reason": "Order O-2"})
    redeemed = post(live, headers, gone, "redeem", {"points": 3, "reason": "Reward"})

    # then both land on the survivor, which holds the merged points already
    assert (earned["customer_id"], earned["balance"]) == (kept, 12)
    assert (redeemed["customer_id"], redeemed["balance"]) == (kept, 9)
    assert balances(committed_url, kept, gone) == [9, 0]
    # and the merge's event, processed later, moves nothing twice
    process(committed_url)
    assert balances(committed_url, kept, gone) == [9, 0]


def race(url: str, *, gone: str, kept: str, commands: list[Callable[[], str | None]]) -> list[str]:
    """Merge ``gone`` into ``kept`` while ``commands`` run, all let go at once; answers what
    the commands said went wrong (each answers None when it was applied)."""
    start = threading.Barrier(len(commands) + 1)
    failures: list[str] = []
    lock = threading.Lock()

    def command(run: Callable[[], str | None]) -> None:
        start.wait()
        try:
            failure = run()
        except Exception as error:  # a refusal raised by a service verb
            failure = f"{type(error).__name__}: {error}"
        if failure is not None:
            with lock:
                failures.append(failure)

    def merging() -> None:
        start.wait()
        merge(url, gone=gone, kept=kept)

    threads = [threading.Thread(target=command, args=(run,)) for run in commands]
    threads.append(threading.Thread(target=merging))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return failures


def sent(client: TestClient, headers: dict[str, str], path: str, body: Any, key: str):  # type: ignore[no-untyped-def]
    """A command that POSTs ``body`` to ``path``: None when it answered 201, else the answer."""

    def send() -> str | None:
        answer = client.post(path, json=body, headers={**headers, "Idempotency-Key": key})
        return None if answer.status_code == 201 else f"{answer.status_code} {answer.text}"

    return send


def race_merge(
    client: TestClient, url: str, headers: dict[str, str], *, gone: str, kept: str, tag: str
) -> list[str]:
    """Merge ``gone`` into ``kept`` while ten earnings of 7 and ten redemptions of 3 are sent
    by ``gone``'s id, all let go at once; answers the commands not applied (201)."""
    commands = [
        sent(
            client,
            headers,
            f"/v1/loyalty/members/{gone}/{verb}",
            {"points": points, "reason": f"{reason} {tag}-{number}"},
            f"race-{tag}-{number}",
        )
        for number in range(20)
        for verb, points, reason in [
            ("earn", 7, "Order") if number % 2 else ("redeem", 3, "Reward")
        ]
    ]
    return race(url, gone=gone, kept=kept, commands=commands)


def test_money_commands_racing_the_merge_land_wholly_before_or_after_it(
    live, committed_url
) -> None:
    headers = keys(committed_url)
    for round_ in range(4):
        # given a member with 100 points about to be merged into another
        kept, gone = two_profiles(committed_url, 100)

        # when the merge races ten earnings of 7 and ten redemptions of 3 by the old id
        failures = race_merge(live, committed_url, headers, gone=gone, kept=kept, tag=str(round_))

        # then every command was applied, and the survivor holds every point at once
        assert failures == [], round_
        assert balances(committed_url, kept, gone) == [100 + 10 * 7 - 10 * 3, 0], round_
        # and processing the merge's event later changes nothing
        process(committed_url)
        assert balances(committed_url, kept, gone) == [140, 0], round_


def test_a_merged_away_members_debt_moves_to_the_survivor(live, committed_url) -> None:
    # given a member who spent the 10 points order O-1 earned, so its return leaves debt
    kept, gone = two_profiles(committed_url, 10)
    headers = keys(committed_url)
    post(live, headers, gone, "redeem", {"points": 10, "reason": "Reward"})
    returned = post(live, headers, gone, "reverse", {"order_id": "O-1", "points": 10})
    assert returned["debt"] == 10

    # when they are merged into a member with 4 points
    post(live, headers, kept, "earn", {"points": 4, "reason": "Order K-1"})
    merge(committed_url, gone=gone, kept=kept)
    process(committed_url)

    # then the survivor owes the debt, the old account nothing
    survivor = live.get(f"/v1/loyalty/members/{kept}", headers=headers).json()
    assert (survivor["balance"], survivor["debt"]) == (4, 10)
    with open_session(committed_url) as db:
        old = db.execute(
            select(LoyaltyAccount.balance, LoyaltyAccount.debt).where(
                LoyaltyAccount.account_id == gone
            )
        ).one()
        assert tuple(old) == (0, 0)
    # and the survivor's next earning pays it first, as their own debt
    earned = post(live, headers, kept, "earn", {"points": 15, "reason": "Order K-2"})
    assert (earned["balance"], earned["debt"]) == (9, 0)
    assert balances(committed_url, kept, gone) == [9, 0]


def test_earnings_by_a_merged_id_racing_the_points_move_all_reach_the_survivor(
    live, committed_url
) -> None:
    # given a member with 5 points just merged into another
    kept, gone = two_profiles(committed_url, 5)
    headers = keys(committed_url)
    merge(committed_url, gone=gone, kept=kept)
    start = threading.Barrier(9)
    answers: list[str] = []
    lock = threading.Lock()

    def earn(number: int) -> None:
        start.wait()
        answer = post(live, headers, gone, "earn", {"points": 7, "reason": f"Order {number}"})
        with lock:
            answers.append(answer["customer_id"])

    # when eight earnings of 7 by the merged id race the merge's move of its points
    threads = [threading.Thread(target=earn, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    start.wait()
    process(committed_url)
    for thread in threads:
        thread.join(timeout=120)
    process(committed_url)

    # then every earning answered for the survivor, which holds every point
    assert answers == [kept] * 8
    assert balances(committed_url, kept, gone) == [5 + 8 * 7, 0]
    with open_session(committed_url) as db:
        old = db.scalar(select(LoyaltyAccount.balance).where(LoyaltyAccount.account_id == gone))
        assert old == 0


def three_point_reward(url: str) -> None:
    with open_session(url) as db:
        if reward_catalogue.get_reward(db, reward_id="three") is None:
            reward_catalogue.save_reward(
                db,
                reward_id="three",
                name="3 off",
                points_cost=3,
                coupon_kind="amount",
                coupon_value=300,
                min_subtotal_minor=0,
                categories=[],
                stackable=True,
                valid_days=30,
            )


def goodwill(url: str, customer_id: str, points: int) -> Callable[[], str | None]:
    def give() -> str | None:
        with open_session(url) as db:
            loyalty.give_goodwill(
                db, customer_id=customer_id, points=points, reason="Goodwill: late", actor="t"
            )
        return None

    return give


def test_reward_checkouts_and_goodwill_racing_the_merge_land_wholly_before_or_after_it(
    live, committed_url
) -> None:
    headers = keys(committed_url)
    three_point_reward(committed_url)
    for round_ in range(4):
        # given a member with 100 points about to be merged into another
        kept, gone = two_profiles(committed_url, 100)

        # when the merge races ten reward checkouts of 3 points and ten goodwill grants of 5
        # by the old id (the API's checkout, the customer page's and a ticket's goodwill verb)
        checkouts = [
            sent(
                live,
                headers,
                f"/v1/loyalty/members/{gone}/rewards/three/redeem",
                None,
                f"reward-{round_}-{n}",
            )
            for n in range(10)
        ]
        grants = [goodwill(committed_url, gone, 5) for _ in range(10)]
        failures = race(committed_url, gone=gone, kept=kept, commands=checkouts + grants)

        # then every command was applied (no 404, 409 or 500), and the survivor holds every
        # point at once: none was written to the merged-away account after its points moved
        assert failures == [], round_
        assert balances(committed_url, kept, gone) == [100 - 10 * 3 + 10 * 5, 0], round_
        with open_session(committed_url) as db:
            coupons = reward_coupons.customer_coupons(db, customer_id=kept, limit=50)
            assert len(coupons) == 10, round_
        # and processing the merge's event later changes nothing
        process(committed_url)
        assert balances(committed_url, kept, gone) == [120, 0], round_


def test_goodwill_and_a_reward_by_a_merged_id_land_on_the_survivor(live, committed_url) -> None:
    # given a member with 5 points merged into another, the merge's event not yet processed
    kept, gone = two_profiles(committed_url, 5)
    headers = keys(committed_url)
    three_point_reward(committed_url)
    merge(committed_url, gone=gone, kept=kept)

    # when goodwill is given and a reward redeemed by the merged-away id
    assert goodwill(committed_url, gone, 4)() is None
    bought = live.post(
        f"/v1/loyalty/members/{gone}/rewards/three/redeem",
        headers={**headers, "Idempotency-Key": "merged-reward"},
    )

    # then both land on the survivor at once, not on the old account
    assert bought.status_code == 201, bought.text
    assert balances(committed_url, kept, gone) == [5 + 4 - 3, 0]


def test_a_coupon_bought_before_the_merge_is_the_survivors(live, committed_url) -> None:
    # given a member who bought a reward's coupon with their points
    kept, gone = two_profiles(committed_url, 5)
    headers = keys(committed_url)
    three_point_reward(committed_url)
    bought = live.post(
        f"/v1/loyalty/members/{gone}/rewards/three/redeem",
        headers={**headers, "Idempotency-Key": "before-merge"},
    )
    assert bought.status_code == 201, bought.text

    # when they are merged into another member
    merge(committed_url, gone=gone, kept=kept)

    # then the coupon is the survivor's to use, as their points are
    listed = live.get(f"/v1/loyalty/members/{kept}/coupons", headers=headers).json()
    assert [c["code"] for c in listed["items"]] == [bought.json()["code"]]
    assert balances(committed_url, kept, gone) == [2, 0]
