"""Staff adjustments by both ids racing a merge and an erasure of the survivor never answer 503
on PostgreSQL: a run PostgreSQL fails to break a deadlock is run again inside the command;
each adjustment is applied (201) or refused as erased (404). SQLite runs them one at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable

from fastapi.testclient import TestClient

from rapport.flows import privacy
from rapport.platform.db import open_session
from rapport.platform.errors import Problem
from tests.loyalty.ledger.test_merged_members import (
    keys,
    live,  # noqa: F401  (the fixture)
    merge,
    two_profiles,
)

ROUNDS = 6
ADJUSTS = 4  # by each id


def _all_at_once(runs: list[Callable[[], None]]) -> list[BaseException]:
    """Run every one of ``runs`` in its own thread, let go at once; what they raised."""
    start = threading.Barrier(len(runs))
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(work: Callable[[], None]) -> None:
        start.wait()
        try:
            work()
        except BaseException as error:
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=run, args=(work,)) for work in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def _erase(url: str, customer_id: str) -> None:
    with open_session(url) as db:
        privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo")


def test_adjusts_racing_a_merge_and_the_survivors_erasure_never_answer_503(
    live: TestClient,  # noqa: F811
    committed_url: str,
) -> None:
    headers = keys(committed_url)
    answers: list[int] = []
    lock = threading.Lock()
    for round_number in range(ROUNDS):
        kept, gone = two_profiles(committed_url, 20)

        def adjust(ref: str, number: int, tag: int = round_number) -> Callable[[], None]:
            def send() -> None:
                answer = live.post(
                    f"/v1/loyalty/members/{ref}/adjust",
                    json={"points": 1, "reason": f"Goodwill {tag}-{number}"},
                    headers={**headers, "Idempotency-Key": f"adj-{tag}-{ref}-{number}"},
                )
                with lock:
                    answers.append(answer.status_code)
                assert answer.status_code in (201, 404), answer.text

            return send

        runs: list[Callable[[], None]] = [
            adjust(ref, number) for number in range(ADJUSTS) for ref in (gone, kept)
        ]
        runs.append(lambda k=kept, g=gone: merge(committed_url, gone=g, kept=k))
        runs.append(lambda k=kept: _erase(committed_url, k))
        errors = _all_at_once(runs)
        # the merge may come after the erasure (refused: the survivor was erased), never 503
        assert all(isinstance(error, Problem) for error in errors), errors
    assert 503 not in answers
    assert len(answers) == ROUNDS * ADJUSTS * 2
