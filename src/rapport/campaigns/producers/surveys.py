"""Survey invitations: ``survey_invited`` (feedback) becomes an email carrying the signed link
to the public survey page. The delivery keeps the link's signed path (``survey_path``); the
address (``occasion.survey_url``) is built when the email is rendered, under
``RAPPORT_PUBLIC_BASE_URL`` as it is then, so a host changed while the email waits is the one
it carries.

The message is about something the customer did (their order, visit or ticket), so it goes as
a service message; feedback invited only customers who granted the survey's consent purpose
(``marketing_email``: a survey may ask no other, since this is an email), and that rule holds
here too: feedback says which invitations must not go out (``feedback.withdraw_invitations``:
answered, expired, the order cancelled, the survey's consent no longer standing) and records
them withdrawn, so that one never sent does not count for fatigue. It is asked when the
invitation is queued, and again by the dispatcher when it sends (:func:`withdrawn`), so one
whose order is cancelled, or whose consent is withdrawn, while it waits is suppressed. One
already sent stays as it is. An invitation whose email never reaches the customer for the
campaigns domain's own reasons (held out in the control group when queued; suppressed, dead or
bounced when the dispatcher marks it: :func:`given_up`) is recorded withdrawn too
(``feedback.invitations_not_sent``): it asked nothing, so it does not count for fatigue.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.models import Campaign, Delivery
from rapport.campaigns.producers.messages import (
    SURVEY_INVITATION,
    system_campaign,
    with_control_group,
)
from rapport.events.service import LoggedEvent
from rapport.feedback import service as feedback
from rapport.platform import clock
from rapport.platform.settings import get_settings


def on_survey_invited(db: Session, event: LoggedEvent) -> None:
    invitation_id = (event.properties or {}).get("invitation_id")
    if not invitation_id:
        return
    if feedback.withdraw_invitations(db, invitation_ids=[str(invitation_id)]):
        return  # answered, expired, its order cancelled or its consent withdrawn: not queued
    invitation = feedback.get_invitation(db, invitation_id=str(invitation_id))
    if invitation is None:
        return
    expires_at = clock.as_utc(invitation.expires_at)
    # The signed path only: the dispatcher renders it under RAPPORT_PUBLIC_BASE_URL as it
    # stands when the email goes out (``occasion.survey_url``, rendering.with_links).
    path = feedback.survey_link_path(
        invitation.invitation_id, secret=get_settings().session_secret()
    )
    campaign = system_campaign(db, SURVEY_INVITATION)
    recipients = with_control_group(
        campaign,
        [
            Recipient(
                customer_id=invitation.customer_id,
                occasion=f"invitation:{invitation.invitation_id}",
                context={
                    "invitation_id": invitation.invitation_id,
                    "survey_id": invitation.survey_id,
                    "survey_path": path,
                    "expires_on": expires_at.date().isoformat(),
                    "order_id": invitation.order_id or "",
                    "stage": invitation.stage,
                },
            )
        ],
    )
    queue_deliveries(db, campaign=campaign, recipients=recipients)
    if any(r.group == "control" for r in recipients):
        # Held out: never sent, so it asked the customer nothing (fatigue).
        feedback.invitations_not_sent(db, invitation_ids=[invitation.invitation_id])


def withdrawn(db: Session, rows: Iterable[tuple[int, Campaign, str]]) -> dict[int, str]:
    """The survey invitations among claimed deliveries (delivery id, campaign, occasion) that
    must not go out any more (answered, expired, the order cancelled or the survey's consent
    withdrawn since it was queued), with why, by delivery id: the dispatcher suppresses them,
    and feedback has recorded them withdrawn, in the dispatcher's transaction."""
    wanted = {
        delivery_id: occasion.removeprefix("invitation:")
        for delivery_id, campaign, occasion in rows
        if campaign.key == SURVEY_INVITATION and occasion.startswith("invitation:")
    }
    refused = feedback.withdraw_invitations(db, invitation_ids=set(wanted.values()))
    return {
        delivery_id: refused[invitation_id]
        for delivery_id, invitation_id in wanted.items()
        if invitation_id in refused
    }


# A delivery that ends in one of these never reached the customer.
GIVEN_UP = ("suppressed", "dead", "bounced")


def given_up(db: Session, delivery_ids: Collection[int]) -> None:
    """Tell feedback which survey invitations among these deliveries, just marked, ended
    without reaching the customer (:data:`GIVEN_UP`: no email address, an address suppressed
    after a hard bounce, consent or erasure refused by the gates, a bounce, the server refusing
    it every time), in the dispatcher's transaction: feedback records them withdrawn, so they
    do not count for the customer's fatigue days."""
    if not delivery_ids:
        return
    occasions = db.scalars(
        select(Delivery.occasion)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(
            Delivery.id.in_(set(delivery_ids)),
            Delivery.status.in_(GIVEN_UP),
            Campaign.key == SURVEY_INVITATION,
            Delivery.occasion.startswith("invitation:"),
        )
    ).all()
    if occasions:
        feedback.invitations_not_sent(
            db, invitation_ids={o.removeprefix("invitation:") for o in occasions}
        )
