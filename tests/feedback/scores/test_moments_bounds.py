"""A moment of truth's interval stays within the differences the scale allows: two NPS answers
against ten give Welch's interval of about ±1,300 points, shown as -200 to 200 (a difference
of two NPS cannot pass 200 either way), where it read '(-1343.0 to +1283.0)'."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.feedback import service
from rapport.feedback.schemas import ResponseIn
from rapport.feedback.scores import arithmetic
from tests.conftest import auth
from tests.feedback.factories import delivered_order, frozen_clock, make_customer, make_survey


def test_a_difference_is_clipped_to_the_scale() -> None:
    late = [-100.0, 100.0]
    on_time = [100.0] * 5 + [0.0] * 3 + [-100.0] * 2
    assert arithmetic.difference(late, on_time).low < -1000  # type: ignore[operator]
    for kind, widest in (("nps", 200), ("csat", 100), ("ces", 6)):
        clipped = arithmetic.difference(late, on_time, value_range=arithmetic.score_range(kind))
        assert (clipped.low, clipped.high) == (-widest, widest)
        assert clipped.effect == -30.0


def test_moments_over_the_api_stay_within_nps_points(
    client: TestClient, api_key, db: Session
) -> None:
    frozen_clock()
    make_survey(db, trigger="manual")
    for score, days_late in [(0, 4), (10, 4)] + [(10, 0)] * 5 + [(8, 0)] * 3 + [(2, 0)] * 2:
        customer_id, external = make_customer(db)
        order_id = delivered_order(db, external_id=external, days_late=days_late)
        answer = ResponseIn(
            survey_id="nps-delivery", score=score, customer_id=customer_id, order_id=order_id
        )
        service.record_response(db, response=answer)
    moments = client.get("/v1/feedback/moments?kind=nps", headers=auth(api_key("read"))).json()
    [late] = [m for m in moments if m["label"] == "Late by 3-5 days"]
    assert (late["n"], late["n_baseline"], late["effect"]) == (2, 10, -30.0)
    assert (late["low"], late["high"]) == (-200.0, 200.0)
    for moment in moments:
        if moment["low"] is not None:
            assert -200 <= moment["low"] <= moment["high"] <= 200
