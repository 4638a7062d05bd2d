"""Survey invitations ask the consent gate: no invitation without the survey's purpose
granted, none to an erased person (even one who had granted it), one for a consenting one."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from rapport.customers.models import Identity
from rapport.events.service import suppress_identities
from rapport.feedback import service
from rapport.feedback.models import Invitation
from rapport.flows import privacy
from rapport.platform.identity import identity_digest
from tests.feedback.factories import delivered_order, frozen_clock, make_customer, make_survey


def _ask(db, customer: str, order: str) -> service.InviteDecision:  # type: ignore[no-untyped-def]
    return service.invite(
        db,
        survey_id="nps-delivery",
        customer_id=customer,
        moment=service.Occasion(source_key=f"order:{order}", stage="after_delivery"),
    )


def test_only_consenting_live_customers_are_invited(db) -> None:
    # given a survey, a consenting customer, one without consent, one who consented and was
    # then erased, and a consenting one holding an erased person's identity
    frozen_clock()
    make_survey(db)
    consenting, c_ext = make_customer(db)
    silent, s_ext = make_customer(db, consent=False)
    erased, e_ext = make_customer(db)
    holder, h_ext = make_customer(db)
    orders = {
        who: delivered_order(db, external_id=ext)
        for who, ext in ((consenting, c_ext), (silent, s_ext), (erased, e_ext), (holder, h_ext))
    }
    privacy.erase_customer(db, customer_id=erased, requested_by="dpo")
    db.add(
        Identity(
            customer_id=holder,
            kind="loyalty_card",
            value="LC-ERASED-1",
            is_unique=True,
            source="legacy",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    db.flush()
    suppress_identities(db, digests=[identity_digest("loyalty_card", "LC-ERASED-1")])
    # when each is asked the survey about their delivery
    decisions = {who: _ask(db, who, order) for who, order in orders.items()}
    # then only the consenting customer gets an invitation (and a survey link)
    assert {who: d.reason for who, d in decisions.items()} == {
        consenting: "invited",
        silent: "no_consent",
        erased: "no_consent",
        holder: "no_consent",
    }
    invited = set(db.scalars(select(Invitation.customer_id)))
    assert invited == {consenting}
