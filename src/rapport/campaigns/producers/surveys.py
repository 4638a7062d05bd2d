"""Survey invitations: ``survey_invited`` (feedback) becomes an email carrying the signed link
to the public survey page.

The message is about something the customer did (their order, visit or ticket), so it goes as
a service message; feedback invited only customers who granted the survey's consent purpose
(``marketing_email``: a survey may ask no other, since this is an email), and that rule holds
here too:
the invitation is queued only while that consent still stands. An invitation answered or
expired before it is queued, or whose order was cancelled, is not queued; and the dispatcher
asks feedback again when it sends (:func:`withdrawn`), so one whose order is cancelled while it
waits is suppressed. One already sent stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.models import Campaign
from rapport.campaigns.producers.messages import (
    SURVEY_INVITATION,
    system_campaign,
    with_control_group,
)
from rapport.customers import service as customers
from rapport.events.service import LoggedEvent
from rapport.feedback import service as feedback
from rapport.platform import clock
from rapport.platform.settings import get_settings


def on_survey_invited(db: Session, event: LoggedEvent) -> None:
    invitation_id = (event.properties or {}).get("invitation_id")
    if not invitation_id:
        return
    if feedback.invitations_not_to_send(db, invitation_ids=[str(invitation_id)]):
        return  # answered, expired, or its order cancelled before it was queued
    invitation = feedback.get_invitation(db, invitation_id=str(invitation_id))
    if invitation is None:
        return
    expires_at = clock.as_utc(invitation.expires_at)
    survey = feedback.get_survey(db, survey_id=invitation.survey_id)
    if survey is None or not customers.may_contact(
        db, customer_id=invitation.customer_id, purpose=survey.consent_purpose
    ):
        return
    settings = get_settings()
    link = feedback.survey_link_url(
        invitation.invitation_id,
        secret=settings.session_secret(),
        base_url=settings.public_base_url,
    )
    campaign = system_campaign(db, SURVEY_INVITATION)
    queue_deliveries(
        db,
        campaign=campaign,
        recipients=with_control_group(
            campaign,
            [
                Recipient(
                    customer_id=invitation.customer_id,
                    occasion=f"invitation:{invitation.invitation_id}",
                    context={
                        "invitation_id": invitation.invitation_id,
                        "survey_id": invitation.survey_id,
                        "survey_url": link,
                        "expires_on": expires_at.date().isoformat(),
                        "order_id": invitation.order_id or "",
                        "stage": invitation.stage,
                    },
                )
            ],
        ),
    )


def withdrawn(db: Session, rows: Iterable[tuple[int, Campaign, str]]) -> dict[int, str]:
    """The survey invitations among claimed deliveries (delivery id, campaign, occasion) that
    must not go out any more (answered, expired, the order cancelled since it was queued),
    with why, by delivery id: the dispatcher suppresses them."""
    wanted = {
        delivery_id: occasion.removeprefix("invitation:")
        for delivery_id, campaign, occasion in rows
        if campaign.key == SURVEY_INVITATION and occasion.startswith("invitation:")
    }
    refused = feedback.invitations_not_to_send(db, invitation_ids=set(wanted.values()))
    return {
        delivery_id: refused[invitation_id]
        for delivery_id, invitation_id in wanted.items()
        if invitation_id in refused
    }
