"""Referrals on SQLite and PostgreSQL: codes, refusals (self, loops, reuse), and both sides
earning once on the friend's first purchase."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rapport.loyalty import service as loyalty
from rapport.loyalty.models import Award, Referral, ReferralCode
from rapport.loyalty.referrals import completion as referral_completion
from rapport.loyalty.referrals import referring
from rapport.platform.db import open_session
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from tests.conftest import auth
from tests.loyalty.earning.test_earning import process
from tests.loyalty.earning.test_return_reversals import place_lines
from tests.loyalty.factories import frozen_clock, make_customer
from tests.orders.factories import CHIANTI, run_at_once, seed_catalog


def test_a_members_code_is_created_once_and_kept(db) -> None:
    member = make_customer(db)
    first = referring.referral_code(db, customer_id=member).code
    again = referring.referral_code(db, customer_id=member).code
    other = referring.referral_code(db, customer_id=make_customer(db)).code
    assert first == again
    assert first != other
    assert len(first) == referring.REFERRAL_CODE_LENGTH
    with pytest.raises(NotFound):
        referring.referral_code(db, customer_id="cus_nobody")


def test_self_referral_loops_and_reuse_are_refused(db) -> None:
    # given A referred B, and B referred C
    a, b, c, d = (make_customer(db) for _ in range(4))
    code_a = referring.referral_code(db, customer_id=a).code
    code_b = referring.referral_code(db, customer_id=b).code
    code_c = referring.referral_code(db, customer_id=c).code
    referring.refer(db, code=code_a, friend_id=b)
    referring.refer(db, code=code_b.lower(), friend_id=c)
    # when A refers themselves, B refers A back, C refers A (a longer loop),
    # D claims B again, or someone uses an unknown code
    with pytest.raises(InvalidInput) as self_referral:
        referring.refer(db, code=code_a, friend_id=a)
    with pytest.raises(InvalidInput) as direct_loop:
        referring.refer(db, code=code_b, friend_id=a)
    with pytest.raises(InvalidInput) as long_loop:
        referring.refer(db, code=code_c, friend_id=a)
    code_d = referring.referral_code(db, customer_id=d).code
    with pytest.raises(Conflict) as reuse:
        referring.refer(db, code=code_d, friend_id=b)
    with pytest.raises(NotFound) as unknown:
        referring.refer(db, code="ZZZZZZZZ", friend_id=d)
    # then each is refused naming the field, and only the first two referrals exist
    assert [e.value.field for e in (self_referral, direct_loop, long_loop, reuse, unknown)] == [
        "friend_id",
        "friend_id",
        "friend_id",
        "friend_id",
        "code",
    ]
    assert db.scalar(select(func.count()).select_from(Referral)) == 2
    referral = referring.get_referral(db, friend_id=b)
    assert referral is not None
    assert referral.referrer_id == a


def test_first_purchase_pays_both_sides_once(db) -> None:
    # given A referred B
    frozen_clock()
    a, b = make_customer(db), make_customer(db)
    referring.refer(db, code=referring.referral_code(db, customer_id=a).code, friend_id=b)
    # when B's first purchase completes the referral, twice
    posted = referral_completion.complete_referral(db, friend_id=b, order_id="O-1")
    again = referral_completion.complete_referral(db, friend_id=b, order_id="O-1")
    # then each earns the default 500 once, and the referral is closed with the order
    assert sorted((p.customer_id, p.points) for p in posted) == sorted([(a, 500), (b, 500)])
    assert again == []
    assert (loyalty.balance(db, customer_id=a), loyalty.balance(db, customer_id=b)) == (500, 500)
    referral = referring.get_referral(db, friend_id=b)
    assert referral is not None
    assert referral.order_id == "O-1"
    assert referral.completed_at is not None
    assert db.scalar(select(func.count()).select_from(Award)) == 2
    assert loyalty.invariant_violations(db) == []


def test_a_retry_after_a_partial_completion_pays_only_what_is_missing(db) -> None:
    # given the friend's award was paid but the call stopped before the referrer's
    a, b = make_customer(db), make_customer(db)
    referring.refer(db, code=referring.referral_code(db, customer_id=a).code, friend_id=b)
    terms = referral_completion.ReferralTerms(referrer_points=0, friend_points=200)
    referral_completion.complete_referral(db, friend_id=b, order_id="O-1", terms=terms)
    db.execute(
        Referral.__table__.update().values(completed_at=None)  # as if it never closed
    )
    db.commit()
    # when it is called again with the full terms
    posted = referral_completion.complete_referral(
        db, friend_id=b, order_id="O-1", terms=referral_completion.ReferralTerms(300, 200)
    )
    # then only the referrer is paid now
    assert [(p.customer_id, p.points) for p in posted] == [(a, 300)]
    assert (loyalty.balance(db, customer_id=a), loyalty.balance(db, customer_id=b)) == (300, 200)


def test_in_transaction_variant_lists_awards_and_closes_without_committing(db) -> None:
    a, b = make_customer(db), make_customer(db)
    referring.refer(db, code=referring.referral_code(db, customer_id=a).code, friend_id=b)
    awards = referral_completion.referral_awards(db, friend_id=b, order_id="O-9")
    assert [(customer, points) for customer, points, _ in awards] == [(b, 500), (a, 500)]
    assert referral_completion.mark_completed(db, friend_id=b, order_id="O-9") is True
    assert referral_completion.mark_completed(db, friend_id=b, order_id="O-9") is False
    db.rollback()  # nothing was committed: the referral is open again
    assert referral_completion.referral_awards(db, friend_id=b, order_id="O-9") != []
    assert referral_completion.referral_awards(db, friend_id=a, order_id="O-9") == []


def test_a_head_of_the_referral_code_makes_no_code(client, api_key, db) -> None:
    # given a member who never asked for their code
    frozen_clock()
    member = make_customer(db)
    reader = auth(api_key("read"))
    # when a client asks only for the headers, then it is answered and nothing is written
    assert (
        client.head(f"/v1/loyalty/members/{member}/referral-code", headers=reader).status_code
        == 200
    )
    assert db.scalar(select(func.count()).select_from(ReferralCode)) == 0
    # and the first GET makes the code, which a later HEAD neither changes nor repeats
    code = client.get(f"/v1/loyalty/members/{member}/referral-code", headers=reader).json()
    assert code["customer_id"] == member
    assert len(code["code"]) > 0
    assert (
        client.head(f"/v1/loyalty/members/{member}/referral-code", headers=reader).status_code
        == 200
    )
    assert db.scalar(select(func.count()).select_from(ReferralCode)) == 1
    # an unknown member is 404 for a HEAD as for a GET
    assert client.head("/v1/loyalty/members/NOPE/referral-code", headers=reader).status_code == 404


def _refer_now(url: str, code: str, friend_id: str) -> str:
    with open_session(url) as db:
        try:
            referring.refer(db, code=code, friend_id=friend_id)
        except (InvalidInput, Conflict) as refused:
            db.rollback()
            return f"refused: {refused}"
        return "stored"


def test_members_referring_each_other_at_once_are_never_both_stored(committed_url) -> None:
    # given pairs of members with codes, and chains B->C and D->A that two referrals at once,
    # A->B and C->D, would close into a loop
    rounds = 12
    with open_session(committed_url) as db:
        pairs = [(make_customer(db), make_customer(db)) for _ in range(rounds)]
        fours = [tuple(make_customer(db) for _ in range(4)) for _ in range(rounds)]
        codes = {
            member: referring.referral_code(db, customer_id=member).code
            for group in (*pairs, *fours)
            for member in group
        }
        for a, b, c, d in fours:
            referring.refer(db, code=codes[b], friend_id=c)
            referring.refer(db, code=codes[d], friend_id=a)

    # when each pair refers each other, and each chain's two links are made, at the same moment
    mutual = [
        run_at_once(
            lambda a=a, b=b: _refer_now(committed_url, codes[b], a),
            lambda a=a, b=b: _refer_now(committed_url, codes[a], b),
        )
        for a, b in pairs
    ]
    longer = [
        run_at_once(
            lambda a=a, b=b: _refer_now(committed_url, codes[a], b),
            lambda c=c, d=d: _refer_now(committed_url, codes[c], d),
        )
        for a, b, c, d in fours
    ]

    # then of each, exactly one is stored and the other refused as a loop
    for outcome in (*mutual, *longer):
        assert sorted(outcome)[1] == "stored"
        assert sorted(outcome)[0].startswith("refused: ")
        assert "cannot go back up the chain" in sorted(outcome)[0]
    with open_session(committed_url) as db:
        stored = db.scalar(select(func.count()).select_from(Referral))
        assert stored == rounds + 2 * rounds + rounds


def test_a_first_order_in_another_currency_does_not_complete_the_referral(db) -> None:
    # given A referred B, in a program in euros
    frozen_clock()
    seed_catalog(db, stock=50)
    a, b = make_customer(db), make_customer(db)
    referring.refer(db, code=referring.referral_code(db, customer_id=a).code, friend_id=b)
    # when B's first order is in won (it earns nothing)
    place_lines(db, b, [(CHIANTI, 1, 150_000)], currency="KRW")
    process(db)
    # then the referral stays open and neither side earns
    referral = referring.get_referral(db, friend_id=b)
    assert referral is not None
    assert referral.completed_at is None
    assert (loyalty.balance(db, customer_id=a), loyalty.balance(db, customer_id=b)) == (0, 0)
    # and B's first order in euros completes it, paying both sides once
    first = place_lines(db, b, [(CHIANTI, 1, 1_500)])
    process(db)
    db.expire_all()
    referral = referring.get_referral(db, friend_id=b)
    assert referral is not None
    assert referral.order_id == first
    assert loyalty.balance(db, customer_id=a) == 500
    assert loyalty.balance(db, customer_id=b) == 15 + 200 + 500  # spend, welcome, referral
