"""Measured experience on real Olist data (../shared/data/olist): moments of truth and review
screening.

    .venv/bin/python bench/feedback_eval.py [--data ../shared/data/olist]

1. Moments of truth: the reviews of reviews-sample/ whose order is in subset-2017-10k/ (the
   two parts overlap on about 600 orders), joined to the order's promised and actual delivery
   dates: how much a late delivery, by how many days, and a first purchase move the share of
   satisfied reviews (4-5 stars, the CSAT value) and the mean stars, with Welch intervals and a
   least-squares slope per day late; then the comment themes of late and on-time orders.
2. Screening: every review of reviews-sample/ through the rules that can run on this data
   (near-duplicate text across orders, rating and text disagreeing, bursts of reviews from one
   person within 24 hours where the person is known), with counts and examples. Every Olist
   review belongs to an order, so "not a customer" and "not a buyer" cannot fire here.

Prints a Markdown report, then one JSON line with the headline figures.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rapport.feedback.reviews import screening
from rapport.feedback.scores.arithmetic import SCALES, csat, difference, score_range
from rapport.feedback.scores.moments import Observation, moments_of_truth
from rapport.feedback.scores.themes import Comment, extract_themes

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "olist"


@dataclass(frozen=True)
class OlistReview:
    review_id: str
    order_id: str
    score: int
    title: str
    message: str
    created: datetime

    @property
    def text(self) -> str:
        return f"{self.title} {self.message}".strip()


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _time(value: str) -> datetime | None:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) if value else None


def load_reviews(data: Path) -> list[OlistReview]:
    rows = _read(data / "reviews-sample" / "olist_order_reviews_dataset.csv")
    reviews = []
    for row in rows:
        created = _time(row["review_creation_date"])
        if created is None:
            continue
        reviews.append(
            OlistReview(
                review_id=row["review_id"],
                order_id=row["order_id"],
                score=int(row["review_score"]),
                title=(row["review_comment_title"] or "").strip(),
                message=(row["review_comment_message"] or "").strip(),
                created=created,
            )
        )
    return reviews


def order_signals(data: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Per delivered order of the subset: days late against the estimate, first purchase;
    and the person (customer_unique_id) behind each order."""
    subset = data / "subset-2017-10k"
    person = {r["customer_id"]: r["customer_unique_id"] for r in _read(subset / "customers.csv")}
    orders = _read(subset / "orders.csv")
    by_person: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for row in orders:
        placed = _time(row["order_purchase_timestamp"])
        if placed is not None:
            by_person[person[row["customer_id"]]].append((placed, row["order_id"]))
    first = {min(placed)[1] for placed in by_person.values()}
    signals: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for row in orders:
        owner[row["order_id"]] = person[row["customer_id"]]
        delivered = _time(row["order_delivered_customer_date"])
        estimated = _time(row["order_estimated_delivery_date"])
        if row["order_status"] != "delivered" or delivered is None or estimated is None:
            continue
        signals[row["order_id"]] = {
            "days_late": (delivered.date() - estimated.date()).days,
            "first_purchase": row["order_id"] in first,
        }
    return signals, owner


# What one review's value can be in each measure: the satisfied share counts a review as 0 or
# 100 points (CSAT), the stars are 1 to 5. A difference of means, and so its interval, lies
# within lowest minus highest and highest minus lowest (-100 to +100 points, -4 to +4 stars).
MEASURES: tuple[tuple[str, Callable[[int], float], tuple[float, float]], ...] = (
    ("satisfied share (CSAT points)", lambda s: 100.0 if s >= 4 else 0.0, score_range("csat")),
    ("mean stars", float, (float(SCALES["csat"][0]), float(SCALES["csat"][1]))),
)
STARS = MEASURES[1][2]


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def moments_report(
    reviews: list[OlistReview], signals: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    joined = [(r, signals[r.order_id]) for r in reviews if r.order_id in signals]
    print(f"## Moments of truth: {len(joined)} Olist reviews joined to delivered orders\n")
    late = [r for r, s in joined if s["days_late"] > 0]
    on_time = [r for r, s in joined if s["days_late"] <= 0]
    overall = csat([r.score for r, _ in joined])
    print(
        f"Satisfied (4-5 stars): {overall.value:.1f}% ({overall.low:.1f} to {overall.high:.1f}); "
        f"{len(late)} orders late ({100 * len(late) / len(joined):.1f}%), "
        f"{len(on_time)} on time or early.\n"
    )
    headline: dict[str, Any] = {"joined": len(joined), "late": len(late)}
    for name, value_of, value_range in MEASURES:
        observations = [Observation(value_of(r.score), s) for r, s in joined]
        widest = value_range[1] - value_range[0]
        print(f"### Effect on the {name}\n")
        print(
            f"Welch's 95% intervals, clipped to the differences the scale allows ({-widest:+g} "
            f"to {widest:+g}), as the dashboard and GET /v1/feedback/moments clip them; the "
            "per-unit slopes are not clipped.\n"
        )
        print("| moment | n | baseline n | effect | 95% interval | per unit |")
        print("|---|---:|---:|---:|---|---|")
        for m in moments_of_truth(observations, value_range=value_range):
            d = m.difference
            digits = 1 if name.startswith("satisfied") else 2
            per_unit = (
                f"{_fmt(m.slope.per_unit, digits)} ({_fmt(m.slope.low, digits)} to "
                f"{_fmt(m.slope.high, digits)}) {m.unit}"
                if m.slope is not None and m.slope.per_unit is not None
                else ""
            )
            print(
                f"| {m.label} vs {m.baseline} | {d.n_a} | {d.n_b} | {_fmt(d.effect, digits)} | "
                f"{_fmt(d.low, digits)} to {_fmt(d.high, digits)} | {per_unit} |"
            )
            key = f"{m.label}|{name}"
            headline[key] = round(d.effect, 2) if d.effect is not None else None
        print()
    stars_late = difference(
        [float(r.score) for r in late], [float(r.score) for r in on_time], value_range=STARS
    )
    headline["late_minus_on_time_stars"] = round(stars_late.effect or 0.0, 2)
    headline["late_minus_on_time_stars_interval"] = [
        round(stars_late.low or 0.0, 2),
        round(stars_late.high or 0.0, 2),
    ]
    comments = [
        Comment("late" if s["days_late"] > 0 else "on time", "pt", r.text, float(r.score))
        for r, s in joined
        if r.text
    ]
    print("### Comment themes, late vs on-time orders (Portuguese, mean stars)\n")
    print("| orders | theme | comments | mean stars |")
    print("|---|---|---:|---:|")
    for theme in extract_themes(comments, per_period=6):
        print(f"| {theme.period} | {theme.phrase} | {theme.mentions} | {theme.mean_value:.2f} |")
    print()
    return headline


def screening_report(reviews: list[OlistReview], owner: dict[str, str]) -> dict[str, Any]:
    print(f"## Screening: {len(reviews)} Olist reviews\n")
    with_text = [r for r in reviews if r.text]
    # Near duplicates: candidate pairs share a word pair; each review is compared with the
    # earlier ones of other orders, as the service compares a new review with recent ones.
    index: dict[str, list[int]] = defaultdict(list)
    prints = [screening.shingles(r.text) for r in with_text]
    duplicates: list[tuple[OlistReview, OlistReview]] = []
    ordered = sorted(range(len(with_text)), key=lambda i: with_text[i].created)
    for i in ordered:
        review = with_text[i]
        if len(screening.words(review.text)) >= screening.MIN_DUPLICATE_WORDS:
            seen: set[int] = set()
            for shingle in prints[i]:
                for j in index[shingle]:
                    if j in seen or with_text[j].order_id == review.order_id:
                        continue
                    seen.add(j)
                    if screening.jaccard(prints[i], prints[j]) >= screening.DUPLICATE_SIMILARITY:
                        duplicates.append((review, with_text[j]))
                        break
                else:
                    continue
                break
        for shingle in prints[i]:
            index[shingle].append(i)
    mismatched = [r for r in with_text if screening.rating_text_mismatch(r.score, r.text)]
    # How well the lexicon reads Portuguese: its sign against the stars.
    polar = [(r, screening.sentiment(r.text)) for r in with_text]
    agree = sum(1 for r, s in polar if (s > 0 and r.score >= 4) or (s < 0 and r.score <= 2))
    opinionated = sum(1 for r, s in polar if s != 0 and r.score != 3)
    # Bursts: three or more reviews by one person within 24 hours (person known for the
    # subset's orders only).
    by_person: dict[str, list[datetime]] = defaultdict(list)
    for r in reviews:
        if r.order_id in owner:
            by_person[owner[r.order_id]].append(r.created)
    bursts = 0
    for times in by_person.values():
        times.sort()
        for k in range(len(times) - 2):
            if (times[k + 2] - times[k]).total_seconds() <= screening.BURST_WINDOW_HOURS * 3600:
                bursts += 1
                break
    flagged = {r.review_id for pair in duplicates for r in pair[:1]} | {
        r.review_id for r in mismatched
    }
    print("| rule | reviews flagged | share of reviews with text |")
    print("|---|---:|---:|")
    print(f"| near_duplicate | {len(duplicates)} | {100 * len(duplicates) / len(with_text):.1f}% |")
    print(
        f"| rating_text_mismatch | {len(mismatched)} | "
        f"{100 * len(mismatched) / len(with_text):.1f}% |"
    )
    print(f"| burst (one person, 3 in 24 h; {len(by_person)} people known) | {bursts} | |")
    print("| not_a_customer / not_a_buyer | 0 (every Olist review has an order) | |")
    print(
        f"\n{len(with_text)} reviews have text; {len(flagged)} would be held "
        f"({100 * len(flagged) / len(with_text):.1f}%). The lexicon's sign agrees with the "
        f"stars on {agree} of {opinionated} opinionated reviews "
        f"({100 * agree / max(opinionated, 1):.1f}%).\n"
    )
    texts = Counter(a.text.lower() for a, _ in duplicates)
    print("Near-duplicate examples (most repeated first):\n")
    for text, count in texts.most_common(5):
        print(f"- {count} x \u201c{text[:100]}\u201d")
    print("\nRating and text disagreeing, examples:\n")
    for r in mismatched[:6]:
        print(f"- {r.score} stars: \u201c{r.text[:110]}\u201d")
    print()
    return {
        "reviews": len(reviews),
        "with_text": len(with_text),
        "near_duplicate": len(duplicates),
        "rating_text_mismatch": len(mismatched),
        "bursts": bursts,
        "held": len(flagged),
        "lexicon_agreement": round(agree / max(opinionated, 1), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not (args.data / "reviews-sample").exists():
        raise SystemExit(f"Olist data not found under {args.data}")
    reviews = load_reviews(args.data)
    signals, owner = order_signals(args.data)
    print("# Measured experience on Olist\n")
    moments = moments_report(reviews, signals)
    screened = screening_report(reviews, owner)
    print(json.dumps({"moments": moments, "screening": screened}, sort_keys=True))


if __name__ == "__main__":
    main()
