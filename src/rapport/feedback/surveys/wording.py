"""A survey's wording: the default question, comment prompt and scale labels of each kind in
English, French, German and Portuguese, and the wording a customer sees in their locale."""

from __future__ import annotations

from typing import Any

from rapport.feedback.models import Survey

DEFAULT_LABELS: dict[str, dict[str, dict[str, str]]] = {
    "nps": {
        "en": {
            "question": "How likely are you to recommend us to a friend or colleague?",
            "comment": "What is the main reason for your score?",
            "low": "Not at all likely",
            "high": "Extremely likely",
        },
        "fr": {
            "question": "Quelle est la probabilité que vous nous recommandiez à un proche ?",
            "comment": "Quelle est la raison principale de votre note ?",
            "low": "Pas du tout probable",
            "high": "Très probable",
        },
        "de": {
            "question": "Wie wahrscheinlich ist es, dass Sie uns weiterempfehlen?",
            "comment": "Was ist der wichtigste Grund für Ihre Bewertung?",
            "low": "Sehr unwahrscheinlich",
            "high": "Sehr wahrscheinlich",
        },
        "pt": {
            "question": "Qual a probabilidade de você nos recomendar a um amigo?",
            "comment": "Qual o principal motivo da sua nota?",
            "low": "Nada provável",
            "high": "Muito provável",
        },
    },
    "csat": {
        "en": {
            "question": "How satisfied were you with your experience?",
            "comment": "Anything you would like to tell us?",
            "low": "Very dissatisfied",
            "high": "Very satisfied",
        },
        "fr": {
            "question": "Êtes-vous satisfait de votre expérience ?",
            "comment": "Souhaitez-vous nous dire quelque chose ?",
            "low": "Très insatisfait",
            "high": "Très satisfait",
        },
        "de": {
            "question": "Wie zufrieden waren Sie mit Ihrem Erlebnis?",
            "comment": "Möchten Sie uns noch etwas sagen?",
            "low": "Sehr unzufrieden",
            "high": "Sehr zufrieden",
        },
        "pt": {
            "question": "Qual o seu nível de satisfação com a experiência?",
            "comment": "Quer nos contar algo mais?",
            "low": "Muito insatisfeito",
            "high": "Muito satisfeito",
        },
    },
    "ces": {
        "en": {
            "question": "How easy was it to get what you needed?",
            "comment": "What could we make easier?",
            "low": "Very difficult",
            "high": "Very easy",
        },
        "fr": {
            "question": "Était-il facile d'obtenir ce dont vous aviez besoin ?",
            "comment": "Que pourrions-nous simplifier ?",
            "low": "Très difficile",
            "high": "Très facile",
        },
        "de": {
            "question": "Wie einfach war es, das zu bekommen, was Sie brauchten?",
            "comment": "Was könnten wir einfacher machen?",
            "low": "Sehr schwierig",
            "high": "Sehr einfach",
        },
        "pt": {
            "question": "Foi fácil conseguir o que você precisava?",
            "comment": "O que poderíamos facilitar?",
            "low": "Muito difícil",
            "high": "Muito fácil",
        },
    },
}


def labels_for(survey: Survey, locale: str) -> dict[str, str]:
    """The survey's wording in ``locale`` (its language, else English, else any)."""
    labels = survey.labels or DEFAULT_LABELS[survey.kind]
    language = locale.split("-")[0]
    for key in (locale, language, "en"):
        if key in labels:
            return dict(labels[key])
    return dict(next(iter(labels.values())))


def question_text(question: dict[str, Any], locale: str) -> str:
    texts: dict[str, str] = question.get("labels", {})
    language = locale.split("-")[0]
    for key in (locale, language, "en"):
        if key in texts:
            return texts[key]
    return next(iter(texts.values()), str(question.get("id", "")))
