"""A merge moves the merged-away member's paid membership to the survivor (the one paid further
ahead kept when both have one), and the renewal job never charges a merged-away or erased
profile; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.models import Customer
from rapport.loyalty import tasks as loyalty_tasks  # noqa: F401  (registers the merge step)
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.models import Membership
from tests.loyalty.factories import frozen_clock, make_customer


def _plans(db: Session) -> None:
    membership_plans.save_plan(
        db, plan_id="plus", name="Plus", fee_minor=499, currency="EUR", period="month"
    )
    membership_plans.save_plan(
        db, plan_id="gold", name="Gold", fee_minor=4999, currency="EUR", period="year"
    )


def _merge(db: Session, *, gone: str, kept: str) -> dict[str, int]:
    record = customers.merge_customers(
        db, source_customer_id=gone, target_customer_id=kept, reason="same", actor="t"
    )
    return dict(record.moved)


def _fees(db: Session, customer_id: str) -> list[tuple[str, int]]:
    return [(p.plan_id, p.amount_minor) for p in memberships.payments(db, customer_id=customer_id)]


def test_a_merge_moves_the_paid_membership_to_the_survivor_who_renews_it(db: Session) -> None:
    clock = frozen_clock()
    _plans(db)
    kept, gone = make_customer(db), make_customer(db)
    memberships.join(db, customer_id=gone, plan_id="plus")

    moved = _merge(db, gone=gone, kept=kept)

    assert moved["loyalty_membership"] == 1
    assert moved["loyalty_membership_ended"] == 0
    plan = memberships.current_plan(db, customer_id=kept)
    assert plan is not None
    assert plan.plan_id == "plus"
    assert memberships.get_membership(db, customer_id=gone) is None
    assert _fees(db, kept) == [("plus", 499)]
    clock.advance(timedelta(days=40))
    assert memberships.renew_due(db).renewed_periods == 1
    assert _fees(db, kept) == [("plus", 499), ("plus", 499)]
    assert _fees(db, gone) == []


def test_when_both_are_members_the_membership_paid_further_ahead_is_kept(db: Session) -> None:
    frozen_clock()
    _plans(db)
    kept, gone = make_customer(db), make_customer(db)
    memberships.join(db, customer_id=kept, plan_id="plus")
    memberships.join(db, customer_id=gone, plan_id="gold")

    moved = _merge(db, gone=gone, kept=kept)

    assert moved["loyalty_membership"] == 1
    assert moved["loyalty_membership_ended"] == 1
    current = memberships.current_membership(db, customer_id=kept)
    assert current is not None
    assert current.plan_id == "gold"
    held = db.scalars(select(Membership).where(Membership.customer_id == kept)).all()
    assert sorted((m.plan_id, m.status) for m in held) == [
        ("gold", "active"),
        ("plus", "lapsed"),
    ]
    assert sorted(_fees(db, kept)) == [("gold", 4999), ("plus", 499)]


def test_the_survivors_membership_is_kept_when_it_is_paid_further_ahead(db: Session) -> None:
    frozen_clock()
    _plans(db)
    kept, gone = make_customer(db), make_customer(db)
    memberships.join(db, customer_id=kept, plan_id="gold")
    memberships.join(db, customer_id=gone, plan_id="plus")

    moved = _merge(db, gone=gone, kept=kept)

    assert moved["loyalty_membership"] == 0
    assert moved["loyalty_membership_ended"] == 1
    current = memberships.current_membership(db, customer_id=kept)
    assert current is not None
    assert current.plan_id == "gold"
    assert memberships.current_membership(db, customer_id=gone) is None


def test_renewal_never_charges_a_profile_merged_away_before_the_move_existed(
    db: Session,
) -> None:
    clock = frozen_clock()
    _plans(db)
    kept, gone = make_customer(db), make_customer(db)
    memberships.join(db, customer_id=gone, plan_id="plus")
    # a merge from before memberships moved: the profile merged, its membership left on it
    profile = db.get(Customer, gone)
    assert profile is not None
    profile.status, profile.merged_into = "merged", kept
    db.commit()

    clock.advance(timedelta(days=40))
    run = memberships.renew_due(db)

    assert run == memberships.RenewalRun(renewed_periods=0, lapsed=1)
    assert _fees(db, gone) == [("plus", 499)]
    left = memberships.get_membership(db, customer_id=gone)
    assert left is not None
    assert left.status == "lapsed"
    assert not left.auto_renew
