"""Survey invitations: who is asked which survey about which moment. The consent gate
(``customers.may_contact`` for the survey's purpose), the sample (a hash, so replays agree),
fatigue (nobody asked any survey twice within the survey's days) and one invitation per survey
and moment; each invitation keeps the experience signals known when it was made. No survey is
asked about an order that was cancelled, and an invitation not sent yet is not sent once its
order is cancelled, its link expired or the customer may no longer be emailed for the survey's
purpose: it is withdrawn (:func:`withdraw_invitations`, which the email's queueing and sending
ask), as is one whose email the campaigns domain gave up on for its own reasons
(:func:`invitations_not_sent`); a withdrawn invitation, never sent, does not count for fatigue
and takes no answer."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import log_event
from rapport.feedback.events import SurveyInvited
from rapport.feedback.models import Invitation, Survey
from rapport.feedback.named_orders import require_customers_order
from rapport.feedback.surveys.definitions import require_survey
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.ids import new_id


@dataclass(frozen=True, slots=True)
class Occasion:
    """What prompted a survey: the journey stage and its context."""

    source_key: str
    stage: str
    channel: str | None = None
    store_id: str | None = None
    order_id: str | None = None
    ticket_id: str | None = None
    signals: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class InviteDecision:
    invited: bool
    # "invited", "no_consent", "fatigue", "not_sampled", "inactive", "already",
    # "order_cancelled"
    reason: str
    invitation: Invitation | None = None


def sampled(survey_id: str, source_key: str, rate: float) -> bool:
    """Whether this moment falls in the survey's sample: a hash, so replays agree."""
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"{survey_id}:{source_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def last_invited(db: Session, *, customer_id: str) -> datetime | None:
    """When the customer was last asked any survey: the latest invitation sent, handed out by
    the API, answered or still waiting to go out. One withdrawn before it was sent
    (:func:`withdraw_invitations`) or whose email was given up (:func:`invitations_not_sent`:
    the control group, no address, a bounce …) asked them nothing, so it does not count."""
    at = db.scalar(
        select(func.max(Invitation.created_at)).where(
            Invitation.customer_id == customer_id,
            or_(Invitation.withdrawn_at.is_(None), Invitation.answered_at.is_not(None)),
        )
    )
    return clock.as_utc(at) if at is not None else None


def invite(
    db: Session,
    *,
    survey_id: str,
    customer_id: str,
    moment: Occasion,
    commit: bool = True,
    before_commit: BeforeCommit | None = None,
) -> InviteDecision:
    """Ask ``customer_id`` the survey about ``moment``, unless the survey is inactive, the
    moment's order was cancelled, the moment is outside the sample, the customer has not
    consented to be contacted for the survey's purpose, or was asked any survey within the
    survey's fatigue days. A ``moment`` naming an order names one of the customer's own
    (:mod:`rapport.feedback.named_orders`, as answers, reviews and tickets do), else ``422``
    naming ``order_id``: an answer to the invitation, and its detractor ticket, keep that order.
    ``before_commit`` runs last in the transaction, with the decision."""
    survey = require_survey(db, survey_id)
    if moment.order_id is not None:
        require_customers_order(db, order_id=moment.order_id, customer_id=customer_id)
    decision = invite_to_survey(db, survey, customer_id, moment)
    if before_commit is not None:
        before_commit(db, decision)
    if commit:
        db.commit()
    return decision


def invite_to_survey(
    db: Session, survey: Survey, customer_id: str, moment: Occasion
) -> InviteDecision:
    """:func:`invite` in the caller's transaction, for a survey already read."""
    if not survey.active:
        return InviteDecision(False, "inactive")
    existing = db.scalar(
        select(Invitation).where(
            Invitation.survey_id == survey.survey_id, Invitation.source_key == moment.source_key
        )
    )
    if existing is not None:
        return InviteDecision(False, "already", existing)
    if cancelled_order(db, order_id=moment.order_id):
        return InviteDecision(False, "order_cancelled")  # no survey about a purchase called off
    if not sampled(survey.survey_id, moment.source_key, survey.sampling_rate):
        return InviteDecision(False, "not_sampled")
    customer = customers.get_customer(db, customer_id=customer_id)
    # The consent gate: the survey's purpose granted, the profile active, not on the blocklist.
    if customer is None or not customers.may_contact(
        db, customer_id=customer_id, purpose=survey.consent_purpose
    ):
        return InviteDecision(False, "no_consent")
    now = clock.now()
    last = last_invited(db, customer_id=customer_id)
    if last is not None and now - last < timedelta(days=survey.fatigue_days):
        return InviteDecision(False, "fatigue")
    tier = loyalty.member_benefits(db, customer_id=customer_id).tier_id
    invitation = Invitation(
        invitation_id=new_id("inv"),
        survey_id=survey.survey_id,
        source_key=moment.source_key,
        customer_id=customer_id,
        locale=customer.locale,
        channel=moment.channel,
        store_id=moment.store_id,
        order_id=moment.order_id,
        ticket_id=moment.ticket_id,
        stage=moment.stage,
        tier=tier,
        signals=dict(moment.signals or {}),
        created_at=now,
        expires_at=now + timedelta(days=survey.link_days),
    )
    db.add(invitation)
    db.flush()
    log_event(
        db,
        SurveyInvited(
            invitation_id=invitation.invitation_id,
            survey_id=survey.survey_id,
            stage=moment.stage,
            order_id=moment.order_id,
        ),
        channel=moment.channel or "web",
        customer_id=customer_id,
    )
    return InviteDecision(True, "invited", invitation)


def get_invitation(db: Session, *, invitation_id: str) -> Invitation | None:
    return db.get(Invitation, invitation_id)


def cancelled_order(db: Session, *, order_id: str | None) -> bool:
    """Whether ``order_id`` names an order that was cancelled: a survey about it asks about a
    purchase that did not happen."""
    if not order_id:
        return False
    order = orders.get_order(db, order_id=order_id)
    return order is not None and order.status == "cancelled"


def invitations_not_to_send(
    db: Session, *, invitation_ids: Collection[str], now: datetime | None = None
) -> dict[str, str]:
    """Why each of these invitations must not be sent (any more), by id: unknown, answered,
    its link expired, its order cancelled since it was made, or the customer no longer to be
    contacted for the survey's consent purpose (consent withdrawn, profile erased). The others
    may go out. Only a judgement: the email's queueing and sending ask
    :func:`withdraw_invitations`, which also records the withdrawal."""
    ids = set(invitation_ids)
    if not ids:
        return {}
    moment = now or clock.now()
    found = {
        row.invitation_id: row
        for row in db.scalars(select(Invitation).where(Invitation.invitation_id.in_(ids)))
    }
    refused: dict[str, str] = {}
    waiting: dict[str, list[Invitation]] = {}  # by the consent purpose their survey asks
    purposes = dict(
        db.execute(
            select(Survey.survey_id, Survey.consent_purpose).where(
                Survey.survey_id.in_({i.survey_id for i in found.values()})
            )
        ).all()
    )
    for invitation_id in ids:
        invitation = found.get(invitation_id)
        if invitation is None:
            refused[invitation_id] = "survey invitation unknown"
        elif invitation.answered_at is not None:
            refused[invitation_id] = "survey already answered"
        elif clock.as_utc(invitation.expires_at) <= moment:
            refused[invitation_id] = "survey link expired"
        elif cancelled_order(db, order_id=invitation.order_id):
            refused[invitation_id] = f"survey withdrawn: order {invitation.order_id} cancelled"
        elif invitation.survey_id not in purposes:
            refused[invitation_id] = "survey unknown"
        else:
            waiting.setdefault(purposes[invitation.survey_id], []).append(invitation)
    for purpose, invitations in waiting.items():
        allowed = customers.contactable(
            db, customer_ids={i.customer_id for i in invitations}, purpose=purpose
        )
        for invitation in invitations:
            if invitation.customer_id not in allowed:
                refused[invitation.invitation_id] = f"survey withdrawn: no {purpose} consent"
    return refused


def withdraw_invitations(
    db: Session, *, invitation_ids: Collection[str], now: datetime | None = None
) -> dict[str, str]:
    """:func:`invitations_not_to_send`, for the email about to be queued or sent: each of
    these invitations that must not go out, with why, by id; those unanswered are recorded
    withdrawn (``withdrawn_at``, once) in the caller's transaction, so that an invitation never
    sent does not count as the customer's last survey for fatigue. Ask it only for invitations
    not sent yet: one already sent was asked, whatever happened since."""
    moment = now or clock.now()
    refused = invitations_not_to_send(db, invitation_ids=invitation_ids, now=moment)
    _mark_withdrawn(db, refused, moment)
    return refused


def invitations_not_sent(
    db: Session, *, invitation_ids: Collection[str], now: datetime | None = None
) -> None:
    """Record withdrawn (``withdrawn_at``, once, in the caller's transaction) these
    invitations whose email the campaigns domain gave up on for a reason of its own: held out
    in the control group, no email address, an address suppressed after a hard bounce, a
    consent or erasure the dispatcher's gates refused, a bounce, the server refusing it every
    time. They asked the customer nothing, so they do not count for fatigue. One answered, or
    made through the API (stage ``manual``: its link was handed out in the answer, so it may
    have reached the customer another way), stays as it is and counts."""
    _mark_withdrawn(db, invitation_ids, now or clock.now(), Invitation.stage != "manual")


def _mark_withdrawn(
    db: Session, invitation_ids: Collection[str], moment: datetime, *where: Any
) -> None:
    if invitation_ids:
        db.execute(
            update(Invitation)
            .where(
                Invitation.invitation_id.in_(set(invitation_ids)),
                Invitation.answered_at.is_(None),
                Invitation.withdrawn_at.is_(None),
                *where,
            )
            .values(withdrawn_at=moment)
        )


def order_signals(db: Session, *, order_id: str) -> dict[str, Any]:
    """What the customer lived through with this order: days late against the promise
    (negative: early) and whether it was their first order."""
    order = orders.get_order(db, order_id=order_id)
    if order is None:
        return {}
    signals: dict[str, Any] = {}
    if order.promised_delivery is not None and order.delivered_at is not None:
        delivered = clock.as_utc(order.delivered_at).date()
        signals["days_late"] = (delivered - order.promised_delivery).days
    if order.customer_id is not None:
        placed = clock.as_utc(order.placed_at)
        earlier = [
            o
            for o in orders.customer_orders(db, customer_id=order.customer_id, limit=500)
            if clock.as_utc(o.placed_at) < placed
        ]
        signals["first_purchase"] = not earlier
    return signals
