"""The earning processor and erased members: orders and other events of a person erased before
the processor reached them earn nothing, open no account and stop nothing; a referral pays
the friend but not an erased referrer."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.events.models import Event, ProcessorCursor
from rapport.events.processors import processor_lag, registered_processors
from rapport.flows import privacy
from rapport.loyalty import service as ledger
from rapport.loyalty.models import Award, LedgerTransaction, LoyaltyAccount, Referral
from rapport.loyalty.referrals import referring
from tests.loyalty.earning.test_earning import place
from tests.loyalty.earning.test_earning import process as process_log
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.orders.factories import seed_catalog


def process(db: Session) -> None:
    """Run the processors over this test's events. They start at its first event: on
    PostgreSQL, earlier tests' rolled-back events leave a gap before it, which a processor
    waits for while any other transaction on the server is open."""
    first = db.scalar(select(func.min(Event.position)))
    for proc in registered_processors():
        cursor = db.get(ProcessorCursor, proc.name)
        if cursor is None:
            db.add(ProcessorCursor(name=proc.name, position=(first or 1) - 1, updated_at=T0))
        elif first is not None and cursor.position < first - 1:
            cursor.position = first - 1
    db.flush()
    process_log(db)


def _transactions(db: Session, customer_id: str) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.customer_id == customer_id)
        )
        or 0
    )


def test_orders_of_erased_members_waiting_for_the_processor_earn_nothing(db: Session) -> None:
    # given a member with points and a newcomer without an account, each with an order the
    # earning processor has not reached yet
    frozen_clock()
    seed_catalog(db, stock=50)
    member, newcomer, bystander = make_customer(db), make_customer(db), make_customer(db)
    place(db, member)
    process(db)
    place(db, member)
    place(db, newcomer)
    place(db, bystander)
    # when both are erased before the processor runs
    privacy.erase_customer(db, customer_id=member, requested_by="dpo")
    privacy.erase_customer(db, customer_id=newcomer, requested_by="dpo")
    closed_with = _transactions(db, member)
    awards_before = db.scalar(
        select(func.count()).select_from(Award).where(Award.customer_id == member)
    )
    process(db)

    # then the processor got through the log, and gave the erased nothing
    assert processor_lag(db)["loyalty.earning"] == 0
    account = db.get(LoyaltyAccount, member)
    db.refresh(account)
    assert (account.kind, account.balance) == ("closed", 0)
    assert _transactions(db, member) == closed_with
    assert (
        db.scalar(select(func.count()).select_from(Award).where(Award.customer_id == member))
        == awards_before
    )
    assert db.get(LoyaltyAccount, newcomer) is None
    assert _transactions(db, newcomer) == 0
    # and everyone else's points came as usual
    assert ledger.balance(db, customer_id=bystander) == 230


def test_a_friends_first_purchase_does_not_pay_an_erased_referrer(db: Session) -> None:
    # given a friend referred by a member who is then erased
    frozen_clock()
    seed_catalog(db, stock=50)
    referrer, friend = make_customer(db), make_customer(db)
    code = referring.referral_code(db, customer_id=referrer)
    referring.refer(db, code=code.code, friend_id=friend)
    privacy.erase_customer(db, customer_id=referrer, requested_by="dpo")

    # when the friend makes a first purchase and the log is processed
    place(db, friend)
    process(db)

    # then the friend gets the welcome, the first purchase and the referral points; the erased
    # referrer gets no account and no points, and the referral is done
    assert ledger.balance(db, customer_id=friend) == 500 + 200 + 30
    assert db.get(LoyaltyAccount, referrer) is None
    assert _transactions(db, referrer) == 0
    referral = db.get(Referral, friend)
    assert referral is not None
    assert referral.completed_at is not None
