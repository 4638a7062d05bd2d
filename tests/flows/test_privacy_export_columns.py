"""A customer's export holds every column of every table that is about them, or says why a
column is not their data: each domain declares, per table, the columns its export shows and
those it leaves out with the reason (``platform.privacy.ExportedColumns``), and these tests
hold every column of every table its privacy handlers cover (and of the rows nested under
them) to one or the other, so a column added later fails here until someone decides."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from rapport.campaigns import privacy as campaigns_privacy
from rapport.campaigns import service as campaigns
from rapport.campaigns.models import (
    Delivery,
    DeliveryStatus,
    InboxMessage,
    Segment,
    SegmentMember,
    Suppression,
    WebhookAttempt,
)
from rapport.feedback import personal_data as feedback_privacy
from rapport.feedback import service as feedback
from rapport.loyalty import privacy as loyalty_privacy
from rapport.loyalty import service as loyalty
from rapport.loyalty.models import (
    AppliedCheckout,
    Award,
    LedgerTransaction,
    MemberDebt,
    QualifyingActivity,
    TierChangeRecord,
)
from rapport.orders import privacy as orders_privacy
from rapport.orders import service as orders
from rapport.orders.models import CustomerNotice, CustomerValueScore, ReturnLine, TrackedOrderEvent
from rapport.platform import clock
from rapport.platform.db import Base, open_session
from rapport.platform.privacy import ExportedColumns
from tests.campaigns.delivery.factories import make_campaign, make_endpoint
from tests.flows.test_privacy import Api, api, seed_everywhere
from tests.orders.factories import CHIANTI

__all__ = ["api"]  # the fixture: the app on a database whose every request commits

# Each domain: its face (PRIVACY_TABLES), its declarations, and the tables whose rows its
# export nests under a covered table's (an order's lines, payments and status history).
DOMAINS: dict[str, tuple[Any, dict[str, ExportedColumns], tuple[str, ...]]] = {
    "orders": (
        orders,
        orders_privacy.EXPORTED_COLUMNS,
        ("order_lines", "order_payments", "order_status_changes"),
    ),
    "loyalty": (loyalty, loyalty_privacy.EXPORTED_COLUMNS, ()),
    "feedback": (feedback, feedback_privacy.EXPORTED_COLUMNS, ()),
    "campaigns": (campaigns, campaigns_privacy.EXPORTED_COLUMNS, ()),
}

# Where each table's rows are in the export document: a path of keys, "*" for every item of
# a list on the way (an order's lines are under each order).
EXPORTED_AT: dict[str, tuple[str, ...]] = {
    "orders": ("orders",),
    "order_lines": ("orders", "*", "lines"),
    "order_payments": ("orders", "*", "payments"),
    "order_status_changes": ("orders", "*", "status_history"),
    "return_lines": ("orders", "*", "returns"),
    "customer_notices": ("order_notices",),
    "customer_values": ("customer_value",),
    "tracked_order_events": ("tracked_order_refusals",),
    "loyalty_accounts": ("loyalty", "accounts"),
    "loyalty_transactions": ("loyalty", "transactions"),
    "loyalty_lots": ("loyalty", "lots"),
    "loyalty_debts": ("loyalty", "debts"),
    "loyalty_awards": ("loyalty", "awards"),
    "loyalty_qualifying": ("loyalty", "qualifying"),
    "loyalty_tier_standings": ("loyalty", "tier_standing"),
    "loyalty_tier_changes": ("loyalty", "tier_history"),
    "loyalty_memberships": ("loyalty", "memberships"),
    "loyalty_membership_payments": ("loyalty", "membership_payments"),
    "loyalty_checkouts": ("loyalty", "checkouts"),
    "loyalty_coupons": ("loyalty", "coupons"),
    "loyalty_referral_codes": ("loyalty", "referral_codes"),
    "loyalty_referrals": ("loyalty", "referrals"),
    "feedback_invitations": ("survey_invitations",),
    "feedback_responses": ("survey_responses",),
    "feedback_reviews": ("reviews",),
    "feedback_tickets": ("tickets",),
    "campaign_deliveries": ("messages",),
    "campaign_delivery_history": ("messages", "*", "history"),
    "campaign_webhook_attempts": ("messages", "*", "webhook_tries"),
    "campaign_inbox": ("inbox",),
    "campaign_suppressions": ("suppressions",),
    "campaign_segment_members": ("segments",),
}


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_every_column_about_the_customer_is_exported_or_left_out_saying_why(domain: str) -> None:
    face, declared, nested = DOMAINS[domain]
    # given every table the domain's privacy handlers cover, and the rows nested under them
    tables = {*face.PRIVACY_TABLES, *nested}
    # then each is declared, and nothing else is
    assert sorted(tables - set(declared)) == [], "tables about the customer without a decision"
    assert sorted(set(declared) - tables) == []
    for name, columns in declared.items():
        assert columns.table == name
        actual = set(_table(name).columns.keys())
        exported, left_out = set(columns.exported), set(columns.left_out)
        # and every column is exported or left out saying why, never both, none unknown
        undecided = sorted(actual - exported - left_out)
        assert undecided == [], f"{name}: columns neither exported nor left out saying why"
        assert sorted((exported | left_out) - actual) == [], f"{name}: no such columns"
        assert sorted(exported & left_out) == [], f"{name}: both exported and left out"
        assert all(why.strip() for why in columns.left_out.values())
        assert set(columns.renamed) <= exported
        # and each table has its place in the document
        assert name in EXPORTED_AT, f"{name}: where is it in the export?"


def rows_at(document: dict[str, Any], path: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows at ``path`` in the export document."""
    found: list[Any] = [document]
    for step in path:
        if step == "*":
            found = [item for items in found for item in items]
        else:
            found = [part[step] for part in found]
    return [row for rows in found for row in rows]


def declared_keys(table: str) -> set[str]:
    for _, declared, _ in DOMAINS.values():
        if table in declared:
            columns = declared[table]
            return {columns.renamed.get(name, name) for name in columns.exported}
    raise KeyError(table)


def test_the_export_shows_every_table_as_declared(api: Api) -> None:
    # given a customer with rows in every table about them
    cid = seed_everywhere(api)
    with open_session(api.url) as db:
        more_rows(db, cid)
    # when they ask for their data
    response = api.client.get(f"/v1/customers/{cid}/export", headers=api.headers)
    assert response.status_code == 200, response.text
    document = response.json()
    # then each table's rows are there, each with every column declared exported
    empty = []
    for table, path in EXPORTED_AT.items():
        rows = rows_at(document, path)
        if not rows:
            empty.append(table)
        for row in rows:
            missing = declared_keys(table) - set(row)
            assert missing == set(), f"{table} at {'.'.join(path)} lacks {sorted(missing)}"
    assert empty == [], " ".join(empty)
    # and among them what the export used to leave out
    assert [a["reason"] for a in document["loyalty"]["awards"]] == ["Birthday bonus, Zephyrine"]
    [message] = document["messages"]
    assert message["context"]["survey_url"] == "https://shop.example/s/inv_qf"
    assert [t["status_code"] for t in message["webhook_tries"]] == [200]
    [invitation] = document["survey_invitations"]
    assert {"signals", "tier", "stage", "channel"} <= set(invitation)
    assert [r["device_id"] for r in document["reviews"]] == ["device-qf-9001"]


def more_rows(db: Session, customer_id: str) -> None:
    """Rows the seeding through the API leaves out, as the domains' own code writes them
    (a return, a notice, a predicted value, a refused tracked order, a debt, an award, tier
    activity, a checkout, a webhook message tried once and an inbox message, a suppression,
    a segment membership), with the values the tester found missing from the export."""
    now = clock.now()
    order_id = "O-QF-1"
    transaction_id = db.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.customer_id == customer_id)
    )
    assert transaction_id is not None
    endpoint = make_endpoint(db, url="https://crm.example/hook")
    campaign = make_campaign(db, channel="webhook", webhook_endpoint_id=endpoint.id)
    segment = Segment(name="Export test", definition={}, created_at=now, updated_at=now)
    db.add(segment)
    db.flush()
    delivery = Delivery(
        campaign_id=campaign.id,
        customer_id=customer_id,
        recipient_key=customer_id,
        occasion=f"survey:{order_id}",
        channel="webhook",
        status="sent",
        reason="",
        context={"order_id": order_id, "survey_url": "https://shop.example/s/inv_qf"},
        attempts=1,
        next_attempt_at=now,
        queued_at=now,
        sent_at=now,
        updated_at=now,
    )
    db.add(delivery)
    db.flush()
    db.add_all(
        [
            ReturnLine(
                return_id="ret_qf",
                order_id=order_id,
                line_no=1,
                sku=CHIANTI,
                quantity=1,
                reason="damaged",
                refund_minor=1000,
                channel="web",
                customer_id=customer_id,
                returned_at=now,
            ),
            CustomerNotice(
                order_id=order_id,
                customer_id=customer_id,
                kind="delivery_late",
                message="Your order is late",
                details={"days_late": 2},
                created_at=now,
            ),
            CustomerValueScore(
                customer_id=customer_id,
                frequency=1,
                recency_days=3.0,
                age_days=40.0,
                monetary_minor=4428,
                expected_purchases_90d=0.4,
                p_alive=0.8,
                p_purchase_90d=0.3,
                expected_spend_minor=2000,
                predicted_value_minor=9000,
                value_tier="top20",
                fitted_at=now,
            ),
            TrackedOrderEvent(
                event_position=1,
                event_id="evt_qf_refused",
                event_type="order_completed",
                order_id="O-QF-2",
                outcome="refused",
                reason="unknown_product",
                field="properties.products.0.sku",
                message="No product",
                customer_ref=customer_id,
                customer_id=customer_id,
                occurred_at=now,
                recorded_at=now,
            ),
            MemberDebt(
                customer_id=customer_id,
                transaction_id=transaction_id,
                order_id=order_id,
                amount=10,
                remaining=10,
                created_at=now,
            ),
            Award(
                customer_id=customer_id,
                rule_id="birthday",
                once_key=f"birthday:{customer_id}:2026",
                points=50,
                line_points={},
                reason="Birthday bonus, Zephyrine",
                awarded_at=now,
            ),
            QualifyingActivity(
                customer_id=customer_id,
                source_key=f"order:{order_id}",
                spend_minor=2400,
                points=24,
                occurred_at=now,
            ),
            TierChangeRecord(
                customer_id=customer_id,
                from_tier="silver",
                to_tier="gold",
                change="upgrade",
                qualifying_value=4428,
                changed_at=now,
            ),
            AppliedCheckout(
                order_id=order_id,
                customer_id=customer_id,
                effects={"points": 0},
                plan_savings_minor=0,
                tier_savings_minor=100,
                coupon_savings_minor=0,
                points_used=0,
                placed_at=now,
            ),
            DeliveryStatus(delivery_id=delivery.id, status="sent", reason="", at=now),
            WebhookAttempt(
                endpoint_id=endpoint.id,
                delivery_id=delivery.id,
                attempt=1,
                status_code=200,
                error="",
                duration_ms=12.5,
                at=now,
            ),
            InboxMessage(
                customer_id=customer_id,
                delivery_id=delivery.id,
                subject="Your points",
                body="You have 4,428 points",
                created_at=now,
            ),
            Suppression(customer_id=customer_id, channel="email", reason="hard bounce", at=now),
            SegmentMember(segment_id=segment.id, customer_id=customer_id, added_at=now),
        ]
    )
    db.commit()
