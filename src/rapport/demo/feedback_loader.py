"""The demo retailer's measured experience: surveys and their answers (with the tickets
detractors open, most of them resolved), targets, reviews from history, a few suspicious new
reviews for the moderation queue, and some open tickets. Deterministic for a seed."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.demo.generator import DemoRetailer
from rapport.demo.loader import batched
from rapport.demo.records import SurveyAnswerRecord
from rapport.feedback import service as feedback
from rapport.feedback.service import ResponseIn, ReviewIn, SurveyIn, TargetIn, TicketIn
from rapport.platform import clock

DEMO_SURVEYS = (
    ("nps-delivery", "NPS after delivery", "nps", "after_delivery"),
    ("ces-purchase", "Effort after a purchase", "ces", "after_purchase"),
    ("csat-visit", "CSAT after a store visit", "csat", "after_store_visit"),
    ("csat-ticket", "CSAT after a ticket", "csat", "after_ticket_closed"),
)
_SURVEY_OF = {
    "after_delivery": "nps-delivery",
    "after_purchase": "ces-purchase",
    "after_store_visit": "csat-visit",
}


@dataclass(frozen=True)
class FeedbackSummary:
    answers: int
    reviews: int
    held_reviews: int
    open_tickets: int


def load_demo_feedback(db: Session, *, retailer: DemoRetailer, seed: int = 42) -> FeedbackSummary:
    """Load the generator's survey answers and reviews through ``feedback.service``. Safe
    to re-run: it does nothing when answers are already there."""
    for survey_id, name, kind, trigger in DEMO_SURVEYS:
        feedback.save_survey(
            db,
            survey=SurveyIn(
                survey_id=survey_id, name=name, kind=kind, trigger=trigger, sampling_rate=0.5
            ),
        )
    if feedback.overall_score(db, kind="nps").n or feedback.overall_score(db, kind="ces").n:
        return FeedbackSummary(0, 0, 0, 0)
    feedback.set_target(db, target=TargetIn(kind="nps", scope="all", target=30))
    feedback.set_target(db, target=TargetIn(kind="ces", scope="all", target=5.5))
    rng = random.Random(seed)
    end = clock.now()
    answers = reviews = 0
    try:
        for histories in batched(retailer.histories(), 500):
            ids = customers.customer_ids_by_external_id(
                db, external_ids=[h.customer.external_id for h in histories]
            )
            for history in histories:
                customer_id = ids.get(history.customer.external_id)
                for answer in history.survey_answers:
                    answers += _answer(db, answer, customer_id, history.customer.locale, rng, end)
            imported = [
                feedback.ImportedReview(
                    customer_id=ids.get(r.customer_external_id),
                    sku=r.sku,
                    rating=r.rating,
                    title=r.title,
                    text=r.text,
                    written_at=r.written_at,
                    order_id=r.order_id,
                    locale=h.customer.locale,
                )
                for h in histories
                for r in h.reviews
            ]
            reviews += feedback.import_reviews(db, reviews=imported)
    finally:
        clock.reset_clock()
    held = _suspicious_reviews(db, retailer)
    opened = _open_tickets(db, retailer, rng)
    return FeedbackSummary(answers, reviews, held, opened)


def _answer(
    db: Session,
    answer: SurveyAnswerRecord,
    customer_id: str | None,
    locale: str,
    rng: random.Random,
    end: datetime,
) -> int:
    survey_id = _SURVEY_OF.get(answer.trigger)
    if survey_id is None:
        return 0
    at = answer.answered_at
    clock.set_clock(clock.FrozenClock(at))
    response = feedback.record_response(
        db,
        response=ResponseIn(
            survey_id=survey_id,
            customer_id=customer_id,
            score=answer.score,
            comment=answer.comment,
            store_id=answer.store_id,
            order_id=answer.order_id,
            channel="store" if answer.store_id else "web",
            locale=locale if locale in ("en", "fr", "de", "pt") else "en",
            answered_at=at,
        ),
    )
    if response.ticket_id is not None:
        # Most complaints from the past were handled, a few of them late; the last days' wait.
        hours = rng.choice((2, 5, 9, 20, 30, 52))
        resolved_at = at + timedelta(hours=hours)
        if resolved_at < end - timedelta(days=2):
            clock.set_clock(clock.FrozenClock(resolved_at))
            points = 100 if rng.random() < 0.3 and customer_id else 0
            feedback.resolve_ticket(
                db,
                ticket_id=response.ticket_id,
                resolution="Called the customer back",
                resolved_by="demo",
                apology_points=points,
            )
    return 1


def _suspicious_reviews(db: Session, retailer: DemoRetailer) -> int:
    """A burst of copied five-star reviews from one device by someone who bought nothing,
    and a five-star review whose words say the opposite."""
    skus = [p.sku for p in retailer.products()[:4]]
    text = "Best product ever, amazing quality, buy it now from this shop, five stars!"
    held = 0
    for sku in skus[:3]:
        review = feedback.submit_review(
            db,
            review=ReviewIn(
                customer_id=None,
                sku=sku,
                rating=5,
                title="Amazing",
                text=text,
                device_id="demo-device-7f3a",
                ip_address="203.0.113.50",
            ),
        )
        held += review.status == "flagged"
    angry = feedback.submit_review(
        db,
        review=ReviewIn(
            customer_id=None,
            sku=skus[3],
            rating=5,
            title="Terrible",
            text="Terrible quality, it arrived broken and support was useless. A waste of money.",
        ),
    )
    held += angry.status == "flagged"
    return held


def _open_tickets(db: Session, retailer: DemoRetailer, rng: random.Random) -> int:
    """Tickets still open, from several channels: most from the last hours, a few waiting
    for days (past their target), over the last three weeks."""
    issues = [
        (
            "delivery_problem",
            "email",
            "My parcel has not arrived",
            2,
            "It was promised for Tuesday and the tracking still says 'in transit'.",
        ),
        (
            "return_problem",
            "call_center",
            "Refund not received for my return",
            1,
            "I returned the jacket in the shop two weeks ago and have no refund yet.",
        ),
        (
            "question",
            "web",
            "Can I change my delivery address?",
            0,
            "I will be away this week; can the parcel go to my office instead?",
        ),
        (
            "complaint",
            "store",
            "Rude answer at the till",
            0,
            "The cashier was dismissive when I asked about the member price.",
        ),
        (
            "delivery_problem",
            "app",
            "Parcel arrived damaged",
            0,
            "The box was crushed and two glasses are broken.",
        ),
        (
            "question",
            "email",
            "Do you ship to Switzerland?",
            0,
            "I would like to order a gift for my sister in Geneva.",
        ),
        (
            "delivery_problem",
            "call_center",
            "Parcel shows delivered but never came",
            6,
            "The carrier says it was left at the door; nothing was there.",
        ),
        (
            "return_problem",
            "email",
            "Return label does not work",
            12,
            "The carrier's site refuses the code on the label you sent.",
        ),
        (
            "delivery_problem",
            "web",
            "Still waiting, the tracking has not moved",
            19,
            "Nearly three weeks now, and nobody answers my emails.",
        ),
    ]
    sample = list(retailer.customers())[:200]
    ids = customers.customer_ids_by_external_id(db, external_ids=[c.external_id for c in sample])
    known = [ids[c.external_id] for c in sample if c.external_id in ids]
    opened = 0
    for kind, channel, subject, days_ago, body in issues:
        feedback.open_ticket(
            db,
            ticket=TicketIn(
                customer_id=rng.choice(known) if known else None,
                kind=kind,
                channel=channel,
                subject=subject,
                body=body,
            ),
            opened_at=clock.now() - timedelta(days=days_ago, hours=rng.randint(1, 30)),
        )
        opened += 1
    return opened
