"""Survey invitations: ``survey_invited`` (feedback) becomes an email carrying the signed link
to the public survey page.

The message is about something the customer did (their order, visit or ticket), so it goes as
a service message; feedback invited only customers who granted the survey's consent purpose
(``marketing_email``: a survey may ask no other, since this is an email), and that rule holds
here too:
the invitation is queued only while that consent still stands. An invitation answered or
expired before it is queued is not sent.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
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
    invitation = feedback.get_invitation(db, invitation_id=str(invitation_id))
    if invitation is None or invitation.answered_at is not None:
        return
    expires_at = clock.as_utc(invitation.expires_at)
    if expires_at <= clock.now():
        return
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
