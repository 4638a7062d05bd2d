"""Program announcements (rule changes, new benefits, early access) published to members.

Publishing an announcement stores it and appends ``announcement_published`` in the same
transaction; the campaigns domain reacts to that event (loyalty never calls it): it reads the
audience through :func:`announcement_audience`, queues one delivery per member who consented
to marketing on a channel (``marketing_email``, else ``marketing_push``), sends them through
its channels with the consent gate checked again at send time, and reports the counts back
with :func:`record_delivery_counts`. Publishing again reaches members who joined since:
campaigns keeps one delivery per member and announcement, whatever runs twice.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.events.service import append_event
from rapport.loyalty.events import AnnouncementPublished
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.models import Announcement, LoyaltyAccount, TierStanding
from rapport.loyalty.program.versions import tier_policy
from rapport.platform import clock
from rapport.platform.errors import InvalidInput, NotFound
from rapport.platform.idempotency import BeforeCommit

KINDS = ("rule_change", "new_benefit", "early_access")
# Jobs of this kind were queued by earlier versions to write the deliveries; one still waiting
# after an upgrade publishes its announcement again (see ``membership.jobs``).
QUEUE_JOB = "loyalty.queue_announcement"


def check_audience(db: Session, audience: str) -> str:
    """'all' (every member), 'paying' (a paid plan's benefits now) or 'tier:<tier id>' of a
    tier the ladder in force has (an announcement to a tier nobody can be in reaches nobody)."""
    audience = audience.strip()
    if audience in ("all", "paying"):
        return audience
    tiers = [tier.id for tier in tier_policy(db).tiers]
    choices = ", ".join(["'all'", "'paying'", *(f"'tier:{tier}'" for tier in tiers)])
    if audience.startswith("tier:"):
        if audience[5:] in tiers:
            return audience
        raise InvalidInput(
            f"No tier {audience[5:]!r} in the program: the audience is one of {choices}",
            field="audience",
        )
    raise InvalidInput(f"audience must be one of {choices}", field="audience")


def create_announcement(
    db: Session,
    *,
    kind: str,
    title: str,
    body: str,
    audience: str,
    created_by: str,
    before_commit: BeforeCommit | None = None,
) -> Announcement:
    """Store the announcement and publish it (``announcement_published``), in one
    transaction: the campaigns domain sends it to the audience's consenting members.
    ``before_commit`` runs last in that transaction (the API stores its answer there)."""
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
        audience=check_audience(db, audience),
        created_at=clock.now(),
        created_by=created_by[:200],
        queued_count=0,
        sent_count=0,
    )
    db.add(announcement)
    db.flush()
    _publish(db, announcement)
    if before_commit is not None:
        before_commit(db, announcement)
    db.commit()
    return announcement


def requeue_announcement(db: Session, *, announcement_id: int) -> Announcement:
    """Publish the announcement again, e.g. for members who joined since: those who already
    have it are not sent it twice (campaigns keeps one delivery per member)."""
    announcement = db.get(Announcement, announcement_id)
    if announcement is None:
        raise NotFound(f"No announcement {announcement_id}", field="announcement_id")
    _publish(db, announcement)
    db.commit()
    return announcement


def _publish(db: Session, announcement: Announcement) -> None:
    append_event(
        db,
        AnnouncementPublished(
            announcement_id=announcement.id,
            kind=announcement.kind,
            audience=announcement.audience,
        ),
        channel="web",
    )


def list_announcements(db: Session, *, limit: int = 50) -> list[Announcement]:
    return list(db.scalars(select(Announcement).order_by(Announcement.id.desc()).limit(limit)))


def get_announcement(db: Session, *, announcement_id: int) -> Announcement | None:
    return db.get(Announcement, announcement_id)


def announcement_audience(db: Session, *, audience: str, after: str, limit: int) -> list[str]:
    """The next ``limit`` members of ``audience`` (see :func:`check_audience`) with ids above
    ``after``, in id order: the campaigns domain pages through it to queue deliveries."""
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


def record_delivery_counts(db: Session, *, announcement_id: int, queued: int, sent: int) -> None:
    """How many deliveries of the announcement the campaigns domain has queued (members who
    consented when it was published) and sent, shown on the announcements page and API. In the
    caller's transaction; the first report stamps ``queued_at``."""
    now = clock.now()
    db.execute(
        update(Announcement)
        .where(Announcement.id == announcement_id)
        .values(queued_count=queued, sent_count=sent)
        .execution_options(synchronize_session=False)
    )
    db.execute(
        update(Announcement)
        .where(Announcement.id == announcement_id, Announcement.queued_at.is_(None))
        .values(queued_at=now)
        .execution_options(synchronize_session=False)
    )
