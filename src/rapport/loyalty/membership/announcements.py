"""Program announcements (rule changes, new benefits, early access) queued for members.

Creating an announcement queues a worker job in the same transaction; the job writes one
:class:`AnnouncementDelivery` per member of the audience, a batch of members per transaction,
in customer-id order, skipping members who already have theirs (the primary key is the
announcement and the customer), so a job that runs twice or resumes after a crash writes
each delivery once. Only members the consent gate (``customers.contactable``) allows are
queued: a granted ``marketing_email`` (the delivery's channel is then "email") or else
``marketing_push`` ("push"), an active profile (a merged member's delivery goes to the profile
they were merged into), no identity of an erased person. The campaigns channels send each
delivery on its channel only.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.models import Announcement, AnnouncementDelivery, LoyaltyAccount, TierStanding
from rapport.platform import clock, jobs
from rapport.platform.errors import InvalidInput, NotFound

KINDS = ("rule_change", "new_benefit", "early_access")
QUEUE_JOB = "loyalty.queue_announcement"
BATCH = 500


def check_audience(audience: str) -> str:
    """'all' (every member), 'paying' (a paid plan's benefits now) or 'tier:<tier id>'."""
    audience = audience.strip()
    if audience in ("all", "paying"):
        return audience
    if audience.startswith("tier:") and 1 <= len(audience) - 5 <= 55:
        return audience
    raise InvalidInput("audience must be 'all', 'paying' or 'tier:<tier id>'", field="audience")


def create_announcement(
    db: Session, *, kind: str, title: str, body: str, audience: str, created_by: str
) -> tuple[Announcement, int]:
    """Store the announcement and queue the job that writes its deliveries (one
    transaction). Returns the announcement and the job's id."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if not title.strip() or len(title) > 200:
        raise InvalidInput("title must be 1-200 characters", field="title")
    if not body.strip() or len(body) > 4000:
        raise InvalidInput("body must be 1-4000 characters", field="body")
    announcement = Announcement(
        kind=kind,
        title=title.strip(),
        body=body.strip(),
        audience=check_audience(audience),
        created_at=clock.now(),
        created_by=created_by[:200],
        queued_count=0,
    )
    db.add(announcement)
    db.flush()
    job = jobs.enqueue(
        db,
        kind=QUEUE_JOB,
        payload={"announcement_id": announcement.id},
        dedupe_key=f"{QUEUE_JOB}:{announcement.id}",
    )
    job_id = job.id
    db.commit()
    return announcement, job_id


def requeue_announcement(db: Session, *, announcement_id: int) -> int:
    """Queue the delivery job again, e.g. for members who joined since: those who already
    have the announcement are skipped. Returns the job's id."""
    if db.get(Announcement, announcement_id) is None:
        raise NotFound(f"No announcement {announcement_id}", field="announcement_id")
    job_id = jobs.enqueue(db, kind=QUEUE_JOB, payload={"announcement_id": announcement_id}).id
    db.commit()
    return job_id


def list_announcements(db: Session, *, limit: int = 50) -> list[Announcement]:
    return list(db.scalars(select(Announcement).order_by(Announcement.id.desc()).limit(limit)))


def get_announcement(db: Session, *, announcement_id: int) -> Announcement | None:
    return db.get(Announcement, announcement_id)


def _audience_batch(db: Session, audience: str, *, after: str, limit: int) -> list[str]:
    """The next ``limit`` members of ``audience`` with ids above ``after``, in id order."""
    if audience == "paying":
        # Paying members are few next to all members; their set is read whole.
        paying = sorted(c for c in memberships.paying_members(db) if c > after)
        return paying[:limit]
    if audience.startswith("tier:"):
        return list(
            db.scalars(
                select(TierStanding.customer_id)
                .where(TierStanding.tier_id == audience[5:], TierStanding.customer_id > after)
                .order_by(TierStanding.customer_id)
                .limit(limit)
            )
        )
    with_points = select(LoyaltyAccount.customer_id.label("customer_id")).where(
        LoyaltyAccount.kind == "member", LoyaltyAccount.customer_id > after
    )
    with_tier = select(TierStanding.customer_id.label("customer_id")).where(
        TierStanding.customer_id > after
    )
    members = with_points.union(with_tier).subquery()
    found = list(
        db.scalars(select(members.c.customer_id).order_by(members.c.customer_id).limit(limit))
    )
    # Paying members without points or a tier are members too.
    paying = sorted(c for c in memberships.paying_members(db) if c > after)
    merged = sorted({*found, *paying})
    if len(found) == limit:
        merged = [c for c in merged if c <= found[-1]]
    return merged[:limit]


def _consented_channels(db: Session, members: list[str]) -> dict[str, str]:
    """The live profile of each member the gate lets us market to, with the channel."""
    channels: dict[str, str] = {}
    for purpose, channel in (("marketing_push", "push"), ("marketing_email", "email")):
        for live in customers.contactable(db, customer_ids=members, purpose=purpose).values():
            channels[live] = channel  # email, granted, wins over push
    return channels


def deliver_announcement(db: Session, *, announcement_id: int, batch: int = BATCH) -> int:
    """Write the announcement's deliveries for its audience as it stands now; returns how
    many are queued in all. Idempotent."""
    announcement = db.get(Announcement, announcement_id)
    if announcement is None:
        raise NotFound(f"No announcement {announcement_id}", field="announcement_id")
    audience = announcement.audience
    after = ""
    while True:
        members = _audience_batch(db, audience, after=after, limit=batch)
        if not members:
            break
        channels = _consented_channels(db, members)
        have = set(
            db.scalars(
                select(AnnouncementDelivery.customer_id).where(
                    AnnouncementDelivery.announcement_id == announcement_id,
                    AnnouncementDelivery.customer_id.in_(list(channels)),
                )
            )
        )
        now = clock.now()
        fresh = [
            {
                "announcement_id": announcement_id,
                "customer_id": customer_id,
                "status": "queued",
                "queued_at": now,
                "channel": channel,
            }
            for customer_id, channel in sorted(channels.items())
            if customer_id not in have
        ]
        if fresh:
            db.execute(insert(AnnouncementDelivery), fresh)
        _update_count(db, announcement_id)
        db.commit()
        after = members[-1]
    _update_count(db, announcement_id, finished=True)
    db.commit()
    return int(db.get(Announcement, announcement_id).queued_count)  # type: ignore[union-attr]


def _update_count(db: Session, announcement_id: int, *, finished: bool = False) -> None:
    count = db.scalar(
        select(func.count())
        .select_from(AnnouncementDelivery)
        .where(AnnouncementDelivery.announcement_id == announcement_id)
    )
    values: dict[str, object] = {"queued_count": int(count or 0)}
    if finished:
        values["queued_at"] = clock.now()
    db.execute(
        update(Announcement)
        .where(Announcement.id == announcement_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.expire_all()


def deliveries(db: Session, *, announcement_id: int) -> list[AnnouncementDelivery]:
    return list(
        db.scalars(
            select(AnnouncementDelivery)
            .where(AnnouncementDelivery.announcement_id == announcement_id)
            .order_by(AnnouncementDelivery.customer_id)
        )
    )
