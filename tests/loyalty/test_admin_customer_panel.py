"""The loyalty panel of the customer 360 page over HTTP (the browser tests drive its actions):
what it shows and what it refuses."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.flows import privacy
from rapport.loyalty import service as loyalty
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.models import AppliedCheckout, Coupon
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.errors import NotFound
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.platform.admin_forms import csrf_token, said_after


def _text(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(dd|span|p)>', html, re.S)
    assert found is not None, f"no {testid}"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def _external_id(db: Session, customer_id: str) -> str:
    customer = customers.get_customer(db, customer_id=customer_id)
    assert customer is not None
    assert customer.external_id is not None
    return customer.external_id


def test_the_panel_shows_savings_in_another_currency_apart(admin: TestClient, db: Session) -> None:
    # given a member of a JPY plan who saved 4.20 EUR on a EUR order
    moment = frozen_clock()
    membership_plans.save_plan(
        db, plan_id="yen", name="P yen", fee_minor=500, currency="JPY", period="month"
    )
    customer_id = make_customer(db)
    memberships.join(db, customer_id=customer_id, plan_id="yen")
    order = orders.ImportedOrder(
        order_id="E-1",
        customer_external_id=_external_id(db, customer_id),
        channel="web",
        fulfilment="in_store",
        store_id=None,
        placed_at=T0 + timedelta(days=1),
        currency="EUR",
        lines=[orders.ImportedLine(sku="SKU-1", quantity=1, unit_price_minor=5000)],
    )
    orders.import_orders(db, orders=[order])
    db.add(
        AppliedCheckout(
            order_id="E-1",
            customer_id=customer_id,
            effects=[],
            plan_savings_minor=420,
            placed_at=T0 + timedelta(days=1),
        )
    )
    db.commit()
    moment.advance(timedelta(days=2))
    # when the panel is opened
    html = admin.get(f"/admin/loyalty/customers/{customer_id}/panel").text
    # then the plan's value is in yen, the euros on their own line, never subtracted
    assert _text(html, "membership-net") == "behind by JP¥500"
    assert _text(html, "membership-other-currency") == "In EUR, apart: saved €4.20, €0.00 in fees"


def _erased_member(db: Session) -> str:
    reward_catalogue.save_reward(
        db,
        reward_id="five-off",
        name="5 off",
        points_cost=100,
        coupon_kind="amount",
        coupon_value=500,
    )
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=500, reason="Welcome")
    privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo")
    return customer_id


def _coupons(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Coupon)) or 0


def test_an_erased_customers_panel_says_so_and_offers_no_action(
    admin: TestClient, db: Session
) -> None:
    customer_id = _erased_member(db)
    html = admin.get(f"/admin/loyalty/customers/{customer_id}/panel").text
    assert "This customer was erased" in _text(html, "panel-erased")
    assert 'data-testid="coupon-form"' not in html
    assert 'data-testid="goodwill-form"' not in html


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize("pay", ["free", "points"])
def test_no_coupon_is_issued_to_an_erased_customer(
    admin: TestClient, db: Session, htmx: bool, pay: str
) -> None:
    # given an erased customer, and the coupon form as it was before the erasure
    customer_id = _erased_member(db)
    token = csrf_token(admin.get("/admin/loyalty/plans").text)
    # when "Issue a coupon" is posted for them
    answer = admin.post(
        f"/admin/loyalty/customers/{customer_id}/coupon",
        data={"csrf_token": token, "reward_id": "five-off", "pay": pay, "token": "t-1"},
        headers={"HX-Request": "true"} if htmx else {},
        follow_redirects=False,
    )
    # then it is refused saying they were erased, and no coupon exists
    if htmx:
        assert answer.status_code == 422
        assert "This customer was erased" in _text(answer.text, "panel-erased")
    else:
        assert answer.status_code == 303
        assert "erased" in str(said_after(admin, answer))
    assert "Issued coupon" not in answer.text
    assert _coupons(db) == 0


def test_the_coupon_verbs_refuse_an_erased_customer(db: Session) -> None:
    customer_id = _erased_member(db)
    with pytest.raises(NotFound) as free:
        reward_coupons.create_campaign_coupon(
            db,
            rule="goodwill:five-off",
            kind="amount",
            value=500,
            expires_at=clock.now() + timedelta(days=30),
            customer_id=customer_id,
        )
    with pytest.raises(NotFound) as paid:
        reward_coupons.redeem_reward(db, customer_id=customer_id, reward_id="five-off")
    # (404 "was erased", what every endpoint answers for an erased customer)
    assert (free.value.field, paid.value.field) == ("customer_id", "customer_id")
    assert "was erased" in free.value.detail
    assert free.value.status == paid.value.status == 404
    assert _coupons(db) == 0


def test_a_coupon_issued_from_the_panel_has_a_code_like_every_other_coupon(
    admin: TestClient, db: Session
) -> None:
    reward_catalogue.save_reward(
        db,
        reward_id="five-off",
        name="5 off",
        points_cost=100,
        coupon_kind="amount",
        coupon_value=500,
    )
    customer_id = make_customer(db)
    token = csrf_token(admin.get("/admin/loyalty/plans").text)
    form = {"csrf_token": token, "reward_id": "five-off", "pay": "free", "token": "t-2"}
    url = f"/admin/loyalty/customers/{customer_id}/coupon"
    assert admin.post(url, data=form, follow_redirects=False).status_code == 303
    db.expire_all()
    code = db.scalar(select(Coupon.code).where(Coupon.customer_id == customer_id))
    assert code is not None
    # then the code is 10 symbols of the coupon alphabet, as a redeemed reward's is
    assert len(code) == reward_coupons.CODE_LENGTH == 10
    assert set(code) <= set(reward_coupons.CODE_ALPHABET)
    # and the form sent twice issues it once
    again = admin.post(url, data=form, follow_redirects=False)
    assert "issued already" in str(said_after(admin, again))
    assert _coupons(db) == 1


def test_the_panel_lists_the_newest_open_coupons_and_counts_the_rest(
    admin: TestClient, db: Session
) -> None:
    # given a member with 2 coupons that expired, 1 used, and 8 open ones issued a minute
    # apart, and another customer's open coupon
    moment = frozen_clock()
    customer_id, other = make_customer(db), make_customer(db)

    def coupon(holder: str, days: int) -> str:
        moment.advance(timedelta(minutes=1))
        return reward_coupons.create_campaign_coupon(
            db,
            rule="goodwill:test",
            kind="amount",
            value=500,
            customer_id=holder,
            expires_at=clock.now() + timedelta(days=days),
        ).code

    expired = [coupon(customer_id, 1) for _ in range(2)]
    used = coupon(customer_id, 30)
    reward_coupons.consume_coupons(db, codes=[used], order_id="O-USED")
    db.commit()
    moment.advance(timedelta(days=2))
    open_ones = [coupon(customer_id, 30) for _ in range(8)]
    theirs = coupon(other, 30)

    # when the panel is opened
    html = admin.get(f"/admin/loyalty/customers/{customer_id}/panel").text

    # then it lists the 5 newest open coupons, newest first, and says how many more are open,
    # linking to them
    listed = re.search(r'data-testid="panel-coupons"[^>]*>(.*?)</dd>', html, re.S)
    assert listed is not None
    assert re.findall(r"<code>(\w+)</code>", listed.group(1)) == open_ones[::-1][:5]
    link = f"/admin/loyalty/coupons?customer={customer_id}&amp;state=open"
    assert f'<a href="{link}" data-testid="panel-more-coupons">and 3 more open</a>' in html

    # and the link lists every open coupon of theirs, a page at a time, and no one else's
    page = admin.get(link.replace("&amp;", "&"))
    assert page.status_code == 200
    table = re.search(r'data-testid="coupons"(.*?)</table>', page.text, re.S)
    assert table is not None
    codes = re.findall(r"<code>(\w+)</code>", table.group(1))
    assert codes == open_ones[::-1]
    assert not {*expired, used, theirs} & set(codes)
    assert f'name="customer" value="{customer_id}"' in page.text


@pytest.mark.parametrize("htmx", [True, False])
def test_a_cancelled_membership_is_resumed_from_the_panel(
    admin: TestClient, db: Session, htmx: bool
) -> None:
    # given a member who cancelled a monthly plan (the period ends on 1 April)
    moment = frozen_clock()
    membership_plans.save_plan(
        db, plan_id="plus", name="Plus", fee_minor=499, currency="EUR", period="month"
    )
    customer_id = make_customer(db)
    memberships.join(db, customer_id=customer_id, plan_id="plus")
    memberships.cancel(db, customer_id=customer_id)
    moment.advance(timedelta(days=5))
    html = admin.get(f"/admin/loyalty/customers/{customer_id}/panel").text
    assert 'data-testid="membership-resume"' in html
    # when "Resume membership" is pressed twice (a double click)
    path = f"/admin/loyalty/customers/{customer_id}/membership/resume"
    headers = {"HX-Request": "true"} if htmx else {}
    answers = [
        admin.post(
            path,
            data={"csrf_token": csrf_token(html)},
            headers=headers,
            follow_redirects=False,
        )
        for _ in range(2)
    ]
    # then it renews again with the one fee paid at joining, and the panel says so
    if htmx:
        assert [a.status_code for a in answers] == [200, 200]
        said = _text(answers[0].text, "panel-message")
        assert 'data-testid="membership-resume"' not in answers[0].text
    else:
        assert [a.status_code for a in answers] == [303, 303]
        said = str(said_after(admin, answers[0]))
    assert "Membership resumed: it renews on 1 Apr 2026, with no fee now" in said
    db.expire_all()
    membership = memberships.get_membership(db, customer_id=customer_id)
    assert membership is not None
    assert (membership.status, membership.auto_renew) == ("active", True)
    assert [p.amount_minor for p in memberships.payments(db, customer_id=customer_id)] == [499]


def test_a_cancelled_membership_on_a_retired_plan_offers_no_resume(
    admin: TestClient, db: Session
) -> None:
    # given a member who cancelled a monthly plan that was then retired (benefits to 1 April)
    frozen_clock()
    membership_plans.save_plan(
        db, plan_id="old", name="Old Plus", fee_minor=499, currency="EUR", period="month"
    )
    customer_id = make_customer(db)
    memberships.join(db, customer_id=customer_id, plan_id="old")
    memberships.cancel(db, customer_id=customer_id)
    membership_plans.save_plan(
        db,
        plan_id="old",
        name="Old Plus",
        fee_minor=499,
        currency="EUR",
        period="month",
        active=False,
    )
    # when the panel is shown
    html = admin.get(f"/admin/loyalty/customers/{customer_id}/panel").text
    # then it offers no Resume button (the command would refuse it) and says why
    assert 'data-testid="membership-resume"' not in html
    said = "Cannot be resumed: the plan Old Plus was retired; choose another plan"
    assert said in _text(html, "membership")
