"""Launching campaigns: now (one-off), at a time (scheduled, run by the scheduled check) or on
every matching event (triggered: activated here, fired by ``triggers``); pause, resume and
cancel.

``launch_campaign`` walks the audience in batches (the segment evaluated now, or the local
invitation's selection), puts each customer in or out of the control group (a stable hash),
queues their delivery and commits per batch. The deliveries' unique key makes it idempotent:
a launch that runs twice, or resumes after a crash mid-way, queues each customer once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import (
    Recipient,
    has_waiting,
    hold_claimed,
    queue_deliveries,
    release_paused,
    withdraw_unsent,
)
from rapport.campaigns.models import (
    Campaign,
    CampaignTemplate,
    Delivery,
    Segment,
    WebhookEndpoint,
)
from rapport.campaigns.planning.control import in_control_group
from rapport.campaigns.planning.editing import STORE_CONTEXT, get_campaign, template_problem
from rapport.campaigns.planning.local import local_invitation_query, store_context
from rapport.campaigns.segments.evaluation import keyset_batches
from rapport.campaigns.segments.membership import iter_audience
from rapport.catalog import service as catalog
from rapport.platform import clock, jobs
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.settings import get_settings

log = logging.getLogger(__name__)

LAUNCH_JOB = "campaigns.launch"
AUDIENCE_BATCH = 1000
# A failed launch (nothing wrong with the request; found later) is launched again once mended.
LAUNCHABLE = ("draft", "scheduled", "failed")


def _locked(db: Session, campaign_id: int) -> Campaign:
    query = select(Campaign).where(Campaign.id == campaign_id)
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    campaign = db.scalar(query)
    if campaign is None:
        raise NotFound(f"No campaign {campaign_id}")
    return campaign


def _check_ready(db: Session, campaign: Campaign) -> None:
    """What a campaign needs before it can go out: an audience and a message (422 naming the
    setting to fix otherwise)."""
    if campaign.key is not None or campaign.kind == "transactional":
        raise Conflict("A system campaign is always on; it is not launched")
    problem = launch_problem(db, campaign)
    if problem is not None:
        raise problem


def launch_problem(db: Session, campaign: Campaign) -> InvalidInput | None:
    """Why the campaign cannot go out now, naming the setting to fix and how (its segment
    deleted, a local invitation's store gone or without coordinates, its webhook endpoint
    gone or inactive, email without a sender address, no message on its channel); None when
    it can."""
    if campaign.kind != "triggered" and campaign.segment_id is None and campaign.store_id is None:
        return InvalidInput(
            "Pick the segment to send to (or a store for a local invitation)", field="segment_id"
        )
    if campaign.segment_id is not None and db.get(Segment, campaign.segment_id) is None:
        return InvalidInput(
            f"Segment {campaign.segment_id} was deleted; pick another segment to send to",
            field="segment_id",
        )
    if campaign.store_id is not None:
        store = catalog.get_store(db, store_id=campaign.store_id)
        if store is None or store.latitude is None or store.longitude is None:
            said = "is not in the catalogue" if store is None else "has no coordinates"
            return InvalidInput(
                f"Store {campaign.store_id!r} {said} any more; give it its coordinates in the "
                "catalogue, or pick another store",
                field="store_id",
            )
    if campaign.channel == "email" and "@" not in parseaddr(get_settings().smtp_from)[1]:
        return InvalidInput(
            "Email has no sender address to go out from: set RAPPORT_SMTP_FROM to one (such as "
            "'Shop <news@shop.example>') and restart Rapport",
            field="channel",
        )
    if campaign.channel == "webhook":
        endpoint = (
            db.get(WebhookEndpoint, campaign.webhook_endpoint_id)
            if campaign.webhook_endpoint_id is not None
            else None
        )
        if endpoint is None or not endpoint.active:
            said = "does not exist" if endpoint is None else "is inactive"
            return InvalidInput(
                f"Webhook endpoint {campaign.webhook_endpoint_id} {said}; pick an active "
                "endpoint to send to",
                field="webhook_endpoint_id",
            )
    has_message = db.scalar(
        select(func.count())
        .select_from(CampaignTemplate)
        .where(
            CampaignTemplate.campaign_id == campaign.id,
            CampaignTemplate.channel == campaign.channel,
        )
    )
    if not has_message:
        return InvalidInput(
            f"Write the {campaign.channel} message first (a template in at least one locale)",
            field="templates",
        )
    # a template saved before names were checked at save would make every delivery dead
    return template_problem(db, campaign)


def _fail(db: Session, campaign: Campaign, problem: InvalidInput) -> None:
    """End a launch that cannot go out (found by the scheduled check or the launch job, after
    the request that launched it): the campaign is ``failed`` with what is wrong and what to
    do (``failure_reason``), in the session (no commit). Nothing was queued, so its settings
    may change again and it may be launched anew; a delivery a resumed launch had queued is
    suppressed with the reason, and the settings then stay as they were sent."""
    reason = f"{problem.field}: {problem.detail}, then launch it again"
    log.warning("campaign %s failed to launch: %s", campaign.id, reason)
    _suppress_waiting(db, campaign, reason=f"campaign failed: {problem.detail}")
    now = clock.now()
    campaign.status = "failed"
    campaign.failure_reason = reason[:500]
    campaign.finished_at = now
    campaign.updated_at = now
    if not db.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign.id)
    ):
        campaign.started_at = None  # never launched: who it goes to may still change


def start_campaign(
    db: Session, *, campaign_id: int, before_commit: BeforeCommit | None = None
) -> Campaign:
    """Launch now: a one-off or scheduled campaign starts sending (the launch job walks its
    audience), a triggered one becomes active and fires on its next matching event. Commits."""
    campaign = _locked(db, campaign_id)
    _check_ready(db, campaign)
    if campaign.status not in LAUNCHABLE:
        raise Conflict(f"A {campaign.status} campaign cannot be launched")
    now = clock.now()
    campaign.failure_reason = None
    campaign.finished_at = None
    campaign.started_at = campaign.started_at or now
    campaign.updated_at = now
    if campaign.kind == "triggered":
        campaign.status = "active"
    else:
        campaign.status = "sending"
        _enqueue_launch(db, campaign)
    if before_commit is not None:
        before_commit(db, campaign)
    db.commit()
    return campaign


def _enqueue_launch(db: Session, campaign: Campaign) -> None:
    jobs.enqueue(
        db,
        kind=LAUNCH_JOB,
        payload={"campaign_id": campaign.id},
        dedupe_key=f"{LAUNCH_JOB}:{campaign.id}:{clock.now().isoformat()}",
    )


def schedule_campaign(
    db: Session,
    *,
    campaign_id: int,
    scheduled_at: datetime,
    before_commit: BeforeCommit | None = None,
) -> Campaign:
    """Send at ``scheduled_at`` (in the future): the scheduled check launches it once that
    time has passed. A campaign already scheduled moves to the new time. Commits."""
    campaign = _locked(db, campaign_id)
    _check_ready(db, campaign)
    if campaign.kind == "triggered":
        raise InvalidInput("A triggered campaign fires on its event, not at a time", field="kind")
    if campaign.status not in LAUNCHABLE:
        raise Conflict(f"A {campaign.status} campaign cannot be scheduled")
    if scheduled_at.tzinfo is None:
        raise InvalidInput(
            "Give the time to send with its offset (Z for UTC, or +02:00)", field="scheduled_at"
        )
    at = clock.as_utc(scheduled_at)
    if at <= clock.now():
        raise InvalidInput("The time to send must be in the future", field="scheduled_at")
    campaign.kind = "scheduled"
    campaign.scheduled_at = at
    campaign.status = "scheduled"
    campaign.failure_reason = None
    campaign.finished_at = None
    campaign.updated_at = clock.now()
    if before_commit is not None:
        before_commit(db, campaign)
    db.commit()
    return campaign


def launch_due(db: Session) -> int:
    """Start every scheduled campaign whose time has come (the check that runs every
    minute): each becomes ``sending`` and its launch job is queued, so the check stays quick
    and a launch cut short by a crash is taken up again by the job's retry; one that cannot go
    out now (``launch_problem``) ends ``failed``, saying why. Returns how many started."""
    due = list(
        db.scalars(
            select(Campaign.id)
            .where(Campaign.status == "scheduled", Campaign.scheduled_at <= clock.now())
            .order_by(Campaign.scheduled_at, Campaign.id)
        )
    )
    started = 0
    for campaign_id in due:
        campaign = _locked(db, campaign_id)
        problem = launch_problem(db, campaign) if campaign.status == "scheduled" else None
        if problem is not None:
            _fail(db, campaign, problem)
        elif campaign.status == "scheduled":  # not paused or cancelled since the read
            now = clock.now()
            campaign.status = "sending"
            campaign.started_at = campaign.started_at or now
            campaign.updated_at = now
            _enqueue_launch(db, campaign)
            started += 1
        db.commit()
    return started


def launch_campaign(db: Session, *, campaign_id: int) -> int:
    """Queue the campaign's deliveries, batch by batch (each committed), and return how many
    were new. Idempotent: a second run (or one resuming after a crash) queues only those
    not queued yet. A campaign paused or cancelled meanwhile stops after the batch in hand;
    one already sent queues nothing. A draft is launched (its settings checked first)."""
    campaign = get_campaign(db, campaign_id=campaign_id)
    if campaign.kind not in ("one_off", "scheduled"):
        raise InvalidInput(
            f"A {campaign.kind} campaign is not launched to an audience at once", field="kind"
        )
    if campaign.status in ("sent", "cancelled", "paused", "failed"):
        return 0
    if campaign.status == "draft":
        _check_ready(db, campaign)
    problem = launch_problem(db, campaign)
    if problem is not None:
        # Retrying cannot mend it (a segment deleted, an endpoint deactivated since the
        # launch): the campaign ends failed, saying why, at once, instead of staying
        # "sending" behind a job failing five times.
        _fail(db, _locked(db, campaign.id), problem)
        db.commit()
        return 0
    now = clock.now()
    campaign.status = "sending"
    campaign.started_at = campaign.started_at or now
    campaign.updated_at = now
    db.commit()
    added = 0
    context = _occasion_context(db, campaign)
    for batch in _audience_batches(db, campaign):
        status = db.scalar(select(Campaign.status).where(Campaign.id == campaign.id))
        if status != "sending":
            return added
        recipients = [
            Recipient(
                customer_id=customer_id,
                group="control"
                if in_control_group(campaign.id, customer_id, campaign.control_percent)
                else "treated",
                context=context,
            )
            for customer_id in batch
        ]
        added += queue_deliveries(db, campaign=campaign, recipients=recipients)
        db.commit()
    campaign = _locked(db, campaign.id)
    if campaign.status == "sending":
        campaign.audience_count = audience_count(db, campaign_id=campaign.id)
        campaign.updated_at = clock.now()
        if not has_waiting(db, campaign_id=campaign.id):
            campaign.status = "sent"
            campaign.finished_at = campaign.updated_at
        # else it stays "sending" until the dispatcher has settled its last delivery
        # (delivery.sending.settle_campaigns): deferred ones may still be paused or cancelled
    db.commit()
    return added


def _occasion_context(db: Session, campaign: Campaign) -> dict[str, Any]:
    """What every delivery of the campaign carries: a local invitation's store."""
    if campaign.store_id is None:
        return {}
    store = catalog.get_store(db, store_id=campaign.store_id)
    return {STORE_CONTEXT: store_context(store)} if store is not None else {}


def audience_count(db: Session, *, campaign_id: int) -> int:
    """Customers the campaign reached or held out (every delivery row it has)."""
    return int(
        db.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)
        )
        or 0
    )


def _audience_batches(db: Session, campaign: Campaign) -> Iterator[list[str]]:
    if campaign.store_id is not None:
        yield from keyset_batches(
            db, local_invitation_query(db, campaign=campaign), batch=AUDIENCE_BATCH
        )
    elif campaign.segment_id is not None:
        yield from iter_audience(db, segment_id=campaign.segment_id, batch=AUDIENCE_BATCH)


def pause_campaign(
    db: Session, *, campaign_id: int, before_commit: BeforeCommit | None = None
) -> Campaign:
    """Hold the campaign: a launch stops after its batch in hand, a scheduled one does not
    start, a triggered one ignores events, and deliveries not sent yet wait (those a dispatcher
    had claimed too). Commits."""
    campaign = _locked(db, campaign_id)
    if campaign.status not in ("scheduled", "sending", "active") and not (
        campaign.status == "sent" and has_waiting(db, campaign_id=campaign.id)
    ):
        raise Conflict(f"A {campaign.status} campaign cannot be paused")
    campaign.status = "paused"
    # Deliveries a dispatcher claimed but has not marked sent wait again; its mark then fails
    # for them, so no message starts after this commit (docs/campaigns-delivery.md).
    hold_claimed(db, campaign_id=campaign.id)
    campaign.updated_at = clock.now()
    if before_commit is not None:
        before_commit(db, campaign)
    db.commit()
    return campaign


def resume_campaign(
    db: Session, *, campaign_id: int, before_commit: BeforeCommit | None = None
) -> Campaign:
    """Take up a paused campaign where it stood: scheduled again (if it had not started),
    sending (the launch resumes, queueing only those not queued yet) or active. Commits."""
    campaign = _locked(db, campaign_id)
    if campaign.status != "paused":
        raise Conflict(f"A {campaign.status} campaign is not paused")
    now = clock.now()
    release_paused(db, campaign_id=campaign.id)  # due now, not after the paused recheck
    if campaign.kind == "triggered":
        campaign.status = "active"
    elif campaign.started_at is None and campaign.scheduled_at is not None:
        campaign.status = "scheduled"  # the scheduled check launches it (at once if late)
    elif campaign.audience_count > 0:
        # Its launch had queued the whole audience: only deliveries still waiting remain
        # (the dispatcher sends them and then marks the campaign sent).
        waiting = has_waiting(db, campaign_id=campaign.id)
        campaign.status = "sending" if waiting else "sent"
        if not waiting:
            campaign.finished_at = now
    else:
        campaign.status = "sending"
        campaign.started_at = campaign.started_at or now
        _enqueue_launch(db, campaign)
    campaign.updated_at = now
    if before_commit is not None:
        before_commit(db, campaign)
    db.commit()
    return campaign


def cancel_campaign(
    db: Session, *, campaign_id: int, before_commit: BeforeCommit | None = None
) -> Campaign:
    """Stop for good: deliveries not sent yet are suppressed ('campaign cancelled'), with
    their history. Commits."""
    campaign = _locked(db, campaign_id)
    if campaign.key is not None:
        raise Conflict("A system campaign cannot be cancelled; edit or pause its message")
    if campaign.status == "cancelled" or (
        campaign.status == "sent" and not has_waiting(db, campaign_id=campaign.id)
    ):
        raise Conflict(f"A {campaign.status} campaign cannot be cancelled")
    _cancel(db, campaign, reason="campaign cancelled")
    if before_commit is not None:
        before_commit(db, campaign)
    db.commit()
    return campaign


def _cancel(db: Session, campaign: Campaign, *, reason: str) -> None:
    """Cancel in the session (no commit): deliveries not sent yet are suppressed with
    ``reason``, with their history."""
    _suppress_waiting(db, campaign, reason=reason)
    now = clock.now()
    campaign.status = "cancelled"
    campaign.finished_at = now
    campaign.updated_at = now


def _suppress_waiting(db: Session, campaign: Campaign, *, reason: str) -> None:
    """The campaign's deliveries not sent yet (waiting, failed with a retry to come, or claimed
    by a dispatcher that has not marked them sent) become suppressed with ``reason``, with
    their history (no commit)."""
    withdraw_unsent(db, campaign_id=campaign.id, reason=reason)
