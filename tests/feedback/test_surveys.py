"""Survey triggers, sampling, consent and fatigue; answering once through signed links;
detractors opening tickets; targets and alerts; moments of truth; comment themes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from rapport.events.models import Event
from rapport.feedback import service
from rapport.feedback.models import Invitation, Ticket
from rapport.feedback.schemas import ResponseIn, TargetIn
from rapport.feedback.surveys import links
from rapport.platform.errors import InvalidInput
from tests.events.factories import tracked
from tests.feedback.factories import (
    T0,
    delivered_order,
    frozen_clock,
    in_stores,
    make_customer,
    make_survey,
)

SECRET = "test-secret"


def _delivered_event(db, customer_id: str, order_id: str) -> Event:
    event = tracked(
        db,
        type="order_delivered",
        channel="web",
        customer_id=customer_id,
        properties={"order_id": order_id},
    )
    db.flush()
    return event


def _invitations(db, customer_id: str) -> list[Invitation]:
    return list(
        db.scalars(
            select(Invitation)
            .where(Invitation.customer_id == customer_id)
            .order_by(Invitation.created_at)
        )
    )


def test_a_delivery_invites_the_customer_with_what_happened(db) -> None:
    # given an NPS survey after delivery and a customer whose parcel came 3 days late
    frozen_clock()
    make_survey(db)
    customer, external = make_customer(db, locale="fr")
    order = delivered_order(db, external_id=external, days_late=3)
    # when the delivery event is processed
    service.process_feedback_events(db, [_delivered_event(db, customer, order)])
    # then the customer is invited once, in French, with the signals of that order
    (invitation,) = _invitations(db, customer)
    assert invitation.stage == "after_delivery"
    assert invitation.locale == "fr"
    assert invitation.order_id == order
    assert invitation.signals == {"days_late": 3, "first_purchase": True}
    assert invitation.expires_at == T0 + timedelta(days=14)
    # and processing the same event again invites nobody twice
    service.process_feedback_events(db, [_delivered_event(db, customer, order)])
    assert len(_invitations(db, customer)) == 1


def test_no_consent_no_survey(db) -> None:
    # given a customer who has not consented to survey e-mails
    frozen_clock()
    make_survey(db)
    customer, external = make_customer(db, consent=False)
    order = delivered_order(db, external_id=external)
    # when
    decision = service.invite(
        db,
        survey_id="nps-delivery",
        customer_id=customer,
        moment=service.Occasion(source_key=f"order:{order}", stage="after_delivery"),
    )
    # then
    assert (decision.invited, decision.reason) == (False, "no_consent")
    assert _invitations(db, customer) == []


def test_fatigue_rule_spaces_surveys_by_n_days(db) -> None:
    # given a customer asked today, with a 30-day fatigue rule
    clock = frozen_clock()
    make_survey(db, fatigue_days=30)
    make_survey(db, survey_id="csat-visit", kind="csat", trigger="after_store_visit")
    customer, _ = make_customer(db)

    def ask(survey_id: str, key: str) -> str:
        return service.invite(
            db,
            survey_id=survey_id,
            customer_id=customer,
            moment=service.Occasion(source_key=key, stage="manual"),
        ).reason

    assert ask("nps-delivery", "a") == "invited"
    # when asked again 29 days later, by any survey
    clock.advance(timedelta(days=29))
    assert ask("nps-delivery", "b") == "fatigue"
    assert ask("csat-visit", "c") == "fatigue"
    # then after 30 days they may be asked again
    clock.advance(timedelta(days=1))
    assert ask("csat-visit", "d") == "invited"


def test_sampling_is_deterministic_per_moment(db) -> None:
    # given a survey sampling 30% of moments
    rate = 0.3
    keys = [f"order:O-{n}" for n in range(1000)]
    chosen = [k for k in keys if service.sampled("nps-delivery", k, rate)]
    # then about 30% are chosen, and the same ones every time
    assert 250 <= len(chosen) <= 350
    assert chosen == [k for k in keys if service.sampled("nps-delivery", k, rate)]
    assert all(service.sampled("x", k, 1.0) for k in keys[:10])
    assert not any(service.sampled("x", k, 0.0) for k in keys[:10])


def test_after_purchase_surveys_listen_to_one_channel(db) -> None:
    frozen_clock()
    make_survey(db, survey_id="ces-store", kind="ces", trigger="after_purchase", channel="store")
    customer, _ = make_customer(db)
    web = tracked(
        db, type="order_placed", channel="web", customer_id=customer, properties={"order_id": "W1"}
    )
    store = tracked(
        db,
        type="order_placed",
        channel="store",
        customer_id=customer,
        properties={"order_id": "S1", "store_id": "st-1", "fulfilment": "in_store"},
    )
    db.flush()
    service.process_feedback_events(db, [web, store])
    (invitation,) = _invitations(db, customer)
    assert (invitation.order_id, invitation.store_id, invitation.stage) == (
        "S1",
        "st-1",
        "after_purchase",
    )


def test_a_link_answers_once_and_refuses_forgeries_and_expiry(db) -> None:
    # given an invitation and its signed link
    clock = frozen_clock()
    make_survey(db)
    customer, _ = make_customer(db)
    invitation = service.invite(
        db,
        survey_id="nps-delivery",
        customer_id=customer,
        moment=service.Occasion(source_key="k", stage="manual"),
    ).invitation
    assert invitation is not None
    token = links.sign(invitation.invitation_id, secret=SECRET)
    # then a forged or re-signed token is refused
    with pytest.raises(links.ForgedLink):
        links.verify(token[:-2] + ("AA" if not token.endswith("AA") else "BB"), secret=SECRET)
    with pytest.raises(links.ForgedLink):
        links.verify(links.sign(invitation.invitation_id, secret="other"), secret=SECRET)
    assert links.verify(token, secret=SECRET) == invitation.invitation_id
    # when answered
    response = service.answer_invitation(
        db, invitation_id=invitation.invitation_id, score_value=9, comment=" Quick! "
    )
    assert (response.score, response.comment, response.stage) == (9, "Quick!", "manual")
    # then a second answer is refused
    with pytest.raises(service.AlreadyAnswered):
        service.answer_invitation(db, invitation_id=invitation.invitation_id, score_value=10)
    # and another invitation past its expiry is refused too
    clock.advance(timedelta(days=31))
    late = service.invite(
        db,
        survey_id="nps-delivery",
        customer_id=customer,
        moment=service.Occasion(source_key="k2", stage="manual"),
    ).invitation
    assert late is not None
    clock.advance(timedelta(days=14))
    with pytest.raises(service.LinkExpired):
        service.answer_invitation(db, invitation_id=late.invitation_id, score_value=5)


def test_scores_out_of_range_are_refused(db) -> None:
    frozen_clock()
    make_survey(db, survey_id="csat", kind="csat", trigger="manual")
    with pytest.raises(InvalidInput):
        service.record_response(db, response=ResponseIn(survey_id="csat", score=6))


def test_a_detractor_opens_a_complaint_ticket(db) -> None:
    frozen_clock()
    make_survey(db)
    customer, external = make_customer(db)
    order = delivered_order(db, external_id=external, days_late=5)
    # when a detractor answers
    response = service.record_response(
        db,
        response=ResponseIn(
            survey_id="nps-delivery",
            customer_id=customer,
            order_id=order,
            score=3,
            comment="Five days late",
        ),
    )
    promoter = service.record_response(
        db, response=ResponseIn(survey_id="nps-delivery", customer_id=customer, score=9)
    )
    # then one ticket is opened for the detractor, linked both ways
    tickets = list(db.scalars(select(Ticket)))
    assert len(tickets) == 1
    assert tickets[0].ticket_id == response.ticket_id
    assert (tickets[0].kind, tickets[0].channel, tickets[0].response_id) == (
        "complaint",
        "survey",
        response.response_id,
    )
    assert tickets[0].subject == "NPS 3 from NPS after delivery"
    assert response.signals == {"days_late": 5, "first_purchase": True}
    assert promoter.ticket_id is None


def _answers(db, survey_id: str, values: list[int], **fields) -> None:
    for value in values:
        service.record_response(db, response=ResponseIn(survey_id=survey_id, score=value, **fields))


def test_scores_break_down_by_store_and_trend_by_month(db) -> None:
    clock = frozen_clock()
    make_survey(db, trigger="manual")
    _answers(db, "nps-delivery", [10, 9, 3], store_id="st-1", channel="store")
    _answers(db, "nps-delivery", [10, 10], channel="web")
    clock.advance(timedelta(days=31))
    _answers(db, "nps-delivery", [0, 7], channel="web")
    by_store = {
        k.key: (k.score.n, k.score.value) for k in service.scores_by(db, kind="nps", by="store")
    }
    assert by_store == {"st-1": (3, pytest.approx(100 / 3)), "(none)": (4, 25.0)}
    trend = [(k.key, k.score.n, k.score.value) for k in service.trend(db, kind="nps")]
    assert trend == [("2026-03", 5, pytest.approx(60.0)), ("2026-04", 2, -50.0)]


def test_a_score_below_its_target_raises_one_alert_a_day(db) -> None:
    # given a store whose NPS target is 40 and whose last answers give 0
    frozen_clock()
    make_survey(db, trigger="manual")
    in_stores(db, "st-1")
    service.set_target(
        db,
        target=TargetIn(kind="nps", scope="store", scope_value="st-1", target=40, min_responses=4),
    )
    service.set_target(db, target=TargetIn(kind="nps", scope="all", target=-50, min_responses=1))
    _answers(db, "nps-delivery", [10, 9, 3, 2], store_id="st-1")
    # when the targets are checked twice the same day
    first = service.check_targets(db)
    second = service.check_targets(db)
    # then the store alert is raised once, the business-wide target is met
    assert [(a.score, a.responses) for a in first] == [(0.0, 4)]
    assert second == []
    statuses = {(s.target.scope, s.target.scope_value): s.below for s in service.target_status(db)}
    assert statuses == {("store", "st-1"): True, ("all", ""): False}


def test_moments_of_truth_measure_late_deliveries(db) -> None:
    frozen_clock()
    make_survey(db, trigger="manual")
    customer, external = make_customer(db)
    answers = [(0, 10), (0, 9), (0, 10), (0, 8), (4, 2), (4, 6), (5, 3), (1, 9)]
    for day, (days_late, score) in enumerate(answers):
        order = delivered_order(
            db,
            external_id=external,
            days_late=days_late,
            placed_at=T0 - timedelta(days=30 - day),
        )
        service.record_response(
            db,
            response=ResponseIn(
                survey_id="nps-delivery", customer_id=customer, order_id=order, score=score
            ),
        )
    found = {m.label: m for m in service.moments(db, kind="nps")}
    late = found["Delivered late"]
    # on time: 3 promoters + 1 passive = 75; late: 1 promoter, 3 detractors = -50
    assert (late.difference.n_a, late.difference.n_b) == (4, 4)
    assert late.difference.effect == pytest.approx(-125.0)
    # Welch: se = sqrt(10000/4 + 2500/4), about 4.4 degrees of freedom: not significant yet;
    # its low end, -274.63, is past what a difference of two NPS can be, so it is -200
    assert late.difference.low == -200.0
    assert late.difference.high == pytest.approx(24.63, abs=0.01)
    # while each day late costs about 41 NPS points in this small set, clearly below zero
    assert late.slope is not None
    assert late.slope.per_unit == pytest.approx(-41.04, abs=0.01)
    assert late.slope.high is not None
    assert late.slope.high < 0
    assert found["Late by 3-5 days"].difference.effect == pytest.approx(-175.0)
    # the first order of all is the first purchase (a promoter: 100 against 0 for the rest)
    first = found["First purchase"].difference
    assert (first.n_a, first.n_b, first.effect) == (1, 7, pytest.approx(100 - 0.0))


def test_comment_themes_per_period_in_the_customers_language(db) -> None:
    frozen_clock()
    make_survey(db, trigger="manual")
    for comment in ["Delivery was late again", "Late delivery, no update", "Friendly courier"]:
        service.record_response(
            db, response=ResponseIn(survey_id="nps-delivery", score=4, comment=comment)
        )
    service.record_response(
        db,
        response=ResponseIn(
            survey_id="nps-delivery", score=2, comment="Entrega atrasada", locale="pt"
        ),
    )
    themes = service.comment_themes(db, per_period=2)
    assert [(t.locale, t.phrase, t.mentions) for t in themes] == [
        ("en", "delivery", 2),
        ("en", "late", 2),
        ("pt", "atrasada", 1),
        ("pt", "entrega", 1),
    ]
    assert themes[0].mean_value == -100.0


def test_moments_older_than_a_links_life_are_not_asked_about(db) -> None:
    # given a delivery event from three weeks ago (links live 14 days)
    frozen_clock()
    make_survey(db)
    customer, external = make_customer(db)
    order = delivered_order(db, external_id=external)
    event = tracked(
        db,
        type="order_delivered",
        channel="web",
        customer_id=customer,
        occurred_at=T0 - timedelta(days=21),
        properties={"order_id": order},
    )
    db.flush()
    # when it is processed
    service.process_feedback_events(db, [event])
    # then nobody is invited
    assert _invitations(db, customer) == []
