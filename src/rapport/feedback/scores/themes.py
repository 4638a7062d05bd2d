"""Comment themes: the words and phrases that stand out in a period's comments, in the
customers' own language, so that scores are read with what people said.

Each (period, language) is one document; TF-IDF across the periods of a language ranks the
words and two-word phrases that are frequent in a period and less so in the others (with a
single period the ranking falls back to plain frequency). For each theme we count the
comments that mention it and the share of them that came with an unhappy answer (NPS 0-6,
CSAT 1-2, CES 1-2: :func:`arithmetic.unhappy`), so a theme carried by unhappy customers is
visible as such whatever the kinds of survey. The average value (see
:func:`arithmetic.value_of`) is given only when the mentions are all of one kind: NPS, CSAT and
CES values are on different scales and mean nothing together.

The stop-word lists are short lists of function words written for this purpose.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]

from rapport.feedback.reviews.screening import normalise


def _listed(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS: dict[str, frozenset[str]] = {
    "en": _listed(
        """a about after again all also am an and any are as at be been before being but by can
        could did do does doing for from had has have having he her here hers him his how i if
        in into is it its just me more most my no nor not of off on once only or other our out
        over own same she should so some such than that the their them then there these they
        this those through to too under until up very was we were what when where which while
        who why will with would you your got get one really much"""
    ),
    "fr": _listed(
        """a au aux avec ce ces cet cette dans de des du elle en est et etait eu il ils je j la
        le les leur lui ma mais me meme mes moi mon ne nos notre nous on ou par pas pour qu que
        qui sa se ses son sur ta te tes toi ton tu un une vos votre vous y c d l n s t tres bien
        plus ete ai avait fait tout"""
    ),
    "de": _listed(
        """aber als am an auch auf aus bei bin bis da das dass dem den der des die doch du ein
        eine einem einen einer es fur hat hatte ich ihr im in ist ja mit man mir nach nicht noch
        nur oder sehr sich sie sind so uber um und uns von war wir wie zu zum zur wurde schon
        immer etwas"""
    ),
    "pt": _listed(
        """a ao aos as com como da das de do dos e ela ele eles em entre era essa esse esta este
        eu foi for ha isso isto ja la lhe mais mas me mesmo meu minha muito na nas no nos o os
        ou para pela pelo por que se sem seu sua tambem te tem ter um uma voce vc q pra pro
        ate so estou sao ser tudo ainda porem pois entao quando"""
    ),
}


@dataclass(frozen=True, slots=True)
class Comment:
    period: str
    locale: str
    text: str
    value: float  # the answer's value (NPS +100/0/-100, CSAT 100/0, CES score)
    kind: str = ""
    unhappy: bool = False


@dataclass(frozen=True, slots=True)
class Theme:
    period: str
    locale: str
    phrase: str
    mentions: int
    # The mean of the answers' values when they are all of one kind (``kind``), else None.
    mean_value: float | None
    weight: float
    kind: str | None = None
    unhappy_share: float = 0.0  # percent of the mentions that came with an unhappy answer


def _language(locale: str) -> str:
    return locale.split("-")[0].lower()


def extract_themes(comments: Sequence[Comment], *, per_period: int = 8) -> list[Theme]:
    """The top ``per_period`` phrases of every (period, language), best first."""
    by_language: dict[str, dict[str, list[Comment]]] = defaultdict(lambda: defaultdict(list))
    for comment in comments:
        if comment.text.strip():
            by_language[_language(comment.locale)][comment.period].append(comment)
    themes: list[Theme] = []
    for language, periods in sorted(by_language.items()):
        names = sorted(periods)
        documents = [" ".join(normalise(c.text) for c in periods[name]) for name in names]
        stop = sorted(STOP_WORDS.get(language, frozenset()))
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2),
            stop_words=stop or None,
            token_pattern=r"(?u)\b[a-z][a-z]+\b",
            use_idf=len(names) > 1,
            sublinear_tf=True,
        )
        try:
            matrix = vectorizer.fit_transform(documents)
        except ValueError:  # nothing left once stop words are gone
            continue
        vocabulary = vectorizer.get_feature_names_out()
        for row, name in enumerate(names):
            weights = matrix[row].toarray().ravel()
            ranked = (-weights).argsort(kind="stable")
            chosen: list[str] = []
            for index in ranked:
                if weights[index] <= 0 or len(chosen) >= per_period:
                    break
                phrase = str(vocabulary[index])
                # A phrase inside one already chosen adds nothing ("late" after "arrived late").
                if any(phrase in other or other in phrase for other in chosen):
                    continue
                chosen.append(phrase)
                mentioning = [
                    c for c in periods[name] if f" {phrase} " in f" {_plain(c.text, stop)} "
                ]
                if not mentioning:
                    continue
                kinds = {c.kind for c in mentioning}
                themes.append(
                    Theme(
                        period=name,
                        locale=language,
                        phrase=phrase,
                        mentions=len(mentioning),
                        mean_value=sum(c.value for c in mentioning) / len(mentioning)
                        if len(kinds) == 1
                        else None,
                        weight=float(weights[index]),
                        kind=next(iter(kinds)) if len(kinds) == 1 else None,
                        unhappy_share=100 * sum(c.unhappy for c in mentioning) / len(mentioning),
                    )
                )
    return themes


def _plain(text: str, stop: Sequence[str]) -> str:
    """The text as the vectorizer sees it: accent-free lower-case words of two letters or
    more, without stop words, single-spaced."""
    dropped = set(stop)
    letters = "".join(ch if ch.isalpha() else " " for ch in normalise(text))
    return " ".join(w for w in letters.split() if len(w) > 1 and w not in dropped)
