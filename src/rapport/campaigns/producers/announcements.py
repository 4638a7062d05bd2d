"""Member announcements (rule changes, new benefits, early access to sales) as marketing
campaigns.

``announcement_published`` (loyalty) queues a job (:data:`QUEUE_JOB`) that turns the
announcement into two campaigns, ``loyalty.announcement.<id>.email`` and ``….inbox``, whose
templates are the announcement's title and message (the retailer may edit them on the
campaigns pages), and queues one delivery per member of the audience, in batches, each batch
committed: members who granted ``marketing_email`` get the email, those who granted only
``marketing_push`` the app-inbox copy, the others (and erased people) nothing. The gates check
the same consent again when each message goes out, so a consent withdrawn in between stops it.
Running again (a second publish, a replayed job) queues only members who have none yet.

The counts on loyalty's announcement (queued, sent) are reported back through
``loyalty.service.record_delivery_counts`` after queuing and every minute while the campaigns
are recent (:func:`refresh_announcement_counts`).
"""

from __future__ import annotations

import html
from datetime import timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.models import Campaign, Delivery
from rapport.campaigns.planning.editing import ensure_system_campaign
from rapport.campaigns.producers.messages import ANNOUNCEMENT_PREFIX, with_control_group
from rapport.customers import service as customers
from rapport.events.service import LoggedEvent
from rapport.loyalty import service as loyalty
from rapport.platform import clock, jobs

QUEUE_JOB = "campaigns.queue_announcement"
BATCH = 1000
# Announcement campaigns whose counts the schedule keeps refreshing.
COUNTS_FOR = timedelta(days=7)
_JINJA_OPENERS = ("{{", "{%", "{#")


def campaign_key(announcement_id: int, channel: str) -> str:
    return f"{ANNOUNCEMENT_PREFIX}{announcement_id}.{channel}"


def on_announcement_published(db: Session, event: LoggedEvent) -> None:
    announcement_id = (event.properties or {}).get("announcement_id")
    if announcement_id is None:
        return
    jobs.enqueue(
        db,
        kind=QUEUE_JOB,
        payload={"announcement_id": int(announcement_id)},
        # One job per publication: a replayed batch does not queue it twice.
        dedupe_key=f"{QUEUE_JOB}:{int(announcement_id)}:{event.position}",
    )


def _literal(text: str) -> str:
    """``text`` as template source that renders as itself (an operator's message may hold
    Jinja delimiters, which must not run)."""
    if not any(opener in text for opener in _JINJA_OPENERS):
        return text
    return text.replace("{", "{{ '{' }}")


def _html_paragraphs(text: str) -> str:
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def announcement_campaigns(
    db: Session, *, announcement_id: int, title: str, body: str
) -> tuple[Campaign, Campaign]:
    """The email and inbox campaigns of an announcement, created on first use."""
    name = f"Announcement {announcement_id}: {title}"[:200]
    subject = _literal(title)
    email_body = (
        "<p>Hello {{ customer.first_name }},</p>\n"
        + _literal(_html_paragraphs(body))
        + '\n<p><small><a href="{{ unsubscribe_url }}">Unsubscribe</a> from these emails.'
        "</small></p>\n"
    )
    email = ensure_system_campaign(
        db,
        key=campaign_key(announcement_id, "email"),
        name=name,
        purpose="marketing",
        channel="email",
        templates={("email", "en"): (subject, email_body)},
    )
    inbox = ensure_system_campaign(
        db,
        key=campaign_key(announcement_id, "inbox"),
        name=f"{name} (app inbox)"[:200],
        purpose="marketing",
        channel="inbox",
        templates={("inbox", "en"): (subject, _literal(body))},
    )
    return email, inbox


def queue_announcement(db: Session, *, announcement_id: int, batch: int = BATCH) -> int:
    """Queue the announcement's deliveries for its audience as it stands now, a batch per
    transaction; returns how many were new. Idempotent."""
    announcement = loyalty.get_announcement(db, announcement_id=announcement_id)
    if announcement is None:
        return 0
    email, inbox = announcement_campaigns(
        db, announcement_id=announcement.id, title=announcement.title, body=announcement.body
    )
    audience = announcement.audience
    added = 0
    after = ""
    while members := loyalty.announcement_audience(db, audience=audience, after=after, limit=batch):
        # The live profile of each member (merges followed), by the channel they granted.
        by_email = set(
            customers.contactable(db, customer_ids=members, purpose="marketing_email").values()
        )
        by_push = set(
            customers.contactable(db, customer_ids=members, purpose="marketing_push").values()
        )
        added += queue_deliveries(
            db,
            campaign=email,
            recipients=with_control_group(
                email, [Recipient(customer_id=c) for c in sorted(by_email)]
            ),
        )
        added += queue_deliveries(
            db,
            campaign=inbox,
            recipients=with_control_group(
                inbox, [Recipient(customer_id=c) for c in sorted(by_push - by_email)]
            ),
        )
        db.commit()
        after = members[-1]
    _report_counts(db, [email.id, inbox.id])
    db.commit()
    return added


def _announcement_id(key: str) -> int | None:
    middle = key[len(ANNOUNCEMENT_PREFIX) :].split(".")[0]
    return int(middle) if middle.isdigit() else None


def _report_counts(db: Session, campaign_ids: list[int]) -> None:
    rows = db.execute(
        select(
            Campaign.key,
            func.count(Delivery.id),
            func.coalesce(func.sum(case((Delivery.status == "sent", 1), else_=0)), 0),
        )
        .join(Delivery, Delivery.campaign_id == Campaign.id, isouter=True)
        .where(Campaign.id.in_(campaign_ids))
        .group_by(Campaign.key)
    ).all()
    totals: dict[int, tuple[int, int]] = {}
    for key, queued, sent in rows:
        announcement_id = _announcement_id(str(key))
        if announcement_id is None:
            continue
        was = totals.get(announcement_id, (0, 0))
        totals[announcement_id] = (was[0] + int(queued), was[1] + int(sent or 0))
    for announcement_id, (queued, sent) in sorted(totals.items()):
        loyalty.record_delivery_counts(
            db, announcement_id=announcement_id, queued=queued, sent=sent
        )


def refresh_announcement_counts(db: Session) -> None:
    """Report the queued and sent counts of recent announcement campaigns to loyalty."""
    recent = list(
        db.scalars(
            select(Campaign.id).where(
                Campaign.key.like(f"{ANNOUNCEMENT_PREFIX}%"),
                Campaign.created_at >= clock.now() - COUNTS_FOR,
            )
        )
    )
    if recent:
        _report_counts(db, recent)
    db.commit()
