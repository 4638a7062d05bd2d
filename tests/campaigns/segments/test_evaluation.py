"""Each condition kind picks exactly the customers it names, on SQLite and PostgreSQL, and a
segment never holds an erased or merged profile."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from rapport.campaigns import service as campaigns
from rapport.customers import service as customers
from rapport.customers.models import RfmBoundaries
from rapport.events import service as events
from rapport.events.models import Event
from rapport.flows import privacy
from rapport.loyalty import service as loyalty
from rapport.loyalty.models import TierStanding
from rapport.orders import service as orders
from rapport.orders.models import CustomerValueScore
from rapport.orders.schemas import OrderIn
from rapport.platform import clock
from rapport.platform.errors import InvalidInput
from rapport.platform.ids import new_id
from tests.campaigns.segments.factories import make_customer, make_stores, set_traits
from tests.orders.factories import order_body, seed_catalog

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> None:
    clock.set_clock(clock.FrozenClock(NOW))


def members(db: Session, definition: dict[str, Any]) -> set[str]:
    parsed = campaigns.parse_definition(definition)
    return {str(row) for row in db.scalars(campaigns.segment_query(db, parsed))}


def one(condition: dict[str, Any]) -> dict[str, Any]:
    return {"match": "all", "conditions": [condition]}


def test_traits_compare_numbers_days_ago_channels_and_attributes(db: Session) -> None:
    # given three customers with different histories
    recent = make_customer(
        db,
        home_city="Lyon",
        traits={
            "order_count": 5,
            "spend_minor": 50_000,
            "last_order_at": NOW - timedelta(days=3, hours=5),
            "channels": ["app", "web"],
        },
    )
    lapsed = make_customer(
        db,
        traits={
            "order_count": 1,
            "spend_minor": 2_000,
            "last_order_at": NOW - timedelta(days=30, hours=1),
            "channels": ["store"],
        },
    )
    never = make_customer(db)
    # then each comparison picks its customers
    assert members(db, one({"kind": "trait", "field": "order_count", "op": "gte", "value": 2})) == {
        recent
    }
    assert members(
        db, one({"kind": "trait", "field": "spend_minor", "op": "between", "value": [1000, 2000]})
    ) == {lapsed}
    # whole days ago, as the 360 shows them: 3 days 5 hours is 3; 30 days 1 hour is 30
    last_order = {"kind": "trait", "field": "last_order_at"}
    assert members(db, one({**last_order, "op": "lte", "value": 3})) == {recent}
    assert members(db, one({**last_order, "op": "lt", "value": 3})) == set()
    assert members(db, one({**last_order, "op": "gte", "value": 30})) == {lapsed}
    assert members(db, one({**last_order, "op": "eq", "value": 30})) == {lapsed}
    assert members(db, one({**last_order, "op": "gt", "value": 30})) == set()
    assert members(
        db, one({"kind": "trait", "field": "channels", "op": "contains", "value": "web"})
    ) == {recent}
    assert members(
        db, one({"kind": "trait", "field": "home_city", "op": "in", "value": ["Lyon", "Nice"]})
    ) == {recent}
    # a customer with no orders has no "last order" and never matches days-ago comparisons
    assert never not in members(db, one({**last_order, "op": "gte", "value": 0}))


def test_a_crm_attribute_matches_as_text(db: Session) -> None:
    vip = make_customer(db)
    plain = make_customer(db)
    customers.get_customer(db, customer_id=vip).attributes = {"vip": "yes"}  # type: ignore[union-attr]
    customers.get_customer(db, customer_id=plain).attributes = {"vip": "no"}  # type: ignore[union-attr]
    db.commit()
    assert members(
        db, one({"kind": "trait", "field": "attributes.vip", "op": "eq", "value": "yes"})
    ) == {vip}


def test_custom_traits_compare_by_their_type_alike_on_both_databases(db: Session) -> None:
    # given profiles whose custom traits came from tracking, typed as sent
    traits = {
        "thirty": {"age": 30, "plan": "gold", "newsletter": True},
        "forty": {"age": 41.5, "plan": "silver", "newsletter": False},
        "texty": {"age": "thirty", "plan": "30"},
        "bare": {},
    }
    ids = {}
    for label, attributes in traits.items():
        ids[label] = make_customer(db)
        customers.get_customer(db, customer_id=ids[label]).attributes = attributes  # type: ignore[union-attr]
    db.commit()

    def matching(op: str, value: Any, name: str = "age") -> set[str]:
        found = members(
            db, one({"kind": "trait", "field": f"attributes.{name}", "op": op, "value": value})
        )
        return {label for label, cid in ids.items() if cid in found}

    # numbers compare as numbers, never with text that looks like one
    assert matching("gte", 30) == {"thirty", "forty"}
    assert matching("between", [31, 50]) == {"forty"}
    assert matching("eq", 30) == {"thirty"}
    assert matching("eq", 30, name="plan") == set()
    # text as text, booleans as booleans
    assert matching("eq", "30", name="plan") == {"texty"}
    assert matching("in", ["gold", "silver"], name="plan") == {"thirty", "forty"}
    assert matching("eq", True, name="newsletter") == {"thirty"}
    assert matching("eq", False, name="newsletter") == {"forty"}
    # ne: those that have the attribute, with another value
    assert matching("ne", True, name="newsletter") == {"forty"}
    assert matching("ne", "gold", name="plan") == {"forty", "texty"}


def test_a_number_comparison_on_an_attribute_takes_numbers() -> None:
    with pytest.raises(InvalidInput) as refused:
        campaigns.parse_definition(
            {"conditions": [{"kind": "trait", "field": "attributes.age", "op": "gt", "value": "x"}]}
        )
    assert refused.value.field == "conditions.0.value", refused.value.detail


def test_consent_granted_and_not_granted(db: Session) -> None:
    granted = make_customer(db, consents={"marketing_email": True})
    refused = make_customer(db, consents={"marketing_email": False})
    silent = make_customer(db, consents={})
    assert members(db, one({"kind": "consent", "purpose": "marketing_email"})) == {granted}
    not_granted = members(
        db, one({"kind": "consent", "purpose": "marketing_email", "granted": False})
    )
    assert {refused, silent} <= not_granted
    assert granted not in not_granted


def test_tiers_count_customers_without_a_standing_in_the_base_tier(db: Session) -> None:
    gold = make_customer(db)
    base = make_customer(db)
    db.add(
        TierStanding(
            customer_id=gold,
            tier_id="gold",
            since=NOW,
            review_at=NOW + timedelta(days=365),
            updated_at=NOW,
        )
    )
    db.commit()
    assert members(db, one({"kind": "tier", "tiers": ["gold"]})) == {gold}
    in_base = members(db, one({"kind": "tier", "tiers": ["member"]}))
    assert base in in_base
    assert gold not in in_base


def test_paying_members_and_their_plan(db: Session) -> None:
    loyalty.save_plan(
        db, plan_id="plus", name="Plus", fee_minor=500, currency="EUR", period="month"
    )
    member = make_customer(db)
    other = make_customer(db)
    loyalty.join(db, customer_id=member, plan_id="plus")
    assert members(db, one({"kind": "membership"})) == {member}
    assert members(db, one({"kind": "membership", "plans": ["other"]})) == set()
    assert member not in members(db, one({"kind": "membership", "member": False}))
    assert other in members(db, one({"kind": "membership", "member": False}))


def test_points_balance(db: Session) -> None:
    rich = make_customer(db)
    poor = make_customer(db)
    loyalty.earn(db, customer_id=rich, points=500, reason="test")
    loyalty.earn(db, customer_id=poor, points=20, reason="test")
    condition = {"kind": "trait", "field": "points_balance", "op": "gte", "value": 100}
    assert members(db, one(condition)) == {rich}


def test_rfm_scores_follow_the_stored_boundaries(db: Session) -> None:
    best = make_customer(
        db,
        traits={"order_count": 9, "spend_minor": 90_000, "last_order_at": NOW - timedelta(days=2)},
    )
    worst = make_customer(
        db,
        traits={"order_count": 1, "spend_minor": 1_000, "last_order_at": NOW - timedelta(days=400)},
    )
    for metric, boundaries in {
        "recency_days": [10.0, 30.0, 90.0, 180.0],
        "frequency": [2.0, 3.0, 5.0, 8.0],
        "monetary.EUR": [5_000.0, 10_000.0, 30_000.0, 60_000.0],
    }.items():
        db.add(RfmBoundaries(metric=metric, boundaries=boundaries, computed_at=NOW))
    db.commit()
    assert members(db, one({"kind": "rfm", "recency": [5, 5], "frequency": [5, 5]})) == {best}
    assert members(db, one({"kind": "rfm", "recency": [1, 1], "monetary": [1, 2]})) == {worst}
    assert members(db, one({"kind": "rfm", "frequency": [2, 4]})) == set()


# The customer-value table gained the chance of a purchase in the next 90 days (issue 16, A).
_PURCHASE_CHANCE = {"p_purchase_90d": 0.5} if hasattr(CustomerValueScore, "p_purchase_90d") else {}


def test_predicted_value_value_tier_and_p_alive(db: Session) -> None:
    top = make_customer(db)
    rest = make_customer(db)
    for customer_id, value, tier, alive in (
        (top, 90_000, "top1", 0.95),
        (rest, 1_000, "rest", 0.2),
    ):
        db.add(
            CustomerValueScore(
                customer_id=customer_id,
                frequency=3,
                recency_days=10.0,
                age_days=100.0,
                monetary_minor=1000,
                expected_purchases_90d=1.0,
                p_alive=alive,
                expected_spend_minor=1000,
                predicted_value_minor=value,
                value_tier=tier,
                fitted_at=NOW,
                **_PURCHASE_CHANCE,
            )
        )
    db.commit()
    assert members(db, one({"kind": "predicted_value", "min_minor": 50_000})) == {top}
    assert members(db, one({"kind": "value_tier", "tiers": ["rest"]})) == {rest}
    assert members(db, one({"kind": "p_alive", "max": 0.5})) == {rest}


def _order(db: Session, external_id: str, order_id: str, at: datetime, **overrides: Any) -> None:
    clock.set_clock(clock.FrozenClock(at))
    orders.place_order(
        db, order=OrderIn(**order_body(order_id=order_id, customer_id=external_id, **overrides))
    )
    clock.set_clock(clock.FrozenClock(NOW))


def test_bought_category_and_spent_more_than_in_a_window(db: Session) -> None:
    seed_catalog(db, stock=50)
    wine_lover = make_customer(db, external_id="WINE-1")
    old_buyer = make_customer(db, external_id="WINE-OLD")
    tools_only = make_customer(db, external_id="TOOLS-1")
    _order(db, "WINE-1", "O-1", NOW - timedelta(days=5))  # Chianti (Wine/Red) + corkscrew
    _order(db, "WINE-OLD", "O-2", NOW - timedelta(days=60))
    _order(
        db,
        "TOOLS-1",
        "O-3",
        NOW - timedelta(days=1),
        lines=[{"sku": "K-CORK", "quantity": 1, "unit_price_minor": 900}],
        subtotal_minor=900,
        discount_minor=0,
        shipping_minor=0,
        total_minor=900,
        payments=[{"method": "card", "amount_minor": 900}],
    )
    wine_30 = one({"kind": "bought_category", "category": "Wine", "days": 30})
    assert members(db, wine_30) == {wine_lover}
    assert members(db, one({"kind": "bought_category", "category": "Wine", "days": 90})) == {
        wine_lover,
        old_buyer,
    }
    # order totals: 3490 each for the wine orders, 900 for the corkscrew alone
    assert members(db, one({"kind": "spent_more_than", "amount_minor": 1000, "days": 30})) == {
        wine_lover
    }
    # in a category: only the lines in it (two Chianti at 1200 = 2400)
    in_wine = {"kind": "spent_more_than", "amount_minor": 2399, "days": 90, "category": "Wine"}
    assert members(db, one(in_wine)) == {wine_lover, old_buyer}
    assert members(db, one({**in_wine, "amount_minor": 2400})) == set()
    assert tools_only in members(
        db, one({"kind": "spent_more_than", "amount_minor": 500, "days": 7})
    )


def _event(db: Session, customer_id: str, event_type: str, at: datetime) -> None:
    db.add(
        Event(
            event_id=new_id("evt"),
            type=event_type,
            customer_id=customer_id,
            channel="web",
            occurred_at=at,
            received_at=at,
            properties={},
            context={},
        )
    )
    db.commit()


def test_events_did_at_least_k_times_or_did_not(db: Session) -> None:
    keen = make_customer(db)
    once = make_customer(db)
    long_ago = make_customer(db)
    for days in (1, 2, 3):
        _event(db, keen, "product_viewed", NOW - timedelta(days=days))
    _event(db, once, "product_viewed", NOW - timedelta(days=1))
    _event(db, long_ago, "product_viewed", NOW - timedelta(days=40))
    viewed = {"kind": "event", "type": "product_viewed", "days": 30}
    assert members(db, one(viewed)) & {keen, once, long_ago} == {keen, once}
    assert members(db, one({**viewed, "min_count": 3})) & {keen, once, long_ago} == {keen}
    assert members(db, one({**viewed, "did": False})) & {keen, once, long_ago} == {long_ago}


def test_preferred_and_nearest_store(db: Session) -> None:
    make_stores(db, {"st-a": (48.85, 2.35), "st-b": (45.76, 4.83)})
    # nearest to home uses a home point only with consent to location, as near does; the
    # preferred store (the one visited most) is read only with personalization
    parisian = make_customer(
        db,
        consents={"location": True, "personalization": True},
        home_latitude=48.80,
        home_longitude=2.30,
        traits={"store_counts": {"st-a": 1, "st-b": 4}},
    )
    lyonnais = make_customer(
        db,
        consents={"location": True, "personalization": True},
        home_latitude=45.70,
        home_longitude=4.80,
        traits={"store_counts": {"st-a": 2, "st-b": 2}},
    )
    # preferred: the most visited (ties: the smaller id)
    assert members(db, one({"kind": "store", "store_id": "st-b"})) == {parisian}
    assert members(db, one({"kind": "store", "store_id": "st-a"})) == {lyonnais}
    # nearest to home
    assert members(db, one({"kind": "store", "store_id": "st-a", "by": "nearest"})) == {parisian}
    assert members(db, one({"kind": "store", "store_id": "st-b", "by": "nearest"})) == {lyonnais}


def _destination(lat: float, lon: float, km: float, bearing_deg: float) -> tuple[float, float]:
    """The point ``km`` away along a great circle (sphere of 6371 km)."""
    d, b = km / 6371.0, math.radians(bearing_deg)
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(p2), math.degrees(l2)


CENTRE = (51.5, -0.12)
# A home point is used only with consent to location, as a last known location is.
LOCATED = {"location": True}


@pytest.mark.parametrize("bearing", [0, 90, 135, 180, 270])
def test_radius_edges_by_home_location_and_home_store(db: Session, bearing: float) -> None:
    inside_home = make_customer(db, consents=LOCATED, home_latitude=0.0, home_longitude=0.0)
    outside_home = make_customer(db, consents=LOCATED, home_latitude=0.0, home_longitude=0.0)
    for customer_id, km in ((inside_home, 49.9), (outside_home, 50.1)):
        lat, lon = _destination(*CENTRE, km, bearing)
        record = customers.get_customer(db, customer_id=customer_id)
        assert record is not None
        record.home_latitude, record.home_longitude = lat, lon
    near_store, far_store = (
        _destination(*CENTRE, 49.9, bearing),
        _destination(*CENTRE, 50.1, bearing),
    )
    make_stores(db, {"st-in": near_store, "st-out": far_store})
    fan_in = make_customer(db, traits={"store_counts": {"st-in": 3}})
    fan_out = make_customer(db, traits={"store_counts": {"st-out": 3}})
    # the store visited most is history: it places only those who granted personalization
    unprofiled_fan = make_customer(
        db, consents={"marketing_email": True}, traits={"store_counts": {"st-in": 3}}
    )
    near = {"kind": "near", "latitude": CENTRE[0], "longitude": CENTRE[1], "radius_km": 50}
    found = members(db, one(near))
    assert {inside_home, fan_in} <= found
    assert not {outside_home, fan_out, unprofiled_fan} & found
    assert members(db, one({**near, "use": ["home"]})) & {inside_home, fan_in} == {inside_home}


def test_last_location_counts_only_with_location_consent(db: Session) -> None:
    lat_in, lon_in = _destination(*CENTRE, 49.9, 45)
    lat_out, lon_out = _destination(*CENTRE, 50.1, 45)
    consenting = make_customer(db, consents={"location": True})
    refusing = make_customer(db, consents={"location": False})
    too_far = make_customer(db, consents={"location": True})
    set_traits(db, consenting, last_latitude=lat_in, last_longitude=lon_in, last_location_at=NOW)
    set_traits(db, refusing, last_latitude=lat_in, last_longitude=lon_in, last_location_at=NOW)
    set_traits(db, too_far, last_latitude=lat_out, last_longitude=lon_out, last_location_at=NOW)
    found = db.scalars(
        campaigns.near_point_query(
            latitude=CENTRE[0], longitude=CENTRE[1], radius_km=50, use=["last_location"]
        )
    )
    assert {str(customer_id) for customer_id in found} == {consenting}


def test_a_radius_across_the_antimeridian(db: Session) -> None:
    east = make_customer(db, consents=LOCATED, home_latitude=0.0, home_longitude=179.9)
    west = make_customer(db, consents=LOCATED, home_latitude=0.0, home_longitude=-179.9)
    far = make_customer(db, consents=LOCATED, home_latitude=0.0, home_longitude=178.0)
    found = members(
        db,
        one(
            {"kind": "near", "latitude": 0.0, "longitude": 180.0, "radius_km": 50, "use": ["home"]}
        ),
    )
    assert found == {east, west}
    assert far not in found


def test_match_all_and_any(db: Session) -> None:
    both = make_customer(db, consents={"marketing_email": True, "location": True})
    email_only = make_customer(db, consents={"marketing_email": True})
    neither = make_customer(db, consents={})
    conditions = [
        {"kind": "consent", "purpose": "marketing_email"},
        {"kind": "consent", "purpose": "location"},
    ]
    assert members(db, {"match": "all", "conditions": conditions}) == {both}
    assert members(db, {"match": "any", "conditions": conditions}) == {both, email_only}
    assert neither in members(db, {"match": "all", "conditions": []})


def test_erased_and_merged_customers_never_appear(db: Session) -> None:
    kept = make_customer(db, consents={"marketing_email": True})
    erased = make_customer(db, consents={"marketing_email": True})
    merged_away = make_customer(db, consents={"marketing_email": True})
    customers.merge_customers(
        db,
        source_customer_id=merged_away,
        target_customer_id=kept,
        reason="same person",
        actor="test",
    )
    privacy.erase_customer(db, customer_id=erased, requested_by="dpo")
    everyone = members(
        db,
        {
            "match": "any",
            "conditions": [
                {"kind": "consent", "purpose": "marketing_email"},
                {"kind": "consent", "purpose": "marketing_email", "granted": False},
            ],
        },
    )
    assert kept in everyone
    assert erased not in everyone
    assert merged_away not in everyone


def test_preview_counts_and_masks_its_sample(db: Session) -> None:
    make_customer(db, first_name="Jane", last_name="Doe", email="jane.doe@example.com")
    preview = campaigns.preview_segment(
        db, campaigns.parse_definition(one({"kind": "consent", "purpose": "marketing_email"}))
    )
    assert preview.count >= 1
    jane = next(m for m in preview.sample if m["name"] == "Jane D.")
    assert jane["email"] == "j•••@example.com"
    assert jane["tier"]
    assert events  # the log is the processors' input (tests/campaigns/segments/test_membership.py)
