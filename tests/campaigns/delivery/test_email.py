"""Email deliveries through a real SMTP server: personalised, with a working unsubscribe
header, one per recipient whatever runs twice, bounces suppressed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Delivery, DeliveryStatus, Suppression
from rapport.customers import service as customers
from tests.campaigns.delivery.factories import make_campaign, make_customer
from tests.campaigns.receivers import SmtpSink


def _statuses(db: Session, campaign_id: int) -> dict[str, str]:
    return dict(
        db.execute(
            select(Delivery.recipient_key, Delivery.status).where(
                Delivery.campaign_id == campaign_id
            )
        ).all()
    )


def test_each_customer_gets_one_personal_email_with_a_one_click_unsubscribe(
    db: Session, smtp_sink: SmtpSink
) -> None:
    ada = make_customer(db, first_name="Ada", email="ada@example.org")
    nameless = make_customer(db, first_name=None, email="anon@example.org")
    campaign = make_campaign(
        db,
        subject="News for {{ customer.first_name }}",
        body="<p>Hello {{ first_name }} &amp; {{ occasion.note }}</p>"
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a>',
    )
    queue_deliveries(
        db,
        campaign=campaign,
        recipients=[
            Recipient(customer_id=ada, context={"note": "<b>sale</b>"}),
            Recipient(customer_id=nameless, context={"note": "x"}),
        ],
    )
    db.commit()

    assert dispatch_batch(db, worker="w1") == 2
    assert dispatch_batch(db, worker="w1") == 0  # nothing due: nothing sent twice

    assert sorted(m.to for m in smtp_sink.messages) == ["ada@example.org", "anon@example.org"]
    mail = smtp_sink.to("ada@example.org")[0]
    assert mail.subject == "News for Ada"
    assert "&lt;b&gt;sale&lt;/b&gt;" in mail.html  # occasion values are escaped in HTML
    assert "Hello Ada" in mail.text
    assert "Hello there" in smtp_sink.to("anon@example.org")[0].text
    headers = mail.message
    assert headers["List-Unsubscribe"].startswith("<http://testserver/u/")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # the plain-text part keeps the link's address after its text, for text-only readers
    assert f"Unsubscribe {headers['List-Unsubscribe']}" in mail.text
    delivery_id = db.scalar(
        select(Delivery.id).where(Delivery.campaign_id == campaign.id, Delivery.customer_id == ada)
    )
    assert headers["Message-ID"] == f"<delivery-{delivery_id}@localhost>"
    assert set(_statuses(db, campaign.id).values()) == {"sent"}
    history = list(
        db.scalars(
            select(DeliveryStatus.status)
            .where(DeliveryStatus.delivery_id == delivery_id)
            .order_by(DeliveryStatus.id)
        )
    )
    # handed over before the server's answer to DATA, sent once it accepted
    assert history == ["queued", "sending", "handed_over", "sent"]


def test_a_permanent_rejection_bounces_and_suppresses_the_address(
    db: Session, smtp_sink: SmtpSink
) -> None:
    gone = make_customer(db, email="gone@example.org")
    fine = make_customer(db, email="fine@example.org")
    smtp_sink.reject.add("gone@example.org")
    first = make_campaign(db)
    queue_deliveries(
        db, campaign=first, recipients=[Recipient(customer_id=gone), Recipient(customer_id=fine)]
    )
    db.commit()
    dispatch_batch(db, worker="w1")

    assert _statuses(db, first.id) == {gone: "bounced", fine: "sent"}
    assert db.get(Suppression, (gone, "email")) is not None
    # The next campaign does not even try the bounced address.
    second = make_campaign(db)
    queue_deliveries(db, campaign=second, recipients=[Recipient(customer_id=gone)])
    db.commit()
    dispatch_batch(db, worker="w1")
    reason = db.scalar(select(Delivery.reason).where(Delivery.campaign_id == second.id))
    assert str(reason).startswith("suppressed: bounce")
    assert [m.to for m in smtp_sink.messages] == ["fine@example.org"]
    assert customers.has_consent(db, customer_id=gone, purpose="marketing_email")
