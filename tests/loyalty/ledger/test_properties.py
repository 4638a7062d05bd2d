"""A hypothesis state machine drives random earn, redeem, expire, return and adjust sequences
against a plain Python model of the ledger; after every step the journal sums to zero, every
balance equals its open lots and is never negative, and no lot is consumed beyond its amount
or twice by one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.loyalty.models import LotConsumption
from rapport.platform import clock
from rapport.platform.errors import Conflict
from tests.loyalty.factories import T0, make_customer

MEMBERS = 2
ORDERS = ("O-1", "O-2", "O-3")


@dataclass
class ModelLot:
    order_id: str | None
    remaining: int
    expires_at: datetime


@dataclass
class ModelMember:
    customer_id: str
    lots: list[ModelLot]
    debt: int = 0

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots)

    def take(self, points: int, lots: list[ModelLot]) -> None:
        for lot in lots:
            used = min(points, lot.remaining)
            lot.remaining -= used
            points -= used
        assert points == 0


class LedgerMachine(RuleBasedStateMachine):
    engine: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.connection = self.engine.connect()
        self.outer = self.connection.begin()
        self.db = Session(
            bind=self.connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        self.clock = clock.FrozenClock(T0)
        clock.set_clock(self.clock)
        self.members: list[ModelMember] = []
        self.issued: dict[tuple[int, str], int] = {}
        self.reversed: dict[tuple[int, str], int] = {}

    def teardown(self) -> None:
        self.db.close()
        self.outer.rollback()
        self.connection.close()
        clock.reset_clock()

    @initialize(allow_debt=st.booleans())
    def open_program(self, allow_debt: bool) -> None:
        loyalty.configure_program(self.db, allow_debt=allow_debt)
        self.allow_debt = allow_debt
        for _ in range(MEMBERS):
            self.members.append(ModelMember(make_customer(self.db), lots=[]))

    @rule(
        member=st.integers(0, MEMBERS - 1),
        points=st.integers(1, 300),
        order=st.sampled_from((None, *ORDERS)),
        expiry_days=st.one_of(st.none(), st.integers(1, 120)),
    )
    def earn(self, member: int, points: int, order: str | None, expiry_days: int | None) -> None:
        model = self.members[member]
        now = clock.now()
        expires_at = now + timedelta(days=expiry_days) if expiry_days else None
        posted = loyalty.earn(
            self.db,
            customer_id=model.customer_id,
            points=points,
            reason="Order",
            order_id=order,
            expires_at=expires_at,
        )
        paid = min(model.debt, points)
        model.debt -= paid
        if points - paid:
            model.lots.append(
                ModelLot(order, points - paid, expires_at or loyalty.add_months(now, 12))
            )
        if order is not None:
            self.issued[(member, order)] = self.issued.get((member, order), 0) + points
        assert (posted.balance, posted.debt) == (model.balance, model.debt)

    @rule(member=st.integers(0, MEMBERS - 1), points=st.integers(1, 400))
    def redeem(self, member: int, points: int) -> None:
        model = self.members[member]
        if not self.has_account(member):
            return
        if points > model.balance:
            with pytest.raises(loyalty.InsufficientPoints):
                loyalty.redeem(self.db, customer_id=model.customer_id, points=points, reason="R")
            return
        posted = loyalty.redeem(self.db, customer_id=model.customer_id, points=points, reason="R")
        model.take(points, model.lots)
        assert posted.balance == model.balance

    @rule(member=st.integers(0, MEMBERS - 1), points=st.integers(-200, 200).filter(bool))
    def adjust(self, member: int, points: int) -> None:
        model = self.members[member]
        if points < 0 and (not self.has_account(member) or -points > model.balance):
            return
        posted = loyalty.adjust(self.db, customer_id=model.customer_id, points=points, reason="A")
        if points > 0:
            model.lots.append(ModelLot(None, points, loyalty.add_months(clock.now(), 12)))
        else:
            model.take(-points, model.lots)
        assert (posted.balance, posted.debt) == (model.balance, model.debt)

    @rule(days=st.integers(1, 200))
    def time_passes_and_expiry_runs(self, days: int) -> None:
        self.clock.advance(timedelta(days=days))
        run = loyalty.expire_lots(self.db)
        expired = 0
        for model in self.members:
            for lot in model.lots:
                if lot.expires_at <= clock.now():
                    expired += lot.remaining
                    lot.remaining = 0
        assert run.points == expired

    @precondition(lambda self: bool(self.issued))
    @rule(
        data=st.data(),
        points=st.one_of(st.none(), st.integers(1, 300)),
        quarters=st.integers(1, 4),
    )
    def a_return(self, data: Any, points: int | None, quarters: int) -> None:
        member, order = data.draw(st.sampled_from(sorted(self.issued)))
        model = self.members[member]
        earned = self.issued[(member, order)]
        reversible = earned - self.reversed.get((member, order), 0)
        from fractions import Fraction

        share = None if points is not None else Fraction(quarters, 4)
        wanted = points if points is not None else int(earned * Fraction(quarters, 4))
        to_reverse = min(wanted, reversible)
        if to_reverse <= 0:
            with pytest.raises(Conflict):
                loyalty.reverse_for_return(
                    self.db,
                    customer_id=model.customer_id,
                    order_id=order,
                    points=points,
                    share=share,
                )
            return
        posted = loyalty.reverse_for_return(
            self.db, customer_id=model.customer_id, order_id=order, points=points, share=share
        )
        from_balance = min(to_reverse, model.balance)
        own = [lot for lot in model.lots if lot.order_id == order]
        others = [lot for lot in model.lots if lot.order_id != order]
        model.take(from_balance, own + others)
        if self.allow_debt:
            model.debt += to_reverse - from_balance
        self.reversed[(member, order)] = self.reversed.get((member, order), 0) + to_reverse
        assert (posted.balance, posted.debt) == (model.balance, model.debt)

    def has_account(self, member: int) -> bool:
        return loyalty.get_member(self.db, customer_id=self.members[member].customer_id) is not None

    @invariant()
    def ledger_is_sound(self) -> None:
        assert loyalty.invariant_violations(self.db) == []
        twice = self.db.execute(
            select(LotConsumption.lot_id, LotConsumption.transaction_id)
            .group_by(LotConsumption.lot_id, LotConsumption.transaction_id)
            .having(func.count() > 1)
        ).all()
        assert twice == []

    @invariant()
    def balances_match_the_model(self) -> None:
        for model in self.members:
            member = loyalty.get_member(self.db, customer_id=model.customer_id)
            if member is None:
                assert model.balance == 0
                continue
            assert member.balance == model.balance >= 0
            assert member.debt == model.debt
            assert [lot.remaining for lot in member.lots] == [
                lot.remaining for lot in model.lots if lot.remaining
            ]


def test_random_command_sequences_keep_the_ledger_sound(engine, backend) -> None:
    LedgerMachine.engine = engine
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=40 if backend == "sqlite" else 15,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
