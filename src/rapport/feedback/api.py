"""Feedback endpoints: survey definitions and answers, scores with intervals, moments of
truth and comment themes, targets, reviews and their moderation, rating summaries, tickets;
and the public survey page reached by a signed one-time link (no login, no API key)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.feedback import service
from rapport.feedback.models import Invitation
from rapport.feedback.schemas import (
    AnswerIn,
    InvitationIn,
    InvitationOut,
    Kind,
    ModerationIn,
    RatingSummaryOut,
    ResolveIn,
    ResponseIn,
    ResponseOut,
    ReviewIn,
    ReviewOut,
    ScoreOut,
    SurveyIn,
    SurveyOut,
    TargetIn,
    TargetOut,
    TicketIn,
    TicketOut,
)
from rapport.feedback.scores.arithmetic import Score
from rapport.feedback.surveys import links
from rapport.platform import clock
from rapport.platform.auth import ReadKey, WriteKey
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput, NotFound, Problem
from rapport.platform.idempotency import BeforeCommit, IdempotencyKey, run_idempotent
from rapport.platform.ids import new_id
from rapport.platform.schemas import QueryDate
from rapport.platform.settings import AppSettings

api = APIRouter(prefix="/v1/feedback", tags=["feedback"])
public = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

Since = Annotated[QueryDate | None, Query(description="First day (UTC) included")]
Until = Annotated[QueryDate | None, Query(description="First day (UTC) no longer included")]


_Body = TypeVar("_Body", ResponseIn, ReviewIn, TicketIn)


def _with_customer_resolved(db: Session, body: _Body, *, unknown_stays: bool = False) -> _Body:
    """``body`` naming the customer by Rapport's id, whichever id it was sent with. Resolved
    inside the command, after the Idempotency-Key is claimed (whose fingerprint is the body
    as sent), so a retry is answered as before. A review may come from someone Rapport does
    not know (``unknown_stays``): that reviewer is not counted as a customer, as before."""
    if body.customer_id is None:
        return body
    if unknown_stays:
        found = customers.find_customer_ref(db, ref=body.customer_id) or body.customer_id
    else:
        found = customers.resolve_customer_ref(db, ref=body.customer_id)
    return body.model_copy(update={"customer_id": found})


def _start(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), tzinfo=UTC) if day is not None else None


def _window(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """The [since, until) window of a report; 422 naming ``until`` when it is not after
    ``since``, as every report of the API says (an empty list would read as no answers)."""
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until must be after since", field="until")
    return _start(since), _start(until)


def _score_out(key: str, score: Score) -> ScoreOut:
    def rounded(value: float | None) -> float | None:
        return round(value, 2) if value is not None else None

    return ScoreOut(
        key=key,
        n=score.n,
        value=rounded(score.value),
        low=rounded(score.low),
        high=rounded(score.high),
        promoters=rounded(score.promoters),
        passives=rounded(score.passives),
        detractors=rounded(score.detractors),
    )


# ------------------------------------------------------------------------------ surveys


@api.post("/surveys", response_model=SurveyOut)
def save_survey(
    body: SurveyIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Create or replace a survey: its kind, trigger, sampling, fatigue rule and wording."""
    return run_idempotent(
        db,
        scope=f"feedback.survey:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.save_survey(db, survey=body, before_commit=hook),
        render=lambda row: SurveyOut.model_validate(row).model_dump(mode="json"),
    )


@api.get("/surveys", response_model=list[SurveyOut])
def list_surveys(db: DbSession, key: ReadKey) -> Any:
    """Every survey definition."""
    return service.list_surveys(db)


def _invitation_out(
    invitation: Invitation | None, invited: bool, reason: str, secret: str
) -> InvitationOut:
    if invitation is None:
        return InvitationOut(invitation_id=None, invited=invited, reason=reason)
    return InvitationOut(
        invitation_id=invitation.invitation_id,
        invited=invited,
        reason=reason,
        link=links.path(invitation.invitation_id, secret=secret),
        expires_at=invitation.expires_at,
    )


@api.post("/surveys/{survey_id}/invitations", response_model=InvitationOut)
def invite(
    survey_id: str,
    body: InvitationIn,
    db: DbSession,
    key: WriteKey,
    settings: AppSettings,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Ask a customer this survey now. Consent, sampling and the fatigue rule still apply;
    the answer says whether they were invited and why not, and carries the signed link."""

    def execute(hook: BeforeCommit) -> Any:
        signals = service.order_signals(db, order_id=body.order_id) if body.order_id else {}
        return service.invite(
            db,
            survey_id=survey_id,
            customer_id=customers.resolve_customer_ref(db, ref=body.customer_id),
            moment=service.Occasion(
                # One invitation per order; other manual invitations are each their own moment.
                source_key=f"manual:{body.order_id}" if body.order_id else new_id("manual"),
                stage="manual",
                channel=body.channel,
                store_id=body.store_id,
                order_id=body.order_id,
                signals=signals,
            ),
            before_commit=hook,
        )

    return run_idempotent(
        db,
        scope=f"feedback.invitation:{key.id}",
        key=idempotency_key,
        request_body={"survey_id": survey_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_200_OK,
        execute=execute,
        render=lambda decision: _invitation_out(
            decision.invitation, decision.invited, decision.reason, settings.session_secret()
        ).model_dump(mode="json"),
    )


@api.post(
    "/invitations/{invitation_id}/answer",
    status_code=status.HTTP_201_CREATED,
    response_model=ResponseOut,
)
def answer(
    invitation_id: str,
    body: AnswerIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Answer an invitation (once). A detractor's answer opens a ticket."""
    return run_idempotent(
        db,
        scope=f"feedback.answer:{key.id}",
        key=idempotency_key,
        request_body={"invitation_id": invitation_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: service.answer_invitation(
            db,
            invitation_id=invitation_id,
            score_value=body.score,
            comment=body.comment,
            answers=body.answers,
            before_commit=hook,
        ),
        render=lambda row: ResponseOut.model_validate(row).model_dump(mode="json"),
    )


@api.post("/responses", status_code=status.HTTP_201_CREATED, response_model=ResponseOut)
def record_response(
    body: ResponseIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Record an answer given without an invitation (kiosk, app, till tablet)."""
    return run_idempotent(
        db,
        scope=f"feedback.respond:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: service.record_response(
            db, response=_with_customer_resolved(db, body), before_commit=hook
        ),
        render=lambda row: ResponseOut.model_validate(row).model_dump(mode="json"),
    )


# ------------------------------------------------------------------------------- scores


@api.get("/scores", response_model=list[ScoreOut])
def scores(
    db: DbSession,
    key: ReadKey,
    kind: Kind = "nps",
    by: Literal["all", "channel", "store", "stage", "tier", "survey"] = "all",
    since: Since = None,
    until: Until = None,
) -> Any:
    """The score with its 95% interval and sample size, overall or per group."""
    start, end = _window(since, until)
    if by == "all":
        return [_score_out("all", service.overall_score(db, kind=kind, since=start, until=end))]
    return [
        _score_out(k.key, k.score)
        for k in service.scores_by(db, kind=kind, by=by, since=start, until=end)
    ]


@api.get("/scores/trend", response_model=list[ScoreOut])
def score_trend(
    db: DbSession,
    key: ReadKey,
    kind: Kind = "nps",
    period: Literal["month", "week", "day"] = "month",
    since: Since = None,
    until: Until = None,
) -> Any:
    """The score per period, oldest first, each with its interval."""
    start, end = _window(since, until)
    return [
        _score_out(k.key, k.score)
        for k in service.trend(db, kind=kind, period=period, since=start, until=end)
    ]


@api.get("/moments")
def moments(
    db: DbSession, key: ReadKey, kind: Kind = "nps", since: Since = None, until: Until = None
) -> list[dict[str, Any]]:
    """How much each experience signal moves the score, with 95% intervals."""
    start, end = _window(since, until)
    found = service.moments(db, kind=kind, since=start, until=end)
    return [
        {
            "signal": m.signal,
            "label": m.label,
            "baseline": m.baseline,
            "n": m.difference.n_a,
            "n_baseline": m.difference.n_b,
            "effect": m.difference.effect,
            "low": m.difference.low,
            "high": m.difference.high,
            "per_unit": m.slope.per_unit if m.slope else None,
            "per_unit_low": m.slope.low if m.slope else None,
            "per_unit_high": m.slope.high if m.slope else None,
            "unit": m.unit,
        }
        for m in found
    ]


@api.get("/themes")
def themes(
    db: DbSession,
    key: ReadKey,
    period: Literal["month", "week"] = "month",
    since: Since = None,
    until: Until = None,
    kind: Kind | None = None,
) -> list[dict[str, Any]]:
    """The words and phrases that stand out in each period's comments, per language, with the
    share of unhappy answers among the comments that mention each (NPS 0-6, CSAT 1-2, CES
    1-2); ``mean_value`` is the answers' mean value when they are all of one ``kind`` (ask
    ``kind`` for one kind of survey), else null."""
    start, end = _window(since, until)
    found = service.comment_themes(db, since=start, until=end, period=period, kind=kind)
    return [
        {
            "period": t.period,
            "locale": t.locale,
            "phrase": t.phrase,
            "mentions": t.mentions,
            "kind": t.kind,
            "mean_value": round(t.mean_value, 1) if t.mean_value is not None else None,
            "unhappy_share": round(t.unhappy_share, 1),
        }
        for t in found
    ]


def _target_out(status_: service.TargetStatus) -> TargetOut:
    target = status_.target
    return TargetOut(
        id=target.id,
        kind=target.kind,
        scope=target.scope,
        scope_value=target.scope_value,
        target=target.target,
        window_days=target.window_days,
        score=_score_out(target.scope_value or "all", status_.score),
        below=status_.below,
        state=status_.state,
    )


@api.put("/targets", response_model=TargetOut)
def set_target(body: TargetIn, db: DbSession, key: WriteKey) -> Any:
    """Set the target of a score for the business, a store or a channel."""
    row = service.set_target(db, target=body)
    found = [s for s in service.target_status(db) if s.target.id == row.id]
    return _target_out(found[0])


@api.get("/targets", response_model=list[TargetOut])
def list_targets(db: DbSession, key: ReadKey) -> Any:
    """Every target with the score over its window and whether it is below."""
    return [_target_out(s) for s in service.target_status(db)]


# ------------------------------------------------------------------------------ reviews


@api.post("/reviews", status_code=status.HTTP_201_CREATED, response_model=ReviewOut)
def submit_review(
    body: ReviewIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Submit a review: published at once, or held for moderation with the reasons."""
    return run_idempotent(
        db,
        scope=f"feedback.review:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: service.submit_review(
            db, review=_with_customer_resolved(db, body, unknown_stays=True), before_commit=hook
        ),
        render=lambda row: ReviewOut.model_validate(row).model_dump(mode="json"),
    )


@api.get("/reviews/queue", response_model=list[ReviewOut])
def moderation_queue(
    db: DbSession, key: ReadKey, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Any:
    """Reviews held by screening, oldest first, with the reasons."""
    return service.moderation_queue(db, limit=limit)


@api.post("/reviews/{review_id}/moderation", response_model=ReviewOut)
def moderate(
    review_id: str,
    body: ModerationIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Publish or reject a review."""
    return run_idempotent(
        db,
        scope=f"feedback.moderation:{key.id}",
        key=idempotency_key,
        request_body={"review_id": review_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.moderate_review(
            db,
            review_id=review_id,
            decision=body.decision,
            moderator=f"api:{key.name}",
            before_commit=hook,
        ),
        render=lambda review: ReviewOut.model_validate(review).model_dump(mode="json"),
    )


@api.get("/products/{sku}/rating", response_model=RatingSummaryOut)
def rating(sku: str, db: DbSession, key: ReadKey) -> Any:
    """The product's published-review summary (social proof)."""
    summary = service.rating_summary(db, sku=sku)
    return RatingSummaryOut(
        sku=summary.sku,
        reviews=summary.reviews,
        verified=summary.verified,
        average=summary.average,
        weighted=summary.weighted,
        distribution=summary.distribution,
    )


@api.get("/products/{sku}/reviews", response_model=list[ReviewOut])
def product_reviews(
    sku: str, db: DbSession, key: ReadKey, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> Any:
    """Published reviews of a product, verified first; one whose author was erased is listed
    as "removed at the reviewer's request", with no text (its rating still counts)."""
    reviews = service.product_reviews(db, sku=sku, limit=limit)
    removed = service.removed_at_request(db, reviews)
    return [
        ReviewOut.model_validate(r).model_copy(
            update={"removed": service.REMOVED_AT_REQUEST if r.review_id in removed else None}
        )
        for r in reviews
    ]


# ------------------------------------------------------------------------------ tickets


@api.post("/tickets", status_code=status.HTTP_201_CREATED, response_model=TicketOut)
def open_ticket(
    body: TicketIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Open a ticket from any channel; priority and SLA due time are set from the issue,
    the customer's tier and their value."""
    return run_idempotent(
        db,
        scope=f"feedback.ticket:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: service.open_ticket(
            db,
            ticket=_with_customer_resolved(db, body),
            opened_by=f"api:{key.name}",
            before_commit=hook,
        ),
        render=lambda row: TicketOut.model_validate(row).model_dump(mode="json"),
    )


@api.get("/tickets", response_model=list[TicketOut])
def ticket_queue(
    db: DbSession, key: ReadKey, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Any:
    """Open tickets, most urgent first (priority, then SLA due time)."""
    return service.ticket_queue(db, limit=limit)


@api.post("/tickets/{ticket_id}/resolve", response_model=TicketOut)
def resolve_ticket(
    ticket_id: str,
    body: ResolveIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Resolve a ticket, granting apology points through the loyalty ledger if asked."""
    return run_idempotent(
        db,
        scope=f"feedback.resolve:{key.id}",
        key=idempotency_key,
        request_body={"ticket_id": ticket_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.resolve_ticket(
            db,
            ticket_id=ticket_id,
            resolution=body.resolution,
            resolved_by=f"api:{key.name}",
            apology_points=body.apology_points,
            before_commit=hook,
        ),
        render=lambda row: TicketOut.model_validate(row).model_dump(mode="json"),
    )


@api.get("/tickets/sla")
def sla_report(db: DbSession, key: ReadKey, since: Since = None) -> list[dict[str, Any]]:
    """Tickets, resolutions in time and SLA breaches per issue and support level."""
    return [
        {
            "key": line.key,
            "tickets": line.tickets,
            "resolved": line.resolved,
            "resolved_in_time": line.resolved_in_time,
            "breached": line.breached,
            "open_overdue": line.open_overdue,
        }
        for line in service.sla_report(db, since=_start(since))
    ]


# ------------------------------------------------------------------ public survey page


def _page(
    request: Request,
    db: Session,
    *,
    state: str,
    status_code: int = 200,
    invitation: Invitation | None = None,
    **context: Any,
) -> HTMLResponse:
    survey, labels, questions, locale = None, {}, [], "en"
    if invitation is not None:
        locale = invitation.locale
        survey = service.get_survey(db, survey_id=invitation.survey_id)
        if survey is not None:
            labels = service.labels_for(survey, locale)
            questions = [
                {"id": q["id"], "text": service.question_text(q, locale)} for q in survey.questions
            ]
    return templates.TemplateResponse(
        request,
        "feedback/survey_page.html",
        {
            "state": state,
            "survey": survey,
            "labels": labels,
            "questions": questions,
            "locale": locale.split("-")[0],
            "text": _PAGE_TEXT.get(locale.split("-")[0], _PAGE_TEXT["en"]),
            **context,
        },
        status_code=status_code,
    )


_PAGE_TEXT = {
    "en": {
        "send": "Send",
        "thanks": "Thank you! Your answer has been recorded.",
        "answered": "This survey has already been answered. Thank you!",
        "expired": "This survey link has expired.",
        "withdrawn": "This survey is no longer open. Thank you all the same.",
        "invalid": "This survey link is not valid.",
        "pick": "Please choose a score.",
    },
    "fr": {
        "send": "Envoyer",
        "thanks": "Merci ! Votre réponse a été enregistrée.",
        "answered": "Vous avez déjà répondu à ce questionnaire. Merci !",
        "expired": "Ce lien a expiré.",
        "withdrawn": "Ce questionnaire n'est plus ouvert. Merci tout de même.",
        "invalid": "Ce lien n'est pas valide.",
        "pick": "Merci de choisir une note.",
    },
    "de": {
        "send": "Senden",
        "thanks": "Vielen Dank! Ihre Antwort wurde gespeichert.",
        "answered": "Diese Umfrage wurde bereits beantwortet. Vielen Dank!",
        "expired": "Dieser Link ist abgelaufen.",
        "withdrawn": "Diese Umfrage ist nicht mehr geöffnet. Trotzdem vielen Dank.",
        "invalid": "Dieser Link ist ungültig.",
        "pick": "Bitte wählen Sie eine Bewertung.",
    },
    "pt": {
        "send": "Enviar",
        "thanks": "Obrigado! Sua resposta foi registrada.",
        "answered": "Esta pesquisa já foi respondida. Obrigado!",
        "expired": "Este link expirou.",
        "withdrawn": "Esta pesquisa não está mais aberta. Obrigado mesmo assim.",
        "invalid": "Este link não é válido.",
        "pick": "Escolha uma nota.",
    },
}


def _open_invitation(
    request: Request, db: Session, token: str, secret: str
) -> tuple[Invitation | None, HTMLResponse | None]:
    try:
        invitation_id = links.verify(token, secret=secret)
    except links.ForgedLink:
        return None, _page(request, db, state="invalid", status_code=404)
    invitation = service.get_invitation(db, invitation_id=invitation_id)
    if invitation is None:
        return None, _page(request, db, state="invalid", status_code=404)
    if invitation.answered_at is not None:
        return invitation, _page(
            request, db, state="answered", invitation=invitation, status_code=409
        )
    if clock.now() >= clock.as_utc(invitation.expires_at):
        return invitation, _page(
            request, db, state="expired", invitation=invitation, status_code=410
        )
    if invitation.withdrawn_at is not None:
        return invitation, _page(
            request, db, state="withdrawn", invitation=invitation, status_code=410
        )
    return invitation, None


@public.get("/s/{token}", response_class=HTMLResponse)
def survey_page(token: str, request: Request, db: DbSession, settings: AppSettings) -> Any:
    """The survey, in the customer's language; refuses forged, expired, withdrawn and used
    links."""
    invitation, refusal = _open_invitation(request, db, token, settings.session_secret())
    if refusal is not None:
        return refusal
    scale = range(0, 11)
    if invitation is not None:
        survey = service.get_survey(db, survey_id=invitation.survey_id)
        if survey is not None:
            low, high = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}[survey.kind]
            scale = range(low, high + 1)
    return _page(request, db, state="form", invitation=invitation, scale=list(scale), token=token)


@public.post("/s/{token}", response_class=HTMLResponse)
async def submit_survey_page(
    token: str, request: Request, db: DbSession, settings: AppSettings
) -> Any:
    """The answer from the survey page (a plain form post, so it works without scripts)."""
    form = await request.form()
    invitation, refusal = _open_invitation(request, db, token, settings.session_secret())
    if refusal is not None:
        return refusal
    assert invitation is not None
    raw = form.get("score")
    try:
        value = int(str(raw))
    except ValueError:
        value = -1
    answers = {
        str(name)[2:]: str(text)
        for name, text in form.multi_items()
        if str(name).startswith("q_") and isinstance(text, str)
    }
    comment = form.get("comment")
    try:
        service.answer_invitation(
            db,
            invitation_id=invitation.invitation_id,
            score_value=value,
            comment=str(comment)[:2000] if isinstance(comment, str) else None,
            answers=answers,
        )
    except InvalidInput:
        survey = service.get_survey(db, survey_id=invitation.survey_id)
        low, high = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}[
            survey.kind if survey else "nps"
        ]
        return _page(
            request,
            db,
            state="form",
            invitation=invitation,
            scale=list(range(low, high + 1)),
            token=token,
            error=True,
            status_code=422,
        )
    except (NotFound, Problem):
        db.rollback()
        return _page(request, db, state="answered", invitation=invitation, status_code=409)
    return _page(request, db, state="thanks", invitation=invitation)


router = APIRouter()
router.include_router(api)
router.include_router(public)
