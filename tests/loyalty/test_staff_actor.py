"""Who gave points or a coupon by hand: a goodwill adjustment and a coupon from the customer
page record the admin user's login, an API call its key (``api:<key name>``); the statement,
the coupon objects and the admin show it, the customer's export leaves it out (staff's
data), and points given by hand have one cap."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.flows import privacy
from rapport.loyalty import service as loyalty
from rapport.loyalty.ledger.tables import TRANSACTIONS
from rapport.loyalty.models import Coupon
from rapport.loyalty.rewards import catalogue as reward_catalogue
from tests.conftest import auth, command
from tests.loyalty.factories import make_customer
from tests.platform.admin_forms import ADMIN_EMAIL, csrf_token, page_form, post_form, typed


def _adjusted_events(db: Session, customer_id: str) -> list[dict]:
    return [
        e.properties
        for e in db.scalars(
            select(Event).where(Event.customer_id == customer_id, Event.type == "points_adjusted")
        )
    ]


def _five_off(db: Session) -> None:
    reward_catalogue.save_reward(
        db,
        reward_id="five-off",
        name="5 off",
        points_cost=100,
        coupon_kind="amount",
        coupon_value=500,
    )


def test_an_adjustment_over_the_api_names_the_key(client: TestClient, db: Session, api_key) -> None:
    # given an admin key named "test admin"
    key = api_key("admin", "read")
    customer_id = make_customer(db)
    # when it adjusts a member's points
    answer = client.post(
        f"/v1/loyalty/members/{customer_id}/adjust",
        json={"points": 15, "reason": "Goodwill"},
        headers=command(key),
    )
    assert answer.status_code == 201, answer.text
    # then the journal, the event and the statement line say who: the key
    db.expire_all()
    details = db.scalar(
        select(TRANSACTIONS.c.details).where(TRANSACTIONS.c.customer_id == customer_id)
    )
    assert details == {"by": "api:test admin+read"}
    assert [e["by"] for e in _adjusted_events(db, customer_id)] == ["api:test admin+read"]
    lines = client.get(f"/v1/loyalty/members/{customer_id}/statement", headers=auth(key)).json()
    assert [(m["kind"], m["points"], m["by"]) for m in lines["items"]] == [
        ("adjust", 15, "api:test admin+read")
    ]


def test_goodwill_from_the_customer_page_names_the_admin_user(
    admin: TestClient, db: Session, api_key
) -> None:
    # given a customer and the admin signed in as ops@example.com
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=50, reason="Order O-1", order_id="O-1")
    token = csrf_token(admin.get("/admin/loyalty/plans").text)
    # when goodwill points are given from the loyalty panel
    form = {
        "csrf_token": token,
        "points": "120",
        "reason": "Late delivery",
        "note": "",
        "token": "g-1",
    }
    url = f"/admin/loyalty/customers/{customer_id}/goodwill"
    assert admin.post(url, data=form, follow_redirects=False).status_code == 303
    # then the adjustment records the admin's login, in the journal and the event
    db.expire_all()
    journal = db.execute(
        select(TRANSACTIONS.c.kind, TRANSACTIONS.c.details).where(
            TRANSACTIONS.c.customer_id == customer_id
        )
    )
    assert {row.kind: row.details for row in journal} == {
        "earn": {},
        "adjust": {"by": ADMIN_EMAIL},
    }
    assert [e["by"] for e in _adjusted_events(db, customer_id)] == [ADMIN_EMAIL]
    # and the statement over the API, the member's statement and the panel show it
    lines = admin.get(
        f"/v1/loyalty/members/{customer_id}/statement", headers=auth(api_key("read"))
    ).json()["items"]
    assert [(m["kind"], m["by"]) for m in lines] == [("adjust", ADMIN_EMAIL), ("earn", None)]
    statement = admin.get(f"/admin/loyalty/members/{customer_id}").text
    assert f'data-testid="movement-by">{ADMIN_EMAIL}<' in statement
    panel = admin.get(f"/admin/loyalty/customers/{customer_id}/panel").text
    assert f'data-testid="panel-movement-by">by {ADMIN_EMAIL}<' in panel
    # but the customer's export leaves who on the staff out
    exported = privacy.export_customer(db, customer_id=customer_id, requested_by="dpo@x.org")
    assert [t["details"] for t in exported["loyalty"]["transactions"]] == [{}, {}]


def test_a_coupon_from_the_customer_page_names_the_admin_user(
    admin: TestClient, db: Session, api_key
) -> None:
    # given a member with points for a reward
    _five_off(db)
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=100, reason="Order O-1", order_id="O-1")
    token = csrf_token(admin.get("/admin/loyalty/plans").text)
    url = f"/admin/loyalty/customers/{customer_id}/coupon"
    # when the admin issues one coupon free and one for the member's points
    for pay, one_time in (("free", "c-1"), ("points", "c-2")):
        form = {"csrf_token": token, "reward_id": "five-off", "pay": pay, "token": one_time}
        assert admin.post(url, data=form, follow_redirects=False).status_code == 303
    # then both record the admin's login
    db.expire_all()
    issued = db.scalars(select(Coupon.issued_by).where(Coupon.customer_id == customer_id)).all()
    assert issued == [ADMIN_EMAIL, ADMIN_EMAIL]
    # and the coupon objects of the API and the panel show it
    listed = admin.get(
        f"/v1/loyalty/members/{customer_id}/coupons", headers=auth(api_key("read"))
    ).json()["items"]
    assert [c["issued_by"] for c in listed] == [ADMIN_EMAIL, ADMIN_EMAIL]
    panel = admin.get(f"/admin/loyalty/customers/{customer_id}/panel").text
    assert panel.count(f"by {ADMIN_EMAIL}</small>") == 2


def test_a_reward_redeemed_over_the_api_names_the_key(
    client: TestClient, db: Session, api_key
) -> None:
    _five_off(db)
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=100, reason="Order O-1", order_id="O-1")
    answer = client.post(
        f"/v1/loyalty/members/{customer_id}/rewards/five-off/redeem",
        headers=command(api_key("write")),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["issued_by"] == "api:test write"


def test_points_given_by_hand_have_one_cap() -> None:
    from rapport.feedback.schemas import APOLOGY_POINTS_MAX
    from rapport.loyalty.admin import GOODWILL_MAX

    assert loyalty.MANUAL_POINTS_MAX == GOODWILL_MAX == APOLOGY_POINTS_MAX == 10_000


def test_a_coupon_campaign_from_the_coupons_page_names_the_admin_user(
    admin: TestClient, db: Session
) -> None:
    # when a set of coupons is made on the Coupons page
    fields = page_form(admin.get("/admin/loyalty/coupons").text, action="/admin/loyalty/coupons")
    fields = typed(typed(typed(fields, "rule", "flyer"), "value", "5"), "count", "2")
    assert post_form(admin, "/admin/loyalty/coupons", fields).status_code == 303
    # then every coupon of the set names the admin who made it
    db.expire_all()
    assert [c.issued_by for c in db.query(Coupon)] == [ADMIN_EMAIL, ADMIN_EMAIL]
