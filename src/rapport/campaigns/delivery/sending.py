"""The dispatcher: claims due deliveries, gates them, renders and sends them, marks each one.

A batch goes through four steps:

1. **claim** — due rows (``queued``, ``deferred`` or ``failed`` whose ``next_attempt_at`` has
   come, and ``sending`` rows whose claim expired) become ``sending`` with
   ``claimed_by = worker`` and ``next_attempt_at = now + LEASE``, in one statement (PostgreSQL:
   ``FOR UPDATE SKIP LOCKED``, so workers never take the same rows; SQLite: one writer at a
   time) and one commit;
2. **gate** — a cancelled or paused campaign, a triggered message past its window, a survey
   invitation feedback withdrew (answered, expired, its order cancelled, its consent
   withdrawn: ``producers.surveys.withdrawn``), a late-delivery notice whose order arrived or was
   cancelled since (``producers.late_deliveries.overtaken``), then consent, erasure,
   suppressions, quiet hours, frequency caps, in bulk (``gates.gate_batch``); refused rows
   become ``suppressed`` or ``deferred`` in one commit;
3. **send** per channel — email in groups of ``SMTP_CONNECTIONS`` messages over as many
   SMTP connections, each protocol step written on every connection before the replies are
   read; webhooks over one HTTP client; inbox rows in one transaction;
4. **mark** — each delivery's new status with a history row.

Crash safety (a worker killed -9 at any instant, then restarted) — one message per delivery,
none lost:

- *email*: a group's rows are marked ``sent`` and COMMITTED (one commit) after every body of
  the group has gone to the server and before any final ``.`` of DATA, which is what makes
  the server accept a message. If the worker dies before that commit, the rows stay
  ``sending``: the server never got a terminator and dropped the messages when the
  connections died, so the rows are sent again once their claim expires (``LEASE``). If it
  dies after the commit, the rows are ``sent`` and the terminators are written microseconds
  later or never (the only window where a message can be lost: the time of a few 3-byte
  ``send()`` calls). The mark only applies while a row is still this worker's claim
  (``claimed_by``, status ``sending``): a worker that lost its claim to another closes that
  connection instead of terminating the message.
- *inbox*: the message row and the ``sent`` mark commit together: exactly once.

Cancel and pause (``queueing.withdraw_unsent``, ``queueing.hold_claimed``) take back, in their
own transaction, the rows a dispatcher claimed and has not marked: the marks' compare-and-set
then fails for them, so no email is terminated, no webhook posted and no inbox message written
for them after the verb's commit. What still reaches a server is what was marked (or, for
webhooks, checked) before it: at most one email group, ``WEBHOOK_CONCURRENCY`` POSTs. Each
group re-reads its claims first, so the rest are not even started.
- *webhooks*: at least once; the ``Rapport-Delivery-Id`` header lets the receiver drop a
  repeat. Each answer's try and mark commit as soon as it arrives, and a new request starts
  only when a mark committed, so a killed worker leaves at most ``WEBHOOK_CONCURRENCY``
  deliveries POSTed but not marked; those are sent again after the lease.

The marks' commits stay durable: with one commit per group, ``SET LOCAL synchronous_commit
TO off`` made no measurable difference (198 vs 207 emails/s on PostgreSQL with fsync on, on the
loaded 2-core development machine), so it is not used.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import httpx
from sqlalchemy import Select, bindparam, insert, literal, select, update
from sqlalchemy.orm import Session

from rapport.campaigns.delivery import email as smtp
from rapport.campaigns.delivery import webhooks
from rapport.campaigns.delivery.gates import Pending, Verdict, gate_batch, needed_purpose
from rapport.campaigns.delivery.policy import sending_policy
from rapport.campaigns.delivery.queueing import (
    PAUSED,
    PAUSED_RECHECK,
    RESUMED,
    settle_campaigns,
    staff_address,
)
from rapport.campaigns.delivery.rendering import (
    CustomerFacts,
    RenderedMessage,
    Renderer,
    TemplateError,
    load_customers,
    render_message,
    with_links,
)
from rapport.campaigns.models import (
    SUBSCRIPTION_CAMPAIGN_PREFIX,
    Campaign,
    Delivery,
    DeliveryStatus,
    InboxMessage,
    Suppression,
    WebhookEndpoint,
)
from rapport.campaigns.planning.gates import expiry_reason, profiling_withdrawn
from rapport.campaigns.producers import late_deliveries, pickups, surveys
from rapport.customers import service as customers
from rapport.platform import clock
from rapport.platform.db import insert_for, open_session, read_only, writer_turn
from rapport.platform.errors import InvalidInput, UpstreamFailed
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.settings import Settings, get_settings

LEASE = timedelta(minutes=2)
DEFAULT_BATCH = 500
EMAIL_MAX_ATTEMPTS = 5
EMAIL_BACKOFF = timedelta(minutes=1)
DUE_STATUSES = ("queued", "deferred", "failed", "sending")
# SMTP connections a dispatcher sends on side by side (one message each per group).
SMTP_CONNECTIONS = 20
# Webhook POSTs in flight (sent without their mark committed) at once.
WEBHOOK_CONCURRENCY = 16


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claimed:
    id: int
    campaign_id: int
    customer_id: str | None
    recipient_key: str
    channel: str
    occasion: str
    context: dict[str, Any]
    attempts: int


# ---------------------------------------------------------------------- claiming


def claim_due(db: Session, *, limit: int, worker: str, now: datetime) -> list[Claimed]:
    """Take up to ``limit`` due deliveries for ``worker`` and commit the claim."""
    due = (
        select(Delivery.id)
        .where(Delivery.status.in_(DUE_STATUSES), Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    # A plain read first: an idle tick must not take SQLite's write lock.
    began_here = not db.in_transaction()
    if began_here:
        read_only(db)
    nothing_due = db.scalar(due.limit(1)) is None
    if began_here:
        db.commit()  # ends the read; the claim below takes the write turn
    if nothing_due:
        return []
    if db.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    with writer_turn(db, bulk=True):
        rows = db.execute(
            update(Delivery)
            .where(Delivery.id.in_(due.scalar_subquery()))
            .values(
                status="sending", claimed_by=worker, next_attempt_at=now + LEASE, updated_at=now
            )
            .returning(
                Delivery.id,
                Delivery.campaign_id,
                Delivery.customer_id,
                Delivery.recipient_key,
                Delivery.channel,
                Delivery.occasion,
                Delivery.context,
                Delivery.attempts,
            ),
            execution_options={"synchronize_session": False},
        ).all()
        if rows:
            db.execute(
                insert(DeliveryStatus),
                [
                    {"delivery_id": row.id, "status": "sending", "reason": worker[:300], "at": now}
                    for row in rows
                ],
            )
        db.commit()
    return sorted((Claimed(*row) for row in rows), key=lambda row: row.id)


# ---------------------------------------------------------------------- marking


@dataclass(frozen=True)
class Mark:
    delivery_id: int
    status: str
    reason: str = ""
    next_attempt_at: datetime | None = None
    sent: bool = False
    tried: bool = False  # one more attempt counted


def apply_marks(db: Session, marks: Sequence[Mark], *, worker: str, now: datetime) -> int:
    """Write ``marks`` (only on rows still claimed by ``worker``) with their history rows, in
    the session's transaction; return how many rows changed. A row a cancel or pause took
    back keeps what the verb wrote, with no history row for the mark."""
    if not marks:
        return 0
    # The rows still claimed, locked (PostgreSQL) in id order as a cancel or pause locks them
    # (queueing._restate), so the two never deadlock; SQLite's transaction holds the write lock.
    held = select(Delivery.id).where(
        Delivery.id.in_([mark.delivery_id for mark in marks]),
        Delivery.status == "sending",
        Delivery.claimed_by == worker,
    )
    if db.get_bind().dialect.name == "postgresql":
        held = held.order_by(Delivery.id).with_for_update()
    claimed = set(db.scalars(held))
    marks = sorted(
        (mark for mark in marks if mark.delivery_id in claimed), key=lambda mark: mark.delivery_id
    )
    if not marks:
        return 0
    statement = (
        update(Delivery)
        .where(
            Delivery.id == bindparam("b_id"),
            Delivery.status == "sending",
            Delivery.claimed_by == worker,
        )
        .values(
            status=bindparam("b_status"),
            reason=bindparam("b_reason"),
            next_attempt_at=bindparam("b_next"),
            sent_at=bindparam("b_sent_at"),
            attempts=Delivery.attempts + bindparam("b_tried"),
            claimed_by=None,
            updated_at=now,
        )
    )
    params = [
        {
            "b_id": mark.delivery_id,
            "b_status": mark.status,
            "b_reason": mark.reason[:300],
            "b_next": mark.next_attempt_at or now,
            "b_sent_at": now if mark.sent else None,
            "b_tried": 1 if mark.tried else 0,
        }
        for mark in marks
    ]
    connection = db.connection()
    if len(params) == 1:
        changed = connection.execute(statement, params[0]).rowcount
    else:
        changed = connection.execute(statement, params).rowcount
    connection.execute(
        insert(DeliveryStatus),
        [
            {"delivery_id": m.delivery_id, "status": m.status, "reason": m.reason[:300], "at": now}
            for m in marks
        ],
    )
    # A survey invitation whose email ends here never reached the customer: feedback records
    # it withdrawn, so it does not count for their fatigue days.
    surveys.given_up(db, [m.delivery_id for m in marks if m.status in surveys.GIVEN_UP])
    return int(changed)


# ---------------------------------------------------------------------- the dispatcher


class _Batch:
    """One dispatch pass: the claimed rows and what they need, loaded once."""

    def __init__(self, db: Session, *, worker: str, settings: Settings, now: datetime) -> None:
        self.db = db
        self.worker = worker
        self.settings = settings
        self.now = now
        self.campaigns: dict[int, Campaign] = {}
        self.endpoints: dict[int, WebhookEndpoint] = {}
        self.renderers: dict[tuple[int, str], Renderer] = {}
        self.customers: dict[str, CustomerFacts] = {}
        self.handled = 0

    def renderer(self, campaign: Campaign, channel: str) -> Renderer:
        key = (campaign.id, channel)
        if key not in self.renderers:
            endpoint = self.endpoints.get(campaign.webhook_endpoint_id or -1)
            self.renderers[key] = Renderer(
                self.db, campaign, channel=channel, endpoint=endpoint, settings=self.settings
            )
        return self.renderers[key]

    def commit_marks(self, marks: Sequence[Mark]) -> None:
        apply_marks(self.db, marks, worker=self.worker, now=clock.now())
        self.db.commit()


def dispatch_batch(
    db: Session, *, limit: int = DEFAULT_BATCH, worker: str, settings: Settings | None = None
) -> int:
    """Claim, gate, send and mark up to ``limit`` due deliveries on ``db``; return how many
    were handled (sent, suppressed, deferred, failed or dead)."""
    now = clock.now()
    claimed = claim_due(db, limit=limit, worker=worker, now=now)
    if not claimed:
        return 0
    batch = _Batch(db, worker=worker, settings=settings or get_settings(), now=now)
    campaign_ids = {row.campaign_id for row in claimed}
    batch.campaigns = {
        c.id: c for c in db.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids)))
    }
    endpoint_ids = {
        c.webhook_endpoint_id for c in batch.campaigns.values() if c.webhook_endpoint_id
    }
    if endpoint_ids:
        batch.endpoints = {
            e.id: e
            for e in db.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(endpoint_ids)))
        }
    batch.customers = load_customers(db, [r.customer_id for r in claimed if r.customer_id])

    # A survey invitation answered, expired, about an order cancelled or no longer consented to
    # since it was queued (feedback records it withdrawn in this transaction);
    # a late-delivery notice whose order was delivered (or cancelled) since; a ready-for-
    # collection notice whose order was collected (or cancelled) since; a message its segment
    # chose by what the customer did, who has withdrawn personalization since.
    occasions = [
        (row.id, batch.campaigns[row.campaign_id], row.occasion)
        for row in claimed
        if row.campaign_id in batch.campaigns
    ]
    withdrawn = (
        surveys.withdrawn(db, occasions)
        | late_deliveries.overtaken(db, occasions)
        | pickups.overtaken(db, occasions)
        | profiling_withdrawn(db, occasions)
    )
    marks: list[Mark] = []
    pending: list[Pending] = []
    for row in claimed:
        campaign = batch.campaigns.get(row.campaign_id)
        if campaign is None or campaign.status == "cancelled":
            marks.append(Mark(row.id, "suppressed", "campaign cancelled or deleted"))
        elif campaign.status == "paused":
            marks.append(Mark(row.id, "deferred", PAUSED, now + PAUSED_RECHECK))
        elif (expired := expiry_reason(row.context, now=now)) is not None:
            marks.append(Mark(row.id, "suppressed", expired))  # a triggered message too late
        elif row.id in withdrawn:
            marks.append(Mark(row.id, "suppressed", withdrawn[row.id]))
        elif row.channel == "webhook" and campaign.webhook_endpoint_id not in batch.endpoints:
            marks.append(Mark(row.id, "dead", "the campaign has no webhook endpoint"))
        else:
            endpoint = batch.endpoints.get(campaign.webhook_endpoint_id or -1)
            pending.append(Pending(row.id, campaign, row.customer_id, row.channel, endpoint))
    # Live profiles after merges may be new to the batch: their facts are loaded below.
    verdicts = gate_batch(
        db,
        pending,
        policies=sending_policy(db),
        time_zones={cid: facts.time_zone for cid, facts in batch.customers.items()},
        now=now,
    )
    survivors = {v.customer_id for v in verdicts.values() if v.customer_id}
    missing = survivors - batch.customers.keys()
    if missing:
        batch.customers.update(load_customers(db, missing))
    to_send: dict[str, list[tuple[Claimed, Verdict]]] = {"email": [], "webhook": [], "inbox": []}
    for row in claimed:
        verdict = verdicts.get(row.id)
        if verdict is None:
            continue
        if verdict.action == "suppress":
            marks.append(Mark(row.id, "suppressed", verdict.reason))
        elif verdict.action == "defer":
            marks.append(Mark(row.id, "deferred", verdict.reason, verdict.until))
        else:
            to_send[row.channel].append((row, verdict))
    _prefetch(batch, to_send)
    batch.commit_marks(marks)
    handled = len(marks)
    if to_send["inbox"]:
        handled += _send_inbox(batch, to_send["inbox"])
    if to_send["email"]:
        handled += _send_email(batch, to_send["email"])
    if to_send["webhook"]:
        handled += _send_webhooks(batch, to_send["webhook"])
    if settle_campaigns(db, campaign_ids, now=clock.now()):
        db.commit()
    return handled


def _prefetch(batch: _Batch, to_send: dict[str, list[tuple[Claimed, Verdict]]]) -> None:
    """Load what each campaign's templates show of loyalty (points, tier) for all its
    recipients in the batch at once: rendering then queries nothing per recipient."""
    recipients: dict[tuple[int, str], set[str]] = {}
    for channel, items in to_send.items():
        for row, verdict in items:
            if verdict.customer_id:
                recipients.setdefault((row.campaign_id, channel), set()).add(verdict.customer_id)
    for (campaign_id, channel), customer_ids in recipients.items():
        batch.renderer(batch.campaigns[campaign_id], channel).prefetch(customer_ids)


def _render(
    batch: _Batch, row: Claimed, verdict: Verdict
) -> tuple[RenderedMessage | None, CustomerFacts | None, str]:
    campaign = batch.campaigns[row.campaign_id]
    customer = batch.customers.get(verdict.customer_id) if verdict.customer_id else None
    try:
        return batch.renderer(campaign, row.channel).render(customer, row.context), customer, ""
    except TemplateError as error:
        return None, customer, str(error)


def _failure(
    row: Claimed, reason: str, *, max_attempts: int, wait: timedelta, now: datetime
) -> Mark:
    attempt = row.attempts + 1
    if attempt >= max_attempts:
        return Mark(row.id, "dead", f"{reason} (after {attempt} tries)", tried=True)
    return Mark(row.id, "failed", reason, now + wait, tried=True)


def _send_inbox(batch: _Batch, items: list[tuple[Claimed, Verdict]]) -> int:
    marks: list[Mark] = []
    messages: list[dict[str, Any]] = []
    now = clock.now()
    for row, verdict in items:
        rendered, _, error = _render(batch, row, verdict)
        if rendered is None or verdict.customer_id is None:
            marks.append(Mark(row.id, "dead", error or "inbox messages need a customer"))
            continue
        messages.append(
            {
                "customer_id": verdict.customer_id,
                "delivery_id": row.id,
                "subject": rendered.subject[:300],
                "body": rendered.body,
                "created_at": now,
            }
        )
        marks.append(Mark(row.id, "sent", sent=True, tried=True))
    if messages:
        # Only rows still this worker's claim (a cancel or pause may have taken some back),
        # locked until the commit (PostgreSQL; SQLite's transaction holds the write lock).
        claimed = _claimed_query(batch, [message["delivery_id"] for message in messages])
        if batch.db.get_bind().dialect.name == "postgresql":
            claimed = claimed.order_by(Delivery.id).with_for_update()
        kept = set(batch.db.scalars(claimed))
        messages = [message for message in messages if message["delivery_id"] in kept]
    if messages:
        batch.db.execute(
            insert_for(batch.db)(InboxMessage).on_conflict_do_nothing(
                index_elements=["delivery_id"]
            ),
            messages,
        )
    # The messages and the marks commit together: a crash leaves both or neither; the marks
    # apply only where the claim holds, as the messages were kept.
    batch.commit_marks(marks)
    return len(items)


def _send_email(batch: _Batch, items: list[tuple[Claimed, Verdict]]) -> int:
    """Groups of up to SMTP_CONNECTIONS messages over as many connections; per group one
    commit of the "sent" marks, after every body and before any terminator."""
    settings = batch.settings
    with smtp.SmtpPool(settings, size=SMTP_CONNECTIONS) as pool:
        for start in range(0, len(items), SMTP_CONNECTIONS):
            group: list[tuple[Claimed, Verdict]] = []
            messages: list[tuple[str, bytes]] = []
            marks: list[Mark] = []
            chunk = items[start : start + SMTP_CONNECTIONS]
            # Rows a cancel or pause took back since the claim are left to it.
            claimed = _still_claimed(batch, [row.id for row, _ in chunk])
            for row, verdict in chunk:
                if row.id not in claimed:
                    continue
                rendered, customer, error = _render(batch, row, verdict)
                address = staff_address(row.recipient_key) if customer is None else customer.email
                if rendered is None:
                    marks.append(Mark(row.id, "dead", error))
                elif not address:
                    marks.append(Mark(row.id, "suppressed", "no email address"))
                else:
                    group.append((row, verdict))
                    messages.append(
                        (
                            address,
                            smtp.build_message(
                                rendered, to=address, delivery_id=row.id, settings=settings
                            ),
                        )
                    )

            def mark_sent(
                ready: list[int],
                group: list[tuple[Claimed, Verdict]] = group,
                marks: list[Mark] = marks,
            ) -> set[int]:
                # The marks of messages that cannot be sent ride on the same commit.
                apply_marks(batch.db, marks, worker=batch.worker, now=clock.now())
                marks.clear()
                sent = _mark_sent_now(batch, [group[index][0].id for index in ready])
                return {index for index in ready if group[index][0].id in sent}

            outcomes = pool.send_group(messages, before_terminators=mark_sent)
            if marks:  # nothing reached DATA: the other marks still need their commit
                batch.commit_marks(marks)
            _log_accepted(
                batch,
                [row.id for (row, _), o in zip(group, outcomes, strict=True) if o.accepted],
            )
            for (row, verdict), outcome in zip(group, outcomes, strict=True):
                if not outcome.accepted:
                    _email_refused(batch, row, verdict, outcome)
    return len(items)


def _claimed_query(batch: _Batch, delivery_ids: Sequence[int]) -> Select[int]:
    """Those of ``delivery_ids`` still this worker's claim: ``sending`` with its name (a cancel
    or pause takes the claim back from rows not marked sent yet)."""
    return select(Delivery.id).where(
        Delivery.id.in_(delivery_ids),
        Delivery.status == "sending",
        Delivery.claimed_by == batch.worker,
    )


def _still_claimed(batch: _Batch, delivery_ids: Sequence[int]) -> set[int]:
    """Those of ``delivery_ids`` still this worker's claim, read now (a plain read: no write
    lock is held while the messages go out). Not the guarantee, which is the compare-and-set
    of the marks; it spares starting messages a cancel or pause already withdrew."""
    db = batch.db
    began_here = not db.in_transaction()
    if began_here:
        read_only(db)
    claimed = set(db.scalars(_claimed_query(batch, delivery_ids)))
    if began_here:
        db.commit()
    return claimed


# The history row written when an email's row is marked sent before its terminator: the
# server has not answered yet, so the history says so; "sent" follows once it accepts
# (:func:`_log_accepted`), the refusal's status once it refuses.
HANDED_OVER = "handed_over"
HANDED_OVER_REASON = "to the SMTP server, before its answer to the end of DATA"


def _mark_sent_now(batch: _Batch, delivery_ids: list[int]) -> set[int]:
    """Mark these deliveries sent (those still claimed by this worker), each with a
    ``handed_over`` history row (the server has not answered yet), and COMMIT; return the ids
    marked. PostgreSQL: one statement (the update feeds the history insert), since this runs
    once per group on the hot path."""
    db, now = batch.db, clock.now()
    postgres = db.get_bind().dialect.name == "postgresql"
    claimed = _claimed_query(batch, delivery_ids)
    if postgres:  # locked in id order, as a cancel or pause locks them: no deadlock
        claimed = claimed.order_by(Delivery.id).with_for_update()
    marking = (
        update(Delivery)
        .where(
            Delivery.id.in_(claimed.scalar_subquery()),
            Delivery.status == "sending",
            Delivery.claimed_by == batch.worker,
        )
        .values(
            status="sent",
            reason="",
            sent_at=now,
            next_attempt_at=now,  # nothing more is due (the API shows none)
            attempts=Delivery.attempts + 1,
            claimed_by=None,
            updated_at=now,
        )
        .returning(Delivery.id)
    )
    if postgres:
        marked_rows = marking.cte("marked")
        statement = (
            insert(DeliveryStatus)
            .from_select(
                ["delivery_id", "status", "reason", "at"],
                select(
                    marked_rows.c.id,
                    literal(HANDED_OVER),
                    literal(HANDED_OVER_REASON),
                    literal(now, type_=DeliveryStatus.__table__.c.at.type),
                ),
            )
            .returning(DeliveryStatus.delivery_id)
        )
        marked = {int(i) for i in db.scalars(statement)}
    else:
        marked = set(db.scalars(marking, execution_options={"synchronize_session": False}))
        if marked:
            db.execute(
                insert(DeliveryStatus),
                [
                    {
                        "delivery_id": i,
                        "status": HANDED_OVER,
                        "reason": HANDED_OVER_REASON,
                        "at": now,
                    }
                    for i in marked
                ],
            )
    db.commit()
    return marked


def _log_accepted(batch: _Batch, delivery_ids: list[int]) -> None:
    """The ``sent`` history rows of the emails the server accepted (their rows were marked
    sent before the terminators), in one commit."""
    if not delivery_ids:
        return
    now = clock.now()
    batch.db.execute(
        insert(DeliveryStatus),
        [{"delivery_id": i, "status": "sent", "reason": "", "at": now} for i in delivery_ids],
    )
    batch.db.commit()


def _email_refused(
    batch: _Batch, row: Claimed, verdict: Verdict, outcome: smtp.SmtpOutcome
) -> None:
    db, now = batch.db, clock.now()
    if outcome.reason == smtp.LEASE_LOST:
        return  # another worker owns the row now; it sends the message
    cancelled = False
    if outcome.committed:
        # The campaign first (shared lock on PostgreSQL), as a cancel locks it before its
        # deliveries: a cancel committed since the sent mark is seen here; one after this
        # commit finds the row waiting to retry and suppresses it.
        campaign_status = select(Campaign.status).where(Campaign.id == row.campaign_id)
        if db.get_bind().dialect.name == "postgresql":
            campaign_status = campaign_status.with_for_update(read=True)
        cancelled = db.scalar(campaign_status) in (None, "cancelled")
        # Marked sent before the terminator, then refused: take the claim back to correct it,
        # and the try the sent mark counted with it (the mark below counts this one try).
        db.execute(
            update(Delivery)
            .where(Delivery.id == row.id, Delivery.status == "sent")
            .values(
                status="sending",
                claimed_by=batch.worker,
                sent_at=None,
                attempts=Delivery.attempts - 1,
            )
        )
    if outcome.permanent:
        if verdict.customer_id:
            db.execute(
                insert_for(db)(Suppression).on_conflict_do_nothing(),
                [
                    {
                        "customer_id": verdict.customer_id,
                        "channel": "email",
                        "reason": f"bounce: {outcome.reason}"[:200],
                        "at": now,
                    }
                ],
            )
        batch.commit_marks([Mark(row.id, "bounced", outcome.reason, tried=True)])
        return
    if cancelled:  # no retry for a cancelled campaign
        batch.commit_marks([Mark(row.id, "suppressed", "campaign cancelled", tried=True)])
        return
    batch.commit_marks(
        [
            _failure(
                row,
                outcome.reason,
                max_attempts=EMAIL_MAX_ATTEMPTS,
                wait=EMAIL_BACKOFF * (2**row.attempts),
                now=now,
            )
        ]
    )


def _send_webhooks(batch: _Batch, items: list[tuple[Claimed, Verdict]]) -> int:
    """POSTs WEBHOOK_CONCURRENCY at a time (threads: the work is waiting on the receivers).
    Each answer's try and mark commit as soon as it arrives, together with whatever other
    answers came in meanwhile (one commit per wake-up, no waiting to fill a group), and a
    slot is given to the next request only once its mark committed: at any instant at most
    WEBHOOK_CONCURRENCY deliveries have been POSTed without their mark committed, which is
    all a killed worker can repeat."""
    limits = httpx.Limits(
        max_connections=WEBHOOK_CONCURRENCY, max_keepalive_connections=WEBHOOK_CONCURRENCY
    )
    queue = iter(items)
    in_flight: dict[Future[webhooks.WebhookOutcome], tuple[Claimed, WebhookEndpoint]] = {}
    with (
        webhooks.client(batch.settings, limits=limits) as client,
        ThreadPoolExecutor(WEBHOOK_CONCURRENCY, thread_name_prefix="webhooks") as threads,
    ):
        while True:
            # Fill the free slots; messages that cannot render are marked with the next commit.
            marks: list[Mark] = []
            while len(in_flight) < WEBHOOK_CONCURRENCY:
                wanted = list(islice(queue, WEBHOOK_CONCURRENCY - len(in_flight)))
                if not wanted:
                    break
                # Rows a cancel or pause took back since the claim are left to it.
                claimed = _still_claimed(batch, [row.id for row, _ in wanted])
                for row, verdict in wanted:
                    if row.id not in claimed:
                        continue
                    campaign = batch.campaigns[row.campaign_id]
                    endpoint = batch.endpoints[campaign.webhook_endpoint_id or -1]
                    rendered, customer, error = _render(batch, row, verdict)
                    if rendered is None:
                        marks.append(Mark(row.id, "dead", error))
                        continue
                    payload = webhook_payload(
                        row.id, campaign, row, customer, rendered, settings=batch.settings
                    )
                    future = threads.submit(
                        webhooks.post, client, webhooks.Target.of(endpoint), payload, str(row.id)
                    )
                    in_flight[future] = (row, endpoint)
            if not in_flight:
                if marks:
                    batch.commit_marks(marks)
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            now = clock.now()
            for future in done:
                row, endpoint = in_flight.pop(future)
                outcome = future.result()
                webhooks.record_attempt(
                    batch.db,
                    endpoint_id=endpoint.id,
                    delivery_id=row.id,
                    attempt=row.attempts + 1,
                    outcome=outcome,
                )
                if outcome.delivered:
                    marks.append(Mark(row.id, "sent", sent=True, tried=True))
                elif outcome.retry:
                    marks.append(
                        _failure(
                            row,
                            outcome.reason,
                            max_attempts=endpoint.max_attempts,
                            wait=webhooks.backoff(row.attempts + 1),
                            now=now,
                        )
                    )
                else:
                    marks.append(Mark(row.id, "dead", outcome.reason, tried=True))
            apply_marks(batch.db, marks, worker=batch.worker, now=now)
            _delivered_after_pause(
                batch, [mark.delivery_id for mark in marks if mark.sent], now=now
            )
            batch.db.commit()
    return len(items)


# The history's reason for a webhook whose 2xx answer came after the campaign was paused.
ANSWERED_AFTER_PAUSE = "the endpoint answered 2xx after the campaign was paused"


def _delivered_after_pause(batch: _Batch, delivery_ids: list[int], *, now: datetime) -> None:
    """Of these deliveries, whose POST the endpoint answered 2xx, those a pause took back
    while it was in flight (``deferred``, "campaign paused" or "campaign resumed", claimed by
    nobody since) are ``sent``, with their history row, in the caller's transaction: the
    receiver has the message, so a resume does not post it again. One another dispatcher has
    claimed since is left to it (receivers de-duplicate on ``Rapport-Delivery-Id``)."""
    if not delivery_ids:
        return
    db = batch.db
    taken_back = select(Delivery.id).where(
        Delivery.id.in_(delivery_ids),
        Delivery.status == "deferred",
        Delivery.reason.in_((PAUSED, RESUMED)),
        Delivery.claimed_by.is_(None),
    )
    if db.get_bind().dialect.name == "postgresql":
        taken_back = taken_back.order_by(Delivery.id).with_for_update()
    ids = list(db.scalars(taken_back))
    if not ids:
        return
    marked = list(
        db.scalars(
            update(Delivery)
            .where(
                Delivery.id.in_(ids),
                Delivery.status == "deferred",
                Delivery.reason.in_((PAUSED, RESUMED)),
            )
            .values(
                status="sent",
                reason="",
                sent_at=now,
                next_attempt_at=now,
                attempts=Delivery.attempts + 1,
                updated_at=now,
            )
            .returning(Delivery.id),
            execution_options={"synchronize_session": False},
        )
    )
    if marked:
        db.execute(
            insert(DeliveryStatus),
            [
                {"delivery_id": i, "status": "sent", "reason": ANSWERED_AFTER_PAUSE, "at": now}
                for i in marked
            ],
        )


def webhook_payload(
    delivery_id: int | str,
    campaign: Campaign,
    row: Claimed | None,
    customer: CustomerFacts | None,
    rendered: RenderedMessage,
    *,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The JSON a webhook endpoint receives. Its ``context`` is the delivery's, each
    ``<name>_path`` also as ``<name>_url`` under ``RAPPORT_PUBLIC_BASE_URL`` as it is now
    (rendering.with_links), as the template saw it."""
    if row is not None and (campaign.key or "").startswith(SUBSCRIPTION_CAMPAIGN_PREFIX):
        # An event subscription's delivery holds its body whole (campaigns/subscriptions/).
        return dict(row.context)
    return {
        "delivery_id": str(delivery_id),
        "campaign": {"id": campaign.id, "key": campaign.key, "name": campaign.name},
        "purpose": campaign.purpose,
        "occasion": row.occasion if row else "",
        "recipient": {
            "customer_id": customer.customer_id if customer else None,
            "email": customer.email
            if customer
            else (staff_address(row.recipient_key) if row else None),
            "phone": customer.phone if customer else None,
            "locale": customer.locale if customer else None,
        },
        "subject": rendered.subject,
        "body": rendered.body,
        "unsubscribe_url": rendered.unsubscribe_url or None,
        "context": with_links(row.context, settings or get_settings()) if row else {},
    }


# ---------------------------------------------------------------------- entry points


def dispatch_due(
    *,
    limit: int = DEFAULT_BATCH,
    worker: str,
    database_url: str | None = None,
    settings: Settings | None = None,
) -> int:
    """Send up to ``limit`` due deliveries on a session of its own (the worker's tick, the
    bench); return how many were handled."""
    settings = settings or get_settings()
    with open_session(database_url or settings.database_url) as db:
        return dispatch_batch(db, limit=limit, worker=worker, settings=settings)


def drain(limit: int | None = None, *, database_url: str | None = None) -> int:
    """Dispatch until nothing is due (or ``limit`` deliveries were handled); return the
    count. For the CLI and the bench."""
    total = 0
    worker = worker_name()
    while limit is None or total < limit:
        batch = DEFAULT_BATCH if limit is None else min(DEFAULT_BATCH, limit - total)
        handled = dispatch_due(limit=batch, worker=worker, database_url=database_url)
        if handled == 0:
            break
        total += handled
    return total


def _check_test_consent(
    db: Session,
    campaign: Campaign,
    customer_id: str,
    to_address: str | None,
    endpoint: WebhookEndpoint | None,
) -> None:
    """A test that reaches the customer (an email to their own address, or their data posted
    to a webhook endpoint) passes the consent gate a real send would; one sent to a test
    address only uses their data to fill the message in, as the preview does."""
    reaches_customer = campaign.channel == "webhook" or (
        campaign.channel == "email" and not to_address
    )
    if not reaches_customer or campaign.purpose == "staff":
        return
    purpose = needed_purpose(campaign, campaign.channel, endpoint)
    if not customers.may_contact(db, customer_id=customer_id, purpose=purpose):
        way_out = (
            "send it to your own address (to_address) or pick a customer who has"
            if campaign.channel == "email"
            else "pick a customer who has"
        )
        raise InvalidInput(
            f"Customer {customer_id!r} may not be contacted for {purpose} (no consent, or "
            f"erased): {way_out}",
            field="customer_id",
        )


def send_test(
    db: Session,
    *,
    campaign: Campaign,
    customer_id: str,
    to_address: str | None,
    context: dict[str, Any] | None = None,
    before_commit: BeforeCommit | None = None,
) -> RenderedMessage:
    """Render ``campaign`` for ``customer_id`` and send it now through the campaign's channel
    (email: to ``to_address`` or the customer's address; webhook: to the campaign's endpoint;
    inbox: rendered only), with no delivery row and without counting toward caps; its
    unsubscribe link is the inert sample and an email has no List-Unsubscribe (it goes to
    staff, not to the customer it was rendered for). ``context``
    stands in for the occasion's values (a triggered campaign's event, a local invitation's
    store), as the preview shows them. With ``before_commit`` (the API's stored answer), it
    runs once the message was taken, with the message, and the transaction commits."""
    settings = get_settings()
    rendered = render_message(
        db, campaign=campaign, customer_id=customer_id, context=dict(context or {})
    )
    test = RenderedMessage(
        subject=f"[Test] {rendered.subject}",
        body=rendered.body,
        unsubscribe_url=rendered.unsubscribe_url,
        text=rendered.text,
    )
    endpoint = (
        db.get(WebhookEndpoint, campaign.webhook_endpoint_id)
        if campaign.channel == "webhook" and campaign.webhook_endpoint_id
        else None
    )
    _check_test_consent(db, campaign, customer_id, to_address, endpoint)
    if campaign.channel == "email":
        address = to_address or (load_customers(db, [customer_id])[customer_id].email or "")
        if not address or "@" not in address:
            raise InvalidInput("A test send needs an email address", field="to_address")
        outcome = smtp.send_one(test, to=address, settings=settings)
        if not outcome.accepted:
            raise UpstreamFailed(
                f"The SMTP server did not take the test: {outcome.reason}. Check the SMTP "
                "settings (docs/campaigns.md) and send it again"
            )
    elif campaign.channel == "webhook":
        if endpoint is None:
            raise InvalidInput("The campaign has no webhook endpoint", field="webhook_endpoint_id")
        customer = load_customers(db, [customer_id]).get(customer_id)
        payload = webhook_payload(f"test-{uuid.uuid4().hex[:12]}", campaign, None, customer, test)
        with webhooks.client(settings) as client:
            result = webhooks.post(
                client, webhooks.Target.of(endpoint), payload, payload["delivery_id"]
            )
        if not result.delivered:
            raise UpstreamFailed(
                f"The endpoint {endpoint.name!r} did not take the test: {result.reason}. "
                "Check that it answers and send it again"
            )
    if before_commit is not None:
        before_commit(db, test)
        db.commit()
    return test
