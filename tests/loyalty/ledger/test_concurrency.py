"""Redemption under concurrency, with real commits across connections on both backends."""

from __future__ import annotations

import threading

from rapport.loyalty import service as loyalty
from rapport.platform.db import open_session
from tests.loyalty.factories import make_customer


def test_fifty_parallel_redemptions_against_a_balance_for_ten(committed_url) -> None:
    # given a member whose 100 points, in lots of 30, 30 and 40, cover ten redemptions of 10
    with open_session(committed_url) as db:
        customer_id = make_customer(db)
        for points in (30, 30, 40):
            loyalty.earn(db, customer_id=customer_id, points=points, reason="Order")
    applied: list[int] = []
    refused: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(50)
    lock = threading.Lock()

    def redeem(number: int) -> None:
        with open_session(committed_url) as db:
            start.wait()
            try:
                loyalty.redeem(db, customer_id=customer_id, points=10, reason=f"Reward {number}")
            except loyalty.InsufficientPoints:
                with lock:
                    refused.append(number)
            except BaseException as error:
                with lock:
                    errors.append(error)
            else:
                with lock:
                    applied.append(number)

    # when 50 threads redeem 10 points at the same moment
    threads = [threading.Thread(target=redeem, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then exactly ten are applied, the rest refused, the balance is zero and the ledger sound
    assert errors == []
    assert (len(applied), len(refused)) == (10, 40)
    with open_session(committed_url) as db:
        assert loyalty.balance(db, customer_id=customer_id) == 0
        member = loyalty.get_member(db, customer_id=customer_id)
        assert member is not None
        assert member.lots == []
        redemptions = [
            m for m in loyalty.statement(db, customer_id=customer_id) if m.kind == "redeem"
        ]
        assert len(redemptions) == 10
        assert loyalty.invariant_violations(db) == []


def test_concurrent_first_earnings_open_one_account(committed_url) -> None:
    with open_session(committed_url) as db:
        customer_id = make_customer(db)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def earn() -> None:
        with open_session(committed_url) as db:
            start.wait()
            try:
                loyalty.earn(db, customer_id=customer_id, points=5, reason="Order")
            except BaseException as error:
                errors.append(error)

    threads = [threading.Thread(target=earn) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with open_session(committed_url) as db:
        assert loyalty.balance(db, customer_id=customer_id) == 40
        assert loyalty.invariant_violations(db) == []
