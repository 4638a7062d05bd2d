"""Feedback endpoints and the public survey page: scopes, problem+json, idempotency, and
links that answer once and refuse forgeries and expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from rapport.feedback.models import Invitation, Review, SurveyResponse
from tests.conftest import auth, command
from tests.feedback.factories import (
    delivered_order,
    frozen_clock,
    in_catalogue,
    make_customer,
)

SURVEY = {
    "survey_id": "csat-visit",
    "name": "CSAT after a visit",
    "kind": "csat",
    "trigger": "after_store_visit",
    "questions": [{"id": "staff", "labels": {"en": "How was our staff?", "fr": "Et l'accueil ?"}}],
}


def _invite(client, key: str, customer_id: str) -> dict:
    response = client.post(
        "/v1/feedback/surveys/csat-visit/invitations",
        json={"customer_id": customer_id, "store_id": "st-1", "channel": "store"},
        headers=command(key),
    )
    assert response.status_code == 200
    return response.json()


def test_survey_scores_and_scope_checks(client, api_key, db) -> None:
    frozen_clock()
    reader, writer = api_key("read"), api_key("write")
    # a read key cannot define surveys
    refused = client.post("/v1/feedback/surveys", json=SURVEY, headers=command(reader))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert (
        client.post("/v1/feedback/surveys", json=SURVEY, headers=command(writer)).status_code == 200
    )
    for score in (5, 4, 2):
        created = client.post(
            "/v1/feedback/responses",
            json={"survey_id": "csat-visit", "score": score, "store_id": "st-1"},
            headers=command(writer),
        )
        assert created.status_code == 201
    scores = client.get("/v1/feedback/scores?kind=csat&by=store", headers=auth(reader)).json()
    assert [(s["key"], s["n"], s["value"]) for s in scores] == [("st-1", 3, 66.67)]
    assert scores[0]["low"] == 20.77
    assert scores[0]["high"] == 93.85
    # the 2 opened a ticket, visible in the queue
    queue = client.get("/v1/feedback/tickets", headers=auth(reader)).json()
    assert [t["subject"] for t in queue] == ["CSAT 2 from CSAT after a visit"]
    bad = client.post(
        "/v1/feedback/responses",
        json={"survey_id": "csat-visit", "score": 9},
        headers=command(writer),
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "score"


def test_a_ticket_command_is_idempotent(client, api_key) -> None:
    key = api_key("write", "read")
    body = {"kind": "question", "channel": "email", "subject": "Where is my parcel?"}
    headers = {**auth(key), "Idempotency-Key": "t-1"}
    first = client.post("/v1/feedback/tickets", json=body, headers=headers)
    again = client.post("/v1/feedback/tickets", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["ticket_id"] == first.json()["ticket_id"]
    assert len(client.get("/v1/feedback/tickets", headers=auth(key)).json()) == 1


def test_the_public_page_answers_once_in_the_customers_language(client, api_key, db) -> None:
    # given a French customer invited to a survey
    clock = frozen_clock()
    key = api_key("write", "read")
    client.post("/v1/feedback/surveys", json=SURVEY, headers=command(key))
    customer, _ = make_customer(db, locale="fr")
    invitation = _invite(client, key, customer)
    assert invitation["invited"] is True
    link = invitation["link"]
    # when the page opens: no login, in French, with the 1-5 scale and the extra question
    page = client.get(link)
    assert page.status_code == 200
    assert "Êtes-vous satisfait de votre expérience ?" in page.text
    assert "Et l&#39;accueil ?" in page.text
    assert page.text.count('name="score"') == 5
    # and an answer is posted
    sent = client.post(link, data={"score": "4", "comment": "Très bien", "q_staff": "Super"})
    assert sent.status_code == 200
    assert "Merci ! Votre réponse a été enregistrée." in sent.text
    scores = client.get("/v1/feedback/scores?kind=csat", headers=auth(key)).json()
    assert scores[0]["n"] == 1
    # then a second answer, a forged link and an expired one are refused
    assert client.post(link, data={"score": "1"}).status_code == 409
    assert client.get(link).status_code == 409
    forged = link[:-3] + ("xyz" if not link.endswith("xyz") else "abc")
    assert client.get(forged).status_code == 404
    assert client.get("/s/made-up").status_code == 404
    clock.advance(timedelta(days=31))
    other = _invite(client, key, customer)
    clock.advance(timedelta(days=15))
    assert client.get(other["link"]).status_code == 410
    assert client.post(other["link"], data={"score": "5"}).status_code == 410
    scores = client.get("/v1/feedback/scores?kind=csat", headers=auth(key)).json()
    assert scores[0]["n"] == 1


def test_an_answer_out_of_range_shows_the_form_again(client, api_key, db) -> None:
    frozen_clock()
    key = api_key("write")
    client.post("/v1/feedback/surveys", json=SURVEY, headers=command(key))
    customer, _ = make_customer(db)
    link = _invite(client, key, customer)["link"]
    refused = client.post(link, data={"score": "9"})
    assert refused.status_code == 422
    assert "Please choose a score." in refused.text
    assert client.post(link, data={"score": "5"}).status_code == 200


def test_reviews_moderation_and_rating_over_the_api(client, api_key, db) -> None:
    key = api_key("write", "read")
    in_catalogue(db, "SKU-9")
    held = client.post(
        "/v1/feedback/reviews",
        json={"customer_id": "cus_ghost", "sku": "SKU-9", "rating": 5, "text": "Great"},
        headers=command(key),
    )
    assert held.status_code == 201
    assert held.json()["status"] == "flagged"
    assert held.json()["reasons"] == [
        {"code": "not_a_customer", "detail": "The reviewer is not a known customer"}
    ]
    queue = client.get("/v1/feedback/reviews/queue", headers=auth(key)).json()
    assert [r["review_id"] for r in queue] == [held.json()["review_id"]]
    published = client.post(
        f"/v1/feedback/reviews/{held.json()['review_id']}/moderation",
        json={"decision": "publish"},
        headers=command(key),
    )
    assert published.json()["status"] == "published"
    rating = client.get("/v1/feedback/products/SKU-9/rating", headers=auth(key)).json()
    assert (rating["reviews"], rating["verified"], rating["average"]) == (1, 0, 5.0)
    missing = client.post(
        "/v1/feedback/reviews/rev_nope/moderation",
        json={"decision": "reject"},
        headers=command(key),
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"sku": "NOPE-SKU"}, "sku", id="a-product-nobody-sells"),
        pytest.param({"ip_address": "not-an-ip"}, "ip_address", id="an-address-that-is-none"),
    ],
)
def test_a_review_of_an_unknown_product_or_from_no_address_is_refused(
    client, api_key, db, overrides, field
) -> None:
    in_catalogue(db, "SKU-9")
    body = {"sku": "SKU-9", "rating": 5, "text": "Lovely", **overrides}
    response = client.post("/v1/feedback/reviews", json=body, headers=command(api_key("write")))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert db.scalars(select(Review)).all() == []
    # an IPv6 address is an address, and is kept only as its digest
    fine = {**body, "sku": "SKU-9", "ip_address": "2001:db8::7"}
    assert (
        client.post(
            "/v1/feedback/reviews", json=fine, headers=command(api_key("write"))
        ).status_code
        == 201
    )


@pytest.mark.parametrize("case", ["no such order", "another customer's", "theirs, no customer"])
def test_an_answer_names_only_the_customers_own_order(client, api_key, db, case: str) -> None:
    # given a CSAT survey, a customer with an order, and another customer with theirs
    frozen_clock()
    writer = api_key("write", "read")
    assert client.post("/v1/feedback/surveys", json=SURVEY, headers=command(writer)).is_success
    customer, external = make_customer(db)
    mine = delivered_order(db, external_id=external)
    _, other_external = make_customer(db)
    others = delivered_order(db, external_id=other_external)
    body = {"survey_id": "csat-visit", "score": 1, "comment": "Awful"}
    body |= {
        "no such order": {"customer_id": customer, "order_id": "NOPE-1"},
        "another customer's": {"customer_id": customer, "order_id": others},
        "theirs, no customer": {"order_id": mine},
    }[case]
    # when a detractor's answer without an invitation names that order
    answer = client.post("/v1/feedback/responses", json=body, headers=command(writer))
    # then it is 422 naming order_id, and neither the answer nor a ticket is recorded
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == "order_id"
    assert body["order_id"] in answer.json()["detail"]
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(SurveyResponse)) == 0
    assert client.get("/v1/feedback/tickets", headers=auth(writer)).json() == []
    # and naming their own order records it, its ticket keeping that order
    fine = {**body, "customer_id": customer, "order_id": mine}
    recorded = client.post("/v1/feedback/responses", json=fine, headers=command(writer))
    assert recorded.status_code == 201, recorded.text
    queue = client.get("/v1/feedback/tickets", headers=auth(writer)).json()
    assert [(t["ticket_id"], t["order_id"]) for t in queue] == [
        (recorded.json()["ticket_id"], mine)
    ]


@pytest.mark.parametrize("case", ["no such order", "another customer's"])
def test_an_invitation_names_only_the_customers_own_order(client, api_key, db, case: str) -> None:
    # given a CSAT survey, a customer with an order, and another customer with theirs
    frozen_clock()
    writer = api_key("write", "read")
    assert client.post("/v1/feedback/surveys", json=SURVEY, headers=command(writer)).is_success
    customer, external = make_customer(db)
    mine = delivered_order(db, external_id=external)
    _, other_external = make_customer(db)
    others = delivered_order(db, external_id=other_external)
    order_id = {"no such order": "NOPE-1", "another customer's": others}[case]
    # when the customer is asked the survey by hand about that order
    path = "/v1/feedback/surveys/csat-visit/invitations"
    body = {"customer_id": customer, "order_id": order_id}
    answer = client.post(path, json=body, headers=command(writer))
    # then it is 422 naming order_id, and nobody is invited (an answer would keep that order)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == "order_id"
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Invitation)) == 0
    # and about their own order they are invited
    asked = client.post(path, json={**body, "order_id": mine}, headers=command(writer))
    assert asked.json()["invited"] is True, asked.text
