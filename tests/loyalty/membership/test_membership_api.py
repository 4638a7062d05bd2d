"""Membership, rewards, coupons, referrals, announcements and analytics over HTTP, on SQLite
and PostgreSQL: scopes, idempotency keys, problem+json naming the field."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from rapport.events.models import Event
from rapport.loyalty import service as loyalty
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.models import Coupon, MembershipPayment
from rapport.loyalty.rewards import coupons
from rapport.platform import clock
from tests.conftest import auth, command
from tests.loyalty.factories import frozen_clock, make_customer

PLAN = {"name": "Plus", "fee_minor": 499, "currency": "EUR", "period": "month"}
REWARD = {"name": "5 off", "points_cost": 100, "coupon_kind": "amount", "coupon_value": 500}


def test_plans_need_the_admin_scope_and_validate_fields(client, api_key) -> None:  # type: ignore[no-untyped-def]
    admin, writer = auth(api_key("admin", "read")), auth(api_key("write", "read"))
    refused = client.put("/v1/loyalty/plans/plus", json=PLAN, headers=writer)
    invalid = client.put("/v1/loyalty/plans/plus", json=PLAN | {"fee_minor": -1}, headers=admin)
    made_up = client.put("/v1/loyalty/plans/plus", json=PLAN | {"currency": "XYZ"}, headers=admin)
    saved = client.put("/v1/loyalty/plans/plus", json=PLAN, headers=admin)
    listed = client.get("/v1/loyalty/plans", headers=writer)
    assert refused.status_code == 403
    assert (invalid.status_code, invalid.json()["field"]) == (422, "fee_minor")
    assert (made_up.status_code, made_up.json()["field"]) == (422, "currency")
    assert saved.status_code == 200
    assert [(p["plan_id"], p["fee_minor"], p["period"]) for p in listed.json()] == [
        ("plus", 499, "month")
    ]


def test_a_plan_without_benefits_named_gives_none(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    admin = auth(api_key("admin", "read"))
    # when a plan is created naming no benefit
    saved = client.put("/v1/loyalty/plans/basic", json=PLAN | {"name": "Basic"}, headers=admin)
    # then it gives none: no free shipping, no member prices, no early access, points x1
    assert saved.status_code == 200
    benefits = ("free_shipping", "member_prices", "early_access_hours", "points_multiplier")
    assert [saved.json()[name] for name in benefits] == [False, False, 0, 1.0]
    # and the API reference says so
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PlanIn"]["properties"]
    assert [schema[name]["default"] for name in benefits] == [False, False, 0, 1.0]
    # while a benefit named is given
    given = PLAN | {"free_shipping": True, "member_prices": True, "early_access_hours": 24}
    shown = client.put("/v1/loyalty/plans/basic", json=given, headers=admin).json()
    assert [shown[name] for name in benefits] == [True, True, 24, 1.0]


def test_join_is_idempotent_and_the_membership_shows_its_value(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    admin, writer = auth(api_key("admin", "read")), auth(api_key("write", "read"))
    client.put("/v1/loyalty/plans/plus", json=PLAN, headers=admin)
    customer_id = make_customer(db)
    path = f"/v1/loyalty/members/{customer_id}/membership"
    # when the same join is sent twice with one key, once without a key
    first = client.post(path, json={"plan_id": "plus"}, headers=writer | {"Idempotency-Key": "j1"})
    replay = client.post(path, json={"plan_id": "plus"}, headers=writer | {"Idempotency-Key": "j1"})
    keyless = client.post(path, json={"plan_id": "plus"}, headers=writer)
    again = client.post(path, json={"plan_id": "plus"}, headers=writer | {"Idempotency-Key": "j2"})
    # then one membership and one payment; the replay answers the first answer
    assert first.status_code == 201
    assert (replay.status_code, replay.json()) == (201, first.json())
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert keyless.status_code == 400
    assert (again.status_code, again.json()["field"]) == (409, "customer_id")
    assert db.scalar(select(func.count()).select_from(MembershipPayment)) == 1
    shown = client.get(path, headers=writer).json()
    assert (shown["status"], shown["benefits"], shown["plan_id"]) == ("active", True, "plus")
    assert (shown["value"]["fee_paid_minor"], shown["value"]["savings_minor"]) == (499, 0)
    # and cancelling keeps the benefits until the period ends
    cancelled = client.post(f"{path}/cancel", headers=writer | {"Idempotency-Key": "c1"}).json()
    assert (cancelled["status"], cancelled["benefits"], cancelled["auto_renew"]) == (
        "cancelled",
        True,
        False,
    )
    missing = client.get(f"/v1/loyalty/members/{make_customer(db)}/membership", headers=writer)
    assert (missing.status_code, missing.json()["field"]) == (404, "customer_id")


def test_a_cancelled_membership_is_resumed_before_it_lapses_with_no_new_fee(  # type: ignore[no-untyped-def]
    client, api_key, db
) -> None:
    frozen = frozen_clock()  # 1 March 2026, a monthly plan: the period ends on 1 April
    admin, writer = auth(api_key("admin", "read")), auth(api_key("write", "read"))
    client.put("/v1/loyalty/plans/plus", json=PLAN, headers=admin)
    customer_id = make_customer(db)
    path = f"/v1/loyalty/members/{customer_id}/membership"
    client.post(path, json={"plan_id": "plus"}, headers=writer | {"Idempotency-Key": "j1"})
    client.post(f"{path}/cancel", headers=writer | {"Idempotency-Key": "c1"})
    # when the member tries to join again before it lapses
    again = client.post(path, json={"plan_id": "plus"}, headers=writer | {"Idempotency-Key": "j2"})
    # then 409 says when it lapses and how to keep it
    assert (again.status_code, again.json()["field"]) == (409, "customer_id")
    assert again.json()["detail"] == (
        f"Customer {customer_id!r} already has a cancelled membership of plan 'plus', which "
        "lapses on 1 Apr 2026 (2026-04-01T09:00:00+00:00). To keep it, resume it with "
        f"POST /v1/loyalty/members/{customer_id}/membership/resume (no new fee); to change "
        "plan, join again once it has lapsed"
    )
    # when it is resumed, the same request twice and once more with another key
    frozen.advance(timedelta(days=10))
    resumed = client.post(f"{path}/resume", headers=writer | {"Idempotency-Key": "r1"})
    replay = client.post(f"{path}/resume", headers=writer | {"Idempotency-Key": "r1"})
    once_more = client.post(f"{path}/resume", headers=writer | {"Idempotency-Key": "r2"})
    # then it is active and renewing again, on the period already paid, with no new fee
    assert resumed.status_code == 200
    assert (replay.status_code, replay.json()) == (200, resumed.json())
    assert (once_more.status_code, once_more.json()) == (200, resumed.json())
    shown = resumed.json()
    assert (shown["status"], shown["auto_renew"], shown["cancelled_at"]) == ("active", True, None)
    assert shown["current_period_end"] == "2026-04-01T09:00:00+00:00"
    assert db.scalar(select(func.count()).select_from(MembershipPayment)) == 1
    resumed_events = (
        select(func.count()).select_from(Event).where(Event.type == "membership_resumed")
    )
    assert db.scalar(resumed_events) == 1
    # and it renews at the period's end like any active membership
    frozen.advance(timedelta(days=21))
    assert memberships.renew_due(db).renewed_periods == 1
    assert client.get(path, headers=writer).json()["status"] == "active"


def test_a_membership_whose_period_ended_is_not_resumed(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    frozen = frozen_clock()
    admin, writer = auth(api_key("admin", "read")), auth(api_key("write", "read"))
    client.put("/v1/loyalty/plans/plus", json=PLAN, headers=admin)
    customer_id = make_customer(db)
    path = f"/v1/loyalty/members/{customer_id}/membership"
    client.post(path, json={"plan_id": "plus"}, headers=writer | {"Idempotency-Key": "j1"})
    client.post(f"{path}/cancel", headers=writer | {"Idempotency-Key": "c1"})
    # when the paid period has ended (before the job marked it lapsed)
    frozen.advance(timedelta(days=31))
    late = client.post(f"{path}/resume", headers=writer | {"Idempotency-Key": "r1"})
    nobody = client.post(
        f"/v1/loyalty/members/{make_customer(db)}/membership/resume",
        headers=writer | {"Idempotency-Key": "r2"},
    )
    # then 409 says it lapsed and to join again; a customer with none is 404
    assert (late.status_code, late.json()["field"]) == (409, "customer_id")
    assert "lapsed on 1 Apr 2026" in late.json()["detail"]
    assert "join again" in late.json()["detail"]
    assert (nobody.status_code, nobody.json()["field"]) == (404, "customer_id")
    assert client.get(path, headers=writer).json()["status"] == "cancelled"
    # and once the renewal job has marked it lapsed, the same 409, not 404
    assert memberships.renew_due(db).lapsed == 1
    marked = client.post(f"{path}/resume", headers=writer | {"Idempotency-Key": "r3"})
    assert (marked.status_code, marked.json()["field"]) == (409, "customer_id")
    assert marked.json()["detail"] == (
        f"Customer {customer_id!r}'s membership of plan 'plus' lapsed on 1 Apr 2026 "
        "(2026-04-01T09:00:00+00:00) because it was cancelled: join again to become a member"
    )
    assert client.get(path, headers=writer).json()["status"] == "lapsed"


def test_a_membership_on_a_retired_plan_is_not_resumed(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    frozen = frozen_clock()  # 1 March 2026, a monthly plan: the period ends on 1 April
    admin, writer = auth(api_key("admin", "read")), auth(api_key("write", "read"))
    client.put("/v1/loyalty/plans/old", json=PLAN, headers=admin)
    cancelling, renewing = make_customer(db), make_customer(db)
    for customer_id in (cancelling, renewing):
        client.post(
            f"/v1/loyalty/members/{customer_id}/membership",
            json={"plan_id": "old"},
            headers=writer | {"Idempotency-Key": f"j-{customer_id}"},
        )
    path = f"/v1/loyalty/members/{cancelling}/membership"
    client.post(f"{path}/cancel", headers=writer | {"Idempotency-Key": "c1"})
    client.put("/v1/loyalty/plans/old", json=PLAN | {"active": False}, headers=admin)
    # when the cancelled member asks to resume on the retired plan
    refused = client.post(f"{path}/resume", headers=writer | {"Idempotency-Key": "r1"})
    # then 409 says the plan is retired and when benefits end; nothing changes, nothing logged
    assert (refused.status_code, refused.json()["field"]) == (409, "customer_id")
    assert refused.json()["detail"] == (
        f"Customer {cancelling!r}'s membership of plan 'old' cannot be resumed: the plan is "
        "retired, so it renews nobody. Its benefits end on 1 Apr 2026 "
        "(2026-04-01T09:00:00+00:00); join another plan to stay a member"
    )
    shown = client.get(path, headers=writer).json()
    assert (shown["status"], shown["auto_renew"]) == ("cancelled", False)
    resumed_events = (
        select(func.count()).select_from(Event).where(Event.type == "membership_resumed")
    )
    assert db.scalar(resumed_events) == 0
    # when the renewing member's period ends on the retired plan and the job lapses it
    frozen.advance(timedelta(days=31))
    assert memberships.renew_due(db).lapsed == 2
    late = client.post(
        f"/v1/loyalty/members/{renewing}/membership/resume",
        headers=writer | {"Idempotency-Key": "r2"},
    )
    # then 409 says when and why it lapsed
    assert (late.status_code, late.json()["field"]) == (409, "customer_id")
    assert late.json()["detail"] == (
        f"Customer {renewing!r}'s membership of plan 'old' lapsed on 1 Apr 2026 "
        "(2026-04-01T09:00:00+00:00) because the plan was retired: join another plan to "
        "become a member"
    )


def test_a_plans_currency_is_kept_once_it_has_members(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    admin, writer = auth(api_key("admin", "read")), auth(api_key("write", "read"))
    client.put("/v1/loyalty/plans/plus", json=PLAN, headers=admin)
    customer_id = make_customer(db)
    joined = client.post(
        f"/v1/loyalty/members/{customer_id}/membership",
        json={"plan_id": "plus"},
        headers=writer | {"Idempotency-Key": "j1"},
    )
    assert joined.status_code == 201
    # when the plan's currency is changed, then 409 naming currency, and nothing changes
    changed = client.put("/v1/loyalty/plans/plus", json=PLAN | {"currency": "JPY"}, headers=admin)
    assert (changed.status_code, changed.json()["field"]) == (409, "currency")
    assert changed.headers["content-type"].startswith("application/problem+json")
    assert "create a new plan in JPY" in changed.json()["detail"]
    listed = client.get("/v1/loyalty/plans", headers=writer).json()
    assert [(p["plan_id"], p["currency"]) for p in listed] == [("plus", "EUR")]
    # and its value statement lists money in another currency apart
    shown = client.get(f"/v1/loyalty/members/{customer_id}/membership", headers=writer).json()
    assert (shown["value"]["currency"], shown["value"]["other_currencies"]) == ("EUR", [])


def test_redeeming_a_reward_over_http_answers_a_coupon_once(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    admin, writer = auth(api_key("admin", "read")), auth(api_key("write", "read"))
    assert client.put("/v1/loyalty/rewards/five-off", json=REWARD, headers=admin).status_code == 200
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=150, reason="Order")
    path = f"/v1/loyalty/members/{customer_id}/rewards/five-off/redeem"
    first = client.post(path, headers=writer | {"Idempotency-Key": "r1"})
    replay = client.post(path, headers=writer | {"Idempotency-Key": "r1"})
    broke = client.post(path, headers=writer | {"Idempotency-Key": "r2"})
    assert first.status_code == 201
    assert replay.json() == first.json()
    assert (broke.status_code, broke.json()["field"], broke.json()["balance"]) == (
        409,
        "points",
        50,
    )
    assert db.scalar(select(func.count()).select_from(Coupon)) == 1
    code = first.json()["code"]
    # and the coupon validates for its owner only
    checked = client.post(
        "/v1/loyalty/coupons/validate",
        json={"customer_id": customer_id, "codes": [code, "NOPE"]},
        headers=writer,
    ).json()
    assert [c["code"] for c in checked["valid"]] == [code]
    assert checked["refused"] == {"NOPE": "unknown"}
    catalogue = client.get("/v1/loyalty/rewards", headers=writer).json()
    assert [r["reward_id"] for r in catalogue] == ["five-off"]


def test_a_members_coupons_come_a_page_at_a_time(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    reader = auth(api_key("read"))
    customer_id = make_customer(db)
    soon = clock.now() + timedelta(days=10)
    for n in range(7):  # expiring in reverse order of their codes, two on the same day
        coupons.create_campaign_coupon(
            db,
            rule="campaign:test",
            kind="amount",
            value=500,
            expires_at=soon + timedelta(days=max(0, 6 - n - 1)),
            code=f"PAGE{n}",
            customer_id=customer_id,
        )
    db.commit()
    url = f"/v1/loyalty/members/{customer_id}/coupons"
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get(url, params=params, headers=reader)
        assert page.status_code == 200, page.text
        seen += [c["code"] for c in page.json()["items"]]
        pages += 1
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    # then every coupon comes once, soonest to expire first, ties by code
    assert pages == 3
    assert seen == ["PAGE5", "PAGE6", "PAGE4", "PAGE3", "PAGE2", "PAGE1", "PAGE0"]
    assert len(client.get(url, headers=reader).json()["items"]) == 7
    # and a cursor no page gave, or a limit beyond 100, is refused naming it
    wrong = client.get(url, params={"cursor": "NOPE"}, headers=reader)
    assert (wrong.status_code, wrong.json()["field"]) == (422, "cursor")
    too_many = client.get(url, params={"limit": 101}, headers=reader)
    assert (too_many.status_code, too_many.json()["field"]) == (422, "limit")


def test_a_members_coupons_are_the_open_ones_unless_asked_for_more(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    # given a member with a coupon still open, one expired unused and one used
    reader = auth(api_key("read"))
    moment = frozen_clock()
    customer_id = make_customer(db)

    def coupon(code: str, days: int) -> None:
        coupons.create_campaign_coupon(
            db,
            rule="campaign:test",
            kind="amount",
            value=500,
            expires_at=clock.now() + timedelta(days=days),
            code=code,
            customer_id=customer_id,
        )

    coupon("GONE1", 1)
    coupon("USED1", 20)
    coupon("OPEN1", 30)
    coupons.consume_coupons(db, codes=["USED1"], order_id="O-1")
    db.commit()
    moment.advance(timedelta(days=2))
    url = f"/v1/loyalty/members/{customer_id}/coupons"

    def listed(**params: str) -> list[str]:
        answer = client.get(url, params=params, headers=reader)
        assert answer.status_code == 200, answer.text
        return [c["code"] for c in answer.json()["items"]]

    # then the list is of the coupons they can use now, as the word "open" says everywhere
    assert listed() == ["OPEN1"]
    # and the expired ones, the used ones, or both come when asked for
    assert listed(include_expired="true") == ["GONE1", "OPEN1"]
    assert listed(include_used="true") == ["USED1", "OPEN1"]
    assert listed(include_used="true", include_expired="true") == ["GONE1", "USED1", "OPEN1"]


def test_referral_code_and_referrals_over_http(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    writer = auth(api_key("write", "read"))
    member, friend = make_customer(db), make_customer(db)
    code = client.get(f"/v1/loyalty/members/{member}/referral-code", headers=writer).json()["code"]
    made = client.post(
        "/v1/loyalty/referrals",
        json={"code": code, "friend_id": friend},
        headers=writer | {"Idempotency-Key": "f1"},
    )
    self_referral = client.post(
        "/v1/loyalty/referrals",
        json={"code": code, "friend_id": member},
        headers=writer | {"Idempotency-Key": "f2"},
    )
    assert made.status_code == 201
    assert (made.json()["referrer_id"], made.json()["completed_at"]) == (member, None)
    assert (self_referral.status_code, self_referral.json()["field"]) == (422, "friend_id")


def test_announcements_are_admin_only_and_published(client, api_key, db) -> None:  # type: ignore[no-untyped-def]
    admin, reader = auth(api_key("admin", "read")), auth(api_key("read"))
    body = {"kind": "new_benefit", "title": "Gift wrap", "body": "Free for members."}
    refused = client.post("/v1/loyalty/announcements", json=body, headers=command(reader))
    bad = client.post(
        "/v1/loyalty/announcements", json=body | {"audience": "friends"}, headers=command(admin)
    )
    published = client.post("/v1/loyalty/announcements", json=body, headers=command(admin))
    assert refused.status_code == 403
    assert (bad.status_code, bad.json()["field"]) == (422, "audience")
    assert published.status_code == 202
    announcement_id = published.json()["id"]
    # the campaigns domain sends it: the fact is in the log, the counts fill in as it goes
    facts = db.scalars(select(Event).where(Event.type == "announcement_published")).all()
    assert [f.properties["announcement_id"] for f in facts] == [announcement_id]
    listed = client.get("/v1/loyalty/announcements", headers=reader).json()
    assert [(a["title"], a["audience"], a["queued_count"], a["sent_count"]) for a in listed] == [
        ("Gift wrap", "all", 0, 0)
    ]


def test_an_announcement_to_a_tier_the_program_lacks_is_refused_naming_the_tiers(  # type: ignore[no-untyped-def]
    client, api_key, db
) -> None:
    admin = auth(api_key("admin", "read"))
    body = {"kind": "new_benefit", "title": "Lounge", "body": "Free coffee."}
    platinum = client.post(
        "/v1/loyalty/announcements",
        json=body | {"audience": "tier:platinum"},
        headers=command(admin),
    )
    # then it is refused naming audience and the tiers there are, and nothing is published
    assert platinum.status_code == 422
    assert platinum.json()["field"] == "audience"
    assert "'tier:member', 'tier:silver', 'tier:gold'" in platinum.json()["detail"]
    assert (
        db.scalar(
            select(func.count()).select_from(Event).where(Event.type == "announcement_published")
        )
        == 0
    )
    gold = client.post(
        "/v1/loyalty/announcements", json=body | {"audience": "tier:gold"}, headers=command(admin)
    )
    assert gold.status_code == 202


def test_membership_analytics_answers_three_segments(client, api_key) -> None:  # type: ignore[no-untyped-def]
    reader = auth(api_key("read"))
    report = client.get("/v1/loyalty/analytics/membership", headers=reader)
    inverted = client.get(
        "/v1/loyalty/analytics/membership",
        params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        headers=reader,
    )
    assert [s["segment"] for s in report.json()["segments"]] == ["paying", "free", "non_member"]
    assert (inverted.status_code, inverted.json()["field"]) == (422, "until")
