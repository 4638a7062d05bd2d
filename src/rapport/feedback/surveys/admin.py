"""Admin pages for surveys: the list, a form with every setting of a survey (kind, trigger,
channel, sampling, fatigue, consent, link life, wording per language, follow-up questions),
validated inline, and a preview of the page the customer sees, drawn from the draft without
saving it (mounted by rapport.feedback.admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from rapport.feedback import service
from rapport.feedback.models import TRIGGERS
from rapport.feedback.schemas import SurveyIn
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    FormFields,
    redirect_saying,
    render,
    templates,
)
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem, pinpointed

router = APIRouter(prefix="/surveys", include_in_schema=False)

KIND_NAMES = {"nps": "NPS (0 to 10)", "csat": "CSAT (1 to 5)", "ces": "CES (1 to 7)"}
SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
TRIGGER_NAMES = {
    "after_delivery": "After a delivery",
    "after_store_visit": "After a store visit",
    "after_ticket_closed": "After a ticket is closed",
    "after_purchase": "After a purchase",
    "manual": "Only when asked (API, admin)",
}
# Invitations are emailed (campaigns' survey invitation), so email consent is the one asked.
PURPOSES = {"marketing_email": "Email consent (invitations are emailed)"}
LANGUAGES = {"en": "English", "fr": "French", "de": "German", "pt": "Portuguese"}
LABEL_PARTS = ("question", "comment", "low", "high")
QUESTION_SLOTS = 5
# What the preview frame may do: show the page and its stylesheet, nothing else.
PREVIEW_POLICY = (
    "default-src 'none'; style-src 'self'; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'self'"
)


def _languages(labels: dict[str, Any], questions: list[dict[str, Any]]) -> list[str]:
    found = list(LANGUAGES)
    for locale in [*labels, *(loc for q in questions for loc in q.get("labels", {}))]:
        if locale not in found:
            found.append(locale)
    return found


def values_of(survey: Any | None) -> dict[str, str]:
    """The form's fields for a stored survey (or a new NPS survey's defaults)."""
    if survey is None:
        labels: dict[str, Any] = service.DEFAULT_LABELS["nps"]
        questions: list[dict[str, Any]] = []
        values = {
            "survey_id": "",
            "name": "",
            "kind": "nps",
            "trigger": "after_delivery",
            "channel": "",
            "sampling_percent": "100",
            "fatigue_days": "30",
            "consent_purpose": "marketing_email",
            "link_days": "14",
            "active": "true",
        }
    else:
        labels = survey.labels or service.DEFAULT_LABELS[survey.kind]
        questions = list(survey.questions or [])
        values = {
            "survey_id": survey.survey_id,
            "name": survey.name,
            "kind": survey.kind,
            "trigger": survey.trigger,
            "channel": survey.channel or "",
            "sampling_percent": f"{survey.sampling_rate * 100:g}",
            "fatigue_days": str(survey.fatigue_days),
            "consent_purpose": survey.consent_purpose,
            "link_days": str(survey.link_days),
            "active": "true" if survey.active else "false",
        }
    for locale, wording in labels.items():
        for part in LABEL_PARTS:
            values[f"{locale}_{part}"] = str(wording.get(part, ""))
    for index, question in enumerate(questions):
        values[f"q{index}_id"] = str(question.get("id", ""))
        for locale, text in question.get("labels", {}).items():
            values[f"q{index}_{locale}"] = str(text)
    return values


def _locales_in(fields: dict[str, str]) -> list[str]:
    found = list(LANGUAGES)
    for name in fields:
        locale, sep, part = name.rpartition("_")
        if sep and part == "question" and locale and locale not in found:
            found.append(locale)
    return found


def wording_of(fields: dict[str, str], locale: str) -> dict[str, str]:
    """A language's wording on the form; left at another kind's default wording (the form
    opened as NPS, then the kind changed), it is the chosen kind's default instead."""
    wording = {part: fields.get(f"{locale}_{part}", "").strip() for part in LABEL_PARTS}
    kind = fields.get("kind", "")
    for other, defaults in service.DEFAULT_LABELS.items():
        if other != kind and kind in service.DEFAULT_LABELS and defaults.get(locale) == wording:
            return dict(service.DEFAULT_LABELS[kind].get(locale, wording))
    return wording


def survey_from_form(fields: dict[str, str]) -> tuple[SurveyIn | None, dict[str, str]]:
    """The draft survey the form describes, or the message per field where it is wrong."""
    errors: dict[str, str] = {}
    locales = _locales_in(fields)
    labels: dict[str, dict[str, str]] = {}
    for locale in locales:
        wording = wording_of(fields, locale)
        if not any(wording.values()):
            continue
        if not wording["question"]:
            errors[f"{locale}_question"] = "Write the question, or clear this language"
        labels[locale] = wording
    if not labels:
        errors["en_question"] = "Write the question in at least one language"
    questions = []
    for index in range(QUESTION_SLOTS):
        question_id = fields.get(f"q{index}_id", "").strip()
        texts = {
            locale: fields.get(f"q{index}_{locale}", "").strip()
            for locale in locales
            if fields.get(f"q{index}_{locale}", "").strip()
        }
        if not question_id and not texts:
            continue
        if not question_id:
            errors[f"q{index}_id"] = "Name the question (letters, digits, _)"
        if not texts:
            errors[f"q{index}_id"] = "Write the question in at least one language"
        questions.append({"id": question_id, "labels": texts})
    percent_text = fields.get("sampling_percent", "").strip() or "100"
    try:
        sampling = float(percent_text.replace(",", ".")) / 100
    except ValueError:
        errors["sampling_percent"] = "A percentage from 0 to 100"
        sampling = 1.0
    days: dict[str, int] = {}
    for name, default in (("fatigue_days", 30), ("link_days", 14)):
        text = fields.get(name, "").strip()
        try:
            days[name] = int(text) if text else default
        except ValueError:
            errors[name] = _message(name, "")
            days[name] = default
    document: dict[str, Any] = {
        "survey_id": fields.get("survey_id", "").strip(),
        "name": fields.get("name", "").strip(),
        "kind": fields.get("kind", ""),
        "trigger": fields.get("trigger", ""),
        "channel": fields.get("channel", "").strip() or None,
        "sampling_rate": sampling,
        "fatigue_days": days["fatigue_days"],
        "consent_purpose": fields.get("consent_purpose", "marketing_email"),
        "link_days": days["link_days"],
        "labels": labels,
        "questions": questions,
        "active": fields.get("active") == "true",
    }
    try:
        survey = SurveyIn.model_validate(document)
    except ValidationError as failure:
        for detail in failure.errors(include_url=False, include_input=False):
            loc, message = pinpointed(detail)
            name = _field_of(loc)
            errors.setdefault(name, _message(name, message))
        return None, errors
    if survey.channel is not None and survey.trigger != "after_purchase":
        errors["channel"] = "Only surveys after a purchase are limited to a channel"
    return (None, errors) if errors else (survey, errors)


def _field_of(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "survey_id"
    if loc[0] == "labels" and len(loc) >= 3:
        return f"{loc[1]}_{loc[2]}"
    if loc[0] == "labels" and len(loc) == 2:
        return "en_question"
    if loc[0] == "questions" and len(loc) >= 2:
        return f"q{loc[1]}_id"
    if loc[0] == "sampling_rate":
        return "sampling_percent"
    return str(loc[0])


def _message(name: str, pydantic_message: str) -> str:
    known = {
        "survey_id": "Lower-case letters, digits, - and _ (up to 60), starting with a letter",
        "name": "Give the survey a name (up to 200 characters)",
        "sampling_percent": "A percentage from 0 to 100",
        "fatigue_days": "A number of days from 0 to 365",
        "link_days": "A number of days from 1 to 90",
    }
    if name in known:
        return known[name]
    if name.endswith("_id") and name.startswith("q"):
        return "Lower-case letters, digits and _ (up to 40)"
    return pydantic_message


def _form(
    request: Request,
    user: Any,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    is_new: bool,
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    locales = _locales_in(values)
    slots = max(
        [int(k[1:].split("_")[0]) + 1 for k in values if k.startswith("q") and k.endswith("_id")]
        or [0]
    )
    return render(
        request,
        "feedback/survey_edit.html",
        {
            "user": user,
            "values": values,
            "errors": errors,
            "is_new": is_new,
            "message": message,
            "kinds": KIND_NAMES,
            "triggers": {t: TRIGGER_NAMES.get(t, t) for t in TRIGGERS},
            "purposes": PURPOSES,
            "locales": locales,
            "language_names": LANGUAGES,
            "question_slots": range(min(QUESTION_SLOTS, slots + 2)),
            "preview_src": f"/admin/feedback/surveys/{values.get('survey_id') or 'new'}/preview"
            if not is_new
            else "/admin/feedback/surveys/new/preview",
            "error_locales": {
                name.rsplit("_", 1)[0] for name in errors if name.rsplit("_", 1)[-1] in LABEL_PARTS
            },
        },
        status_code=status_code,
    )


@router.get("", response_class=HTMLResponse)
def surveys_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return render(
        request,
        "feedback/surveys.html",
        {
            "user": user,
            "surveys": service.list_surveys(db),
            "kinds": KIND_NAMES,
            "triggers": TRIGGER_NAMES,
        },
    )


@router.get("/new", response_class=HTMLResponse)
def new_survey_page(request: Request, user: CurrentAdmin) -> HTMLResponse:
    return _form(request, user, values=values_of(None), errors={}, is_new=True)


@router.get("/{survey_id}", response_class=HTMLResponse)
def survey_page(
    request: Request, survey_id: str, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    survey = service.get_survey(db, survey_id=survey_id)
    if survey is None:
        return render(
            request,
            "feedback/surveys.html",
            {
                "user": user,
                "surveys": service.list_surveys(db),
                "kinds": KIND_NAMES,
                "triggers": TRIGGER_NAMES,
                "message": f"No survey {survey_id!r}",
            },
            status_code=404,
        )
    return _form(request, user, values=values_of(survey), errors={}, is_new=False)


@router.post("", dependencies=[CsrfChecked])
def save_survey(
    request: Request, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    is_new = fields.get("new") == "true"
    values = dict(fields)
    survey, errors = survey_from_form(fields)
    if survey is not None and is_new and service.get_survey(db, survey_id=survey.survey_id):
        errors["survey_id"] = f"A survey {survey.survey_id!r} exists already; edit it instead"
        survey = None
    if survey is None:
        return _form(
            request,
            user,
            values=values,
            errors=errors,
            is_new=is_new,
            message="Not saved: see the fields marked below",
            status_code=422,
        )
    try:
        saved = service.save_survey(db, survey=survey)
    except Problem as problem:
        db.rollback()
        errors[problem.field or "survey_id"] = problem.detail
        return _form(request, user, values=values, errors=errors, is_new=is_new, status_code=422)
    return redirect_saying(
        request, f"/admin/feedback/surveys/{saved.survey_id}", f"Survey {saved.name} saved"
    )


@router.post("/preview", dependencies=[CsrfChecked])
def preview_survey(request: Request, user: CurrentAdmin, fields: FormFields) -> Response:
    """The public survey page as a customer would see it, drawn from the form's draft (not
    saved), in the language asked for (``preview_locale``)."""
    return _preview(request, fields)


@router.get("/{survey_id}/preview")
def preview_stored_survey(
    request: Request, survey_id: str, db: DbSession, user: CurrentAdmin, locale: str = "en"
) -> Response:
    """The stored survey's page (a new survey's defaults for ``new``), as the editor first
    shows it beside the form."""
    survey = service.get_survey(db, survey_id=survey_id) if survey_id != "new" else None
    return _preview(request, {**values_of(survey), "preview_locale": locale})


def _preview(request: Request, fields: dict[str, str]) -> Response:
    locale = fields.get("preview_locale", "en") or "en"
    kind = fields.get("kind", "nps")
    kind = kind if kind in SCALES else "nps"
    wording = wording_of(fields, locale)
    if not wording["question"]:
        wording = wording_of(fields, "en")
    if not wording["question"]:
        wording = dict(service.DEFAULT_LABELS[kind]["en"])
    questions = []
    for index in range(QUESTION_SLOTS):
        text = fields.get(f"q{index}_{locale}", "").strip() or fields.get(f"q{index}_en", "")
        if fields.get(f"q{index}_id", "").strip() and text.strip():
            questions.append({"id": fields[f"q{index}_id"].strip(), "text": text.strip()})
    low, high = SCALES[kind]
    language = locale.split("-")[0]
    response = templates.TemplateResponse(
        request,
        "feedback/survey_page.html",
        {
            "state": "form",
            "preview": True,
            "survey": {"name": fields.get("name", "") or "Survey"},
            "labels": wording,
            "questions": questions,
            "locale": language,
            "text": PREVIEW_TEXT.get(language, PREVIEW_TEXT["en"]),
            "scale": list(range(low, high + 1)),
        },
    )
    response.headers["content-security-policy"] = PREVIEW_POLICY
    response.headers["x-frame-options"] = "SAMEORIGIN"
    return response


PREVIEW_TEXT = {
    "en": {"send": "Send", "pick": "Please choose a score."},
    "fr": {"send": "Envoyer", "pick": "Merci de choisir une note."},
    "de": {"send": "Senden", "pick": "Bitte wählen Sie eine Bewertung."},
    "pt": {"send": "Enviar", "pick": "Escolha uma nota."},
}
