"""Review screening rules, as pure functions the service feeds with what it looked up.

A review is held for a moderator when any rule fires; each rule says why in plain words:

* ``not_a_customer``: the reviewer is not a known, active customer;
* ``not_a_buyer``: the reviewer never received this product;
* ``burst_device`` / ``burst_address``: too many reviews from one device or one network
  address in a short time;
* ``near_duplicate``: the text is nearly the same as a review of another product or by
  another reviewer (word shingles, Jaccard similarity);
* ``rating_text_mismatch``: the stars and the words disagree (a small sentiment lexicon in
  English, French, German and Portuguese, written for this purpose).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BURST_WINDOW_HOURS = 24
BURST_LIMIT = 3  # a third review from one device or address within the window is held
DUPLICATE_SIMILARITY = 0.8
MIN_DUPLICATE_WORDS = 5  # "Great product" twice is not a copy

_WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    """Lower case without accents, so 'Très' and 'tres' compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    return _WORD.findall(normalise(text))


def shingles(text: str, size: int = 2) -> frozenset[str]:
    """Word pairs of the text (single words when it is shorter)."""
    tokens = words(text)
    if len(tokens) < size:
        return frozenset(tokens)
    return frozenset(" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


# --- sentiment lexicon ----------------------------------------------------------------------
# Accent-free words; one of five letters or more also counts as a stem (a word starting with
# it). A negator turns round the next polar word among the three that follow it.

_POSITIVE = {
    # English
    "love", "great", "excellent", "perfect", "happy", "recommend", "amazing", "fantastic",
    "good", "nice", "beautiful", "superb", "wonderful", "best", "delighted", "pleased",
    # French
    "ravi", "parfait", "super", "genial", "recommande", "satisfait", "bon",
    "bonne", "magnifique", "top", "adore",
    # German
    "toll", "perfekt", "zufrieden", "empfehle", "gut", "ausgezeichnet", "prima",
    "begeistert",
    # Portuguese
    "otimo", "excelente", "perfeito", "recomendo", "satisfeit", "bom", "boa", "lindo",
    "adorei", "amei", "maravilhos", "parabens", "rapid", "gostei", "certinho", "feliz",
}  # fmt: skip
_NEGATIVE = {
    # English
    "disappoint", "poor", "terrible", "awful", "broken", "damaged", "worst", "bad", "waste",
    "useless", "refund", "horrible", "defective", "fake", "late",
    # French
    "decu", "decevant", "mauvais", "nul", "casse", "abime", "pire", "retard",
    "rembourse", "defectueux",
    # German
    "enttausch", "schlecht", "kaputt", "beschadigt", "schrecklich", "mangelhaft",
    "verspat", "defekt",
    # Portuguese
    "pessim", "ruim", "horrivel", "quebrad", "defeito", "decepcion", "atras", "nao recebi",
    "errad", "faltou", "faltando", "devolv", "danificad", "enganos", "insatisfeit", "demor", "lixo",
}  # fmt: skip
_NEGATORS = {"not", "no", "never", "nicht", "kein", "keine", "pas", "ne", "nao", "nem", "sem"}


def _matches(token: str, lexicon: set[str]) -> bool:
    if token in lexicon:
        return True
    return any(len(stem) >= 5 and token.startswith(stem) for stem in lexicon)


def sentiment(text: str) -> int:
    """Positive minus negative words (a negated word counts the other way). Multi-word
    entries such as 'nao recebi' (never received) count once as they stand."""
    tokens = words(text)
    joined = " ".join(tokens)
    total = 0
    for phrase in (p for p in _NEGATIVE if " " in p):
        total -= joined.count(phrase)
    flip = 0  # words left in which a negator turns the next polar word round
    for token in tokens:
        if token in _NEGATORS:
            flip = 3
            continue
        polarity = 0
        if _matches(token, _POSITIVE):
            polarity = 1
        elif _matches(token, _NEGATIVE):
            polarity = -1
        if flip and polarity:
            polarity, flip = -polarity, 0
        elif flip:
            flip -= 1
        total += polarity
    return total


def rating_text_mismatch(rating: int, text: str) -> bool:
    """Five or four stars with clearly negative words, or one or two with clearly positive."""
    feeling = sentiment(text)
    return (rating >= 4 and feeling <= -2) or (rating <= 2 and feeling >= 2)


# --- the rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """Another review the new one is compared with."""

    review_id: str
    customer_id: str | None
    sku: str
    text: str


@dataclass(frozen=True, slots=True)
class Facts:
    """What the service found out about a new review before screening it."""

    rating: int
    text: str
    sku: str
    customer_id: str | None
    is_customer: bool
    is_buyer: bool
    device_reviews: int  # earlier reviews from the same device within the window
    address_reviews: int  # earlier reviews from the same address within the window


def near_duplicate(
    text: str, sku: str, customer_id: str | None, others: Iterable[Candidate]
) -> Candidate | None:
    """The first other review, of another product or by another reviewer, whose text is
    nearly the same."""
    if len(words(text)) < MIN_DUPLICATE_WORDS:
        return None
    mine = shingles(text)
    for other in others:
        if other.sku == sku and other.customer_id == customer_id:
            continue  # the same person reviewing the same product again
        if jaccard(mine, shingles(other.text)) >= DUPLICATE_SIMILARITY:
            return other
    return None


def screen(facts: Facts, others: Sequence[Candidate]) -> list[Reason]:
    """Every rule that fires for this review, in a fixed order."""
    reasons: list[Reason] = []
    if not facts.is_customer:
        reasons.append(Reason("not_a_customer", "The reviewer is not a known customer"))
    elif not facts.is_buyer:
        reasons.append(Reason("not_a_buyer", f"The reviewer has not received {facts.sku} from us"))
    if facts.device_reviews + 1 >= BURST_LIMIT:
        reasons.append(
            Reason(
                "burst_device",
                f"{facts.device_reviews + 1} reviews from this device within "
                f"{BURST_WINDOW_HOURS} hours",
            )
        )
    if facts.address_reviews + 1 >= BURST_LIMIT:
        reasons.append(
            Reason(
                "burst_address",
                f"{facts.address_reviews + 1} reviews from this network address within "
                f"{BURST_WINDOW_HOURS} hours",
            )
        )
    copy = near_duplicate(facts.text, facts.sku, facts.customer_id, others)
    if copy is not None:
        reasons.append(
            Reason(
                "near_duplicate",
                f"Nearly the same text as review {copy.review_id} of {copy.sku}",
            )
        )
    if rating_text_mismatch(facts.rating, facts.text):
        reasons.append(
            Reason(
                "rating_text_mismatch",
                f"{facts.rating} stars but the words say the opposite",
            )
        )
    return reasons
