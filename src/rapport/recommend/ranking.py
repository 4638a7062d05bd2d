"""From a trained bundle and a request's context to a ranked, explained list.

The order of work is fixed, and the tests hold it: candidates for the placement; what must
never be shown (the product itself, the cart, what the customer just bought unless they buy it
again and again, rule exclusions and filters); boosts and buries; context (time of day, device,
margin); the stock filter when the request is store-bound; diversity across categories; pins
last, at their positions.

The model's scores rank; what is served of each listed item (name, price, category) and what
rules match it on are the catalogue's facts now, read once for the candidates (``facts``): a
product renamed, repriced or moved to another category since training is served and ruled as
it is, and a pinned product added since training is pinned.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from rapport.catalog.service import ProductFacts as Facts
from rapport.catalog.service import in_category, rule_recency
from rapport.platform import budget
from rapport.recommend.interactions import FloatArray, dense_row, row_entries
from rapport.recommend.trained_model import CHANNELS, Bundle, daypart, top_category

# Items bought by fewer than this share of returning buyers are "bought once" (a sofa).
REPEAT_ITEM = 0.25
# A new item whose in-season boost at least doubled its score is explained as in season.
IN_SEASON_BOOST = 2.0
DIVERSITY = 0.75  # each further item of a category already shown counts this much less
# Best sellers behind complements score at most this share of the weakest complement, so
# neither diversity nor context lifts them above one (a merchandiser's boost may).
COMPLEMENT_FILL = 1e-3
CONTEXT_STRENGTH = 0.5  # lifts are softened: a 2x evening category gets about 1.4x
# How far down the ranking a store-bound request looks for items in stock: one stock query of
# this many SKUs at most, whatever the catalogue's size.
STOCK_SEARCH_LIMIT = 2_000
DEVICE_CHANNELS = {"mobile": "app", "tablet": "app", "app": "app", "desktop": "web", "pos": "store"}
# A consenting customer's recent browsing (products viewed, added to the basket) on the
# customer-level placements: the items themselves, and at half strength those similar to or
# bought with them, rise by at most BROWSING_WEIGHT of the best candidate's score; the newest
# counts most, a basket addition more than a view.
BROWSING_PLACEMENTS = frozenset(("home", "discover", "email"))
PERSONAL_PLACEMENTS = frozenset(("home", "discover", "email"))
BROWSING_ITEMS = 10
BROWSING_WEIGHT = 0.8
BROWSING_STRENGTH = {"added": 1.0, "viewed": 0.7}
BROWSING_RELATED = 0.5
BROWSING_DECAY = 0.25  # the k-th newest item counts 1 / (1 + DECAY * k)

Reasons = dict[int, tuple[str, str]]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Rule:
    name: str
    action: str
    sku: str | None = None
    attribute: str | None = None
    value: str | None = None
    position: int | None = None
    factor: float | None = None
    # What the rule was narrowed to (None: every placement, everyone): of two rules on the
    # same item, the one for this placement (then for this segment) overrides the other.
    placement: str | None = None
    segment: str | None = None
    # Which of two equally specific boosts or buries of one target is the newest: the one
    # that began last (a rule without a start began first), then the one made last.
    starts_at: datetime | None = None
    rule_id: int = 0


@dataclass(frozen=True)
class Context:
    placement: str
    limit: int = 10
    customer: int | None = None  # the customer's row in the bundle, when personalising
    item: str | None = None
    cart: Sequence[str] = ()
    store_id: str | None = None
    store_name: str | None = None
    at: datetime | None = None
    device: str | None = None
    margin_weight: float = 0.0
    recently_bought: frozenset[str] = frozenset()
    # Only items the customer never bought (the ``discover`` placement, ``exclude_purchased``),
    # ranked with the blend's discovery weights.
    exclude_purchased: bool = False
    item_category: str | None = None  # for a product the model has not seen yet
    item_name: str | None = None
    # The catalogue's categories of cart items the model has not seen yet.
    cart_categories: Mapping[str, str] = field(default_factory=dict)
    # A consenting customer's loyalty tier (id, name): what their tier buys, when the model
    # knows nothing of them yet.
    segment: tuple[str, str] | None = None
    # A consenting customer's recent browsing, newest first: (sku, "viewed" or "added").
    browsed: Sequence[tuple[str, str]] = ()


def bundle_facts(bundle: Bundle, index: int) -> Facts:
    """A product as the catalogue held it at training (what the model file keeps of it)."""
    return Facts(
        sku=bundle.data.items[index],
        name=bundle.names[index],
        category_path=bundle.categories[index],
        brand=bundle.brands[index] or None,
        country_of_origin=bundle.countries[index] or None,
        price_minor=int(bundle.price_minor[index]),
    )


@dataclass(frozen=True)
class Ranked:
    sku: str
    name: str
    category: str
    price_minor: int
    # The catalogue's currency of ``price_minor`` (None only when served from the facts kept
    # at training, which hold no currency).
    currency: str | None
    score: float
    reason: str
    explanation: str


@dataclass
class _Candidates:
    """Scores for every item, and how to explain an item once it is chosen (explaining all
    of them would cost more than ranking)."""

    scores: FloatArray
    reasons: Reasons = field(default_factory=dict)
    default_reason: tuple[str, str] = ("popular", "Popular right now")
    explain: Callable[[int], tuple[str, str] | None] = lambda item: None

    def reason(self, item: int) -> tuple[str, str]:
        return self.reasons.get(item) or self.explain(item) or self.default_reason


def rank(
    bundle: Bundle,
    context: Context,
    rules: Sequence[Rule] = (),
    *,
    available: Callable[[list[str]], set[str]] | None = None,
    facts: Callable[[list[str]], Mapping[str, Facts]] | None = None,
) -> list[Ranked]:
    """The ranked list. ``available`` answers which of some SKUs are in stock at the request's
    store; it is called only when the request is store-bound. ``facts`` gives the catalogue's
    facts now for some SKUs (those it leaves out are not in the catalogue and are not shown);
    it is called once, for the candidates and the pins. Without it the facts at training
    serve (and only pins of products the model knows)."""
    candidates = _candidates(bundle, context)
    if context.browsed and context.placement in BROWSING_PLACEMENTS:
        candidates = _with_browsing(bundle, context, candidates)
    scores = candidates.scores.astype(np.float64)
    rules = in_force(rules)
    scores[~_allowed(bundle, context, rules)] = -np.inf
    scores = _weighed(bundle, context, rules, scores)
    allowed_pins = _allowed(bundle, context, [r for r in rules if r.action != "pin"])
    # Pinned products the model does not know (added since training) get indices past its
    # items: only with the catalogue's facts to serve them from.
    known = len(bundle.data.items)
    extra: list[str] = []

    def sku_of(index: int) -> str:
        return bundle.data.items[index] if index < known else extra[index - known]

    # Each item once, at one position: (position, item), in the order they are placed.
    pins = _pins(bundle, rules, extra if facts is not None else None)
    never = {context.item, *context.cart}
    pins = [
        (position, i)
        for position, i in pins
        if (allowed_pins[i] if i < known else sku_of(i) not in never)
    ]
    wanted = context.limit + len(pins)
    pool = _best(scores, max(4 * wanted, 50))
    if context.store_id is not None and available is not None:
        pool = _in_stock(bundle, scores, pool, wanted, available)
        if pins:
            stocked = available([sku_of(i) for _, i in pins])
            pins = [(position, i) for position, i in pins if sku_of(i) in stocked]
    current: Mapping[str, Facts] = {}
    if facts is not None:
        # One read of the catalogue for what may be listed; rules by attribute are applied
        # again on its facts (the scores above matched them on the facts at training).
        pool = pool[: max(4 * wanted, 50)]
        current = facts([sku_of(i) for i in [*pool, *(i for _, i in pins)]])
        scores = scores.copy()
        pool = _as_catalogued(bundle, rules, pool, scores, current)
        pins = [(p, i) for p, i in pins if _shown(rules, sku_of(i), current.get(sku_of(i)))]
    pinned = {i for _, i in pins}
    unpinned = [i for i in pool if i not in pinned]
    # A customer's own ranking is served as training measured it; lists for anyone (popular,
    # similar, complements) are spread across categories.
    if context.customer is not None and context.placement in PERSONAL_PLACEMENTS:
        chosen = unpinned[: context.limit]
    else:
        chosen = _diverse(bundle, scores, unpinned, context.limit)
    # Pins in order of position: two at one position follow each other (the earlier rule
    # first), and a pin never moves one placed before it.
    free = 0
    for position, index in pins:
        place = min(max(position - 1, free), len(chosen))
        chosen.insert(place, index)
        free = place + 1
        candidates.reasons[index] = ("pinned", "Pinned by merchandiser")
    chosen = chosen[: context.limit]
    for i in chosen:
        candidates.reasons[i] = candidates.reason(i)
    _explain_neighbours(bundle, context, candidates, chosen)
    served = []
    for i in chosen:
        item = current.get(sku_of(i)) or bundle_facts(bundle, i)
        score = float(scores[i]) if i < known and np.isfinite(scores[i]) else 0.0
        served.append(
            Ranked(
                sku=sku_of(i),
                name=item.name,
                category=item.category_path,
                price_minor=item.price_minor,
                currency=item.currency,
                score=round(score, 6),
                reason=candidates.reasons[i][0],
                explanation=candidates.reasons[i][1],
            )
        )
    return served


# ---------------------------------------------------------------------------- candidates


def _candidates(bundle: Bundle, context: Context) -> _Candidates:
    placement = context.placement
    if placement == "product_similar":
        return _similar(bundle, context)
    if placement == "product_complements":
        return _complements(bundle, context, [context.item] if context.item else [])
    if placement == "cart":
        return _complements(bundle, context, list(context.cart))
    if context.customer is not None:
        protocol = "discover" if context.exclude_purchased else "repeat"
        return _personal(bundle, context.customer, protocol)
    return _popular(bundle, context)


def _unit(values: npt.NDArray[np.floating]) -> FloatArray:
    top = float(values.max()) if len(values) else 0.0
    return (values / top if top > 0 else values).astype(np.float32)


def _popular(bundle: Bundle, context: Context) -> _Candidates:
    """For anyone: what sells at their store, what is taking off, what sells overall."""
    overall = _unit(bundle.popularity)
    trending = _unit(bundle.trending)
    scores = 0.6 * overall + 0.25 * trending
    store = bundle.store_index.get(context.store_id or "")
    local = np.zeros_like(overall)
    if store is not None:
        local = _unit(dense_row(bundle.store_popularity, store))
        scores = 0.6 * local + 0.25 * overall + 0.15 * trending
    tier = np.zeros_like(overall)
    segment = bundle.segment_index.get(context.segment[0]) if context.segment else None
    if segment is not None:
        tier = _unit(dense_row(bundle.segment_popularity, segment))
        scores = 0.5 * scores + 0.5 * tier

    def explain(i: int) -> tuple[str, str] | None:
        if local[i] > 0 and local[i] >= max(overall[i], trending[i]):
            return ("popular_near_you", f"Popular at {context.store_name or 'your store'}")
        if tier[i] > 0 and tier[i] >= max(overall[i], trending[i]) and context.segment:
            return ("popular_in_tier", f"Popular with {context.segment[1]} members")
        if trending[i] > 0.2:
            return ("trending", "Selling faster than usual this week")
        return None

    # Everything stays a candidate (so rules and stock always leave something to show).
    return _Candidates(scores=scores + 1e-6 * overall + 1e-9, explain=explain)


def _personal(bundle: Bundle, customer: int, protocol: str) -> _Candidates:
    parts = bundle.blend.parts_one(bundle.data, customer)
    weights = bundle.blend.weights(protocol)
    weighted = {name: weights.get(name, 0.0) * values for name, values in parts.items()}
    scores = sum(weighted.values(), np.zeros_like(parts["popular"]))
    boost = bundle.blend.season_boost(protocol)
    if boost is not None:
        scores = scores * boost
    scores = scores + 1e-6 * parts["popular"] + 1e-9
    bought, baskets = row_entries(bundle.data.counts(), customer)
    times_bought = dict(zip(bought.tolist(), baskets.tolist(), strict=True))

    def explain(i: int) -> tuple[str, str] | None:
        contributions = {name: float(values[i]) for name, values in weighted.items()}
        source = max(contributions, key=lambda name: contributions[name])
        if contributions[source] <= 0:
            return None
        if source == "own":
            regular = times_bought.get(i, 0) >= 2 and bundle.repeat[i] >= REPEAT_ITEM
            return ("buy_again", "You buy this regularly" if regular else "You bought this before")
        # Whatever part raised it, an item the customer bought is one they bought: "goes with
        # what you bought" would tell them their own purchase is a suggestion.
        if i in times_bought:
            return ("buy_again", "You bought this before")
        if boost is not None and boost[i] >= IN_SEASON_BOOST:
            return ("trending", "In season: selling faster than usual lately")
        if source in ("knn", "ease", "als"):
            return ("because_you_bought", "Goes with what you bought")
        if source == "upcf":
            return ("customers_like_you", "Customers like you buy this")
        return None

    return _Candidates(scores=np.asarray(scores, dtype=np.float32), explain=explain)


def _anchor(bundle: Bundle, sku: str | None) -> int | None:
    return bundle.item_index.get(sku or "")


def _category_fallback(bundle: Bundle, category: str | None, *, partners: bool) -> FloatArray:
    """Best sellers of the product's category (similar), or of the categories bought with it
    (complements): for products with no history of their own."""
    scores = np.zeros(len(bundle.data.items), dtype=np.float32)
    top = bundle.top_category_index.get(top_category(category or ""))
    if top is None:
        return scores
    sources = [(top, 1.0)]
    if partners:
        partner_indices, partner_weights = row_entries(bundle.category_partners, top)
        sources = list(zip(partner_indices.tolist(), partner_weights.tolist(), strict=True))
    for category_index, weight in sources:
        best, sales = row_entries(bundle.category_best, category_index)
        scores[best] += weight * _unit(sales)
    return scores


def _similar(bundle: Bundle, context: Context) -> _Candidates:
    anchor = _anchor(bundle, context.item)
    name = bundle.names[anchor] if anchor is not None else (context.item_name or "this item")
    scores = np.zeros(len(bundle.data.items), dtype=np.float32)
    category: str | None
    if anchor is not None:
        substitutes, similarity = row_entries(bundle.substitutes, anchor)
        scores[substitutes] = similarity
        category = bundle.categories[anchor]
    else:
        category = context.item_category
    if not scores.any():
        scores = _category_fallback(bundle, category, partners=False)
    scores[scores <= 0] = -np.inf
    reason = ("similar", f"Similar to {name}")
    return _Candidates(scores=scores, reasons={}, default_reason=reason)


def _complements(bundle: Bundle, context: Context, anchors: list[str]) -> _Candidates:
    scores = np.zeros(len(bundle.data.items), dtype=np.float32)
    best_anchor = np.full(len(scores), -1, dtype=np.int64)
    best_value = np.zeros(len(scores), dtype=np.float32)
    own_categories: set[int] = set()
    for sku in anchors:
        budget.check()
        anchor = _anchor(bundle, sku)
        if anchor is None:
            category = (
                context.item_category if sku == context.item else context.cart_categories.get(sku)
            )
            top = bundle.top_category_index.get(top_category(category or ""))
            if top is not None:
                own_categories.add(top)
            fallback = _category_fallback(bundle, category, partners=True)
            scores += 0.5 * fallback
            continue
        own_categories.add(int(bundle.category_of[anchor]))
        row = dense_row(bundle.complements, anchor)
        if not row.any():
            # Never bought with anything across categories: what its buyers also buy.
            row = 0.5 * dense_row(bundle.blend.knn.similarity, anchor)
        if not row.any():
            # Best sellers of the categories bought with its own: nothing links them to the
            # product itself, so they are explained as what they are (popular), not as its
            # complements.
            scores += 0.5 * _category_fallback(bundle, bundle.categories[anchor], partners=True)
            continue
        better = row > best_value
        best_anchor[better], best_value[better] = anchor, row[better]
        scores += row
    # Behind every complement, best sellers from other categories than the anchors' (all of
    # them in a catalogue of one category), so that a shelf is always full: a cart of items
    # nobody bought with anything, or the catalogue does not know, still gets something.
    filler = scores <= 0
    outside = filler & ~np.isin(bundle.category_of, list(own_categories))
    filler = outside if outside.any() else filler
    found = scores > 0
    scale = COMPLEMENT_FILL * float(scores[found].min()) if found.any() else 1.0
    scores[filler] = scale * _unit(bundle.popularity)[filler]
    scores[scores <= 0] = -np.inf

    def explain(i: int) -> tuple[str, str] | None:
        if filler[i]:
            return ("popular", "Popular right now")
        anchor = int(best_anchor[i])
        if anchor < 0:
            return None
        return ("bought_together", f"Often bought with {bundle.names[anchor]}")

    # What no bought-with link raised (a category's best sellers for a product never bought
    # with anything) is popular, not "goes with" the product.
    return _Candidates(scores=scores, explain=explain)


def _with_browsing(bundle: Bundle, context: Context, candidates: _Candidates) -> _Candidates:
    """The candidates, lifted towards what the customer browsed lately: each browsed item,
    its substitutes and its complements (the item and each relation on a 0-1 scale, the
    newest browsing and a basket addition weighing most). The lift is added, scaled to the
    best candidate, so a strong personal history still leads and a thin one is steered."""
    count = len(bundle.data.items)
    signal = np.zeros(count, dtype=np.float32)
    source = np.full(count, -1, dtype=np.int64)
    strongest = np.zeros(count, dtype=np.float32)
    seen: set[int] = set()
    for sku, kind in context.browsed:
        anchor = bundle.item_index.get(sku)
        if anchor is None or anchor in seen:
            continue
        if len(seen) == BROWSING_ITEMS:
            break
        seen.add(anchor)
        weight = BROWSING_STRENGTH.get(kind, 0.7) / (1.0 + BROWSING_DECAY * (len(seen) - 1))
        related = np.zeros(count, dtype=np.float32)
        substitutes, similarity = row_entries(bundle.substitutes, anchor)
        related[substitutes] = similarity
        related = _unit(related + 0.5 * _unit(dense_row(bundle.complements, anchor)))
        related *= BROWSING_RELATED * weight
        related[anchor] = weight
        better = related > strongest
        source[better], strongest[better] = anchor, related[better]
        signal += related
    base = candidates.scores
    finite = base[np.isfinite(base)]
    top = float(finite.max()) if len(finite) and finite.max() > 0 else 1.0
    lift = (BROWSING_WEIGHT * top * _unit(signal)).astype(np.float32)
    original = candidates.reason

    def explain(i: int) -> tuple[str, str] | None:
        anchor = int(source[i])
        if anchor < 0 or not lift[i] > (base[i] if np.isfinite(base[i]) else 0.0):
            return original(i)
        added = (bundle.data.items[anchor], "added") in context.browsed
        if anchor == i:
            if added:
                return ("in_your_basket", "Still in your basket")
            return ("recently_viewed", "You looked at this recently")
        if added:
            return ("goes_with_your_basket", f"Goes with {bundle.names[anchor]} in your basket")
        return ("because_you_viewed", f"Because you looked at {bundle.names[anchor]}")

    return _Candidates(
        scores=(base + lift).astype(np.float32),
        reasons=candidates.reasons,
        default_reason=candidates.default_reason,
        explain=explain,
    )


# -------------------------------------------------------------------------- rules, context


def _specificity(rule: Rule) -> tuple[bool, bool]:
    """How narrowly a rule was set: for one placement first, then for one segment."""
    return (rule.placement is not None, rule.segment is not None)


def _target(rule: Rule) -> tuple[str, str | None, str | None]:
    """What a boost, bury or pin is about, and which kind of rule it is: boosts and buries
    of one target are one kind (a bury overrides a boost just as another boost does)."""
    kind = "pin" if rule.action == "pin" else "weigh"
    if rule.sku is not None:
        return (kind, "sku", rule.sku)
    return (kind, rule.attribute, rule.value)


def in_force(rules: Sequence[Rule]) -> list[Rule]:
    """The rules that apply, in their order: of the pins of one SKU, and of the boosts and
    buries of one target (one SKU, or one attribute and value), only the most specific ones
    (a rule for this placement over one for every placement, then a rule for a segment over
    one for everyone). Of equally specific boosts and buries of one target only the newest
    applies (the one that began last, then the one made last, then the last given), as the
    newest price rule sets a price; boosts of different targets that match one item still
    multiply. Exclusions and filters always all apply."""
    weighed = ("pin", "boost", "bury")
    best: dict[tuple[str, str | None, str | None], tuple[bool, bool]] = {}
    for rule in rules:
        if rule.action in weighed:
            target = _target(rule)
            best[target] = max(best.get(target, (False, False)), _specificity(rule))
    kept = [r for r in rules if r.action not in weighed or _specificity(r) == best[_target(r)]]
    newest: dict[tuple[str, str | None, str | None], tuple[datetime, int, int]] = {}
    for order, rule in enumerate(kept):
        if rule.action in ("boost", "bury"):
            # newest as of price rules (``catalog.service.rule_recency``), then the last given
            key = (*rule_recency(rule.starts_at, rule.rule_id), order)
            target = _target(rule)
            newest[target] = max(newest.get(target, key), key)
    return [
        r
        for order, r in enumerate(kept)
        if r.action not in ("boost", "bury") or newest[_target(r)][2] == order
    ]


def _pins(
    bundle: Bundle, rules: Sequence[Rule], extra: list[str] | None = None
) -> list[tuple[int, int]]:
    """(position, item) for each pinned item, once: of two equally specific pins of one SKU,
    the first position (then the earlier rule). Ordered by position, then rule order. A SKU
    the model does not know is appended to ``extra`` and indexed after the model's items
    (without ``extra``, it is left out)."""
    found: dict[int, int] = {}
    for rule in rules:
        if rule.action != "pin" or not rule.sku:
            continue
        index = bundle.item_index.get(rule.sku)
        if index is None and extra is not None:
            if rule.sku not in extra:
                extra.append(rule.sku)
            index = len(bundle.data.items) + extra.index(rule.sku)
        if index is None:
            continue
        position = rule.position or 1
        if index not in found or position < found[index]:
            found[index] = position
    return sorted(((p, i) for i, p in found.items()), key=lambda pin: pin[0])


def _matches(bundle: Bundle, rule: Rule) -> Mask:
    """Items a rule targets: its SKU, or every item whose attribute matches."""
    mask = np.zeros(len(bundle.data.items), dtype=bool)
    if rule.sku is not None:
        index = bundle.item_index.get(rule.sku)
        if index is not None:
            mask[index] = True
        return mask
    return attribute_mask(bundle, rule.attribute or "", rule.value or "")


def attribute_mask(bundle: Bundle, attribute: str, value: str) -> Mask:
    """Items whose ``attribute`` equals ``value`` (a category matches its subcategories),
    remembered per bundle: rules ask the same questions on every request."""
    cache: dict[tuple[str, str], Mask] = bundle.__dict__.setdefault("_masks", {})
    key = (attribute, value)
    if key not in cache:
        if attribute == "category":
            found = [in_category(c, value) for c in bundle.categories]
        elif attribute == "brand":
            found = [b == value for b in bundle.brands]
        else:
            found = [c == value for c in bundle.countries]
        cache[key] = np.asarray(found, dtype=bool)
    return cache[key]


def _matches_facts(rule: Rule, sku: str, item: Facts) -> bool:
    """Whether a rule targets a product with these facts (``attribute_mask``'s test)."""
    if rule.sku is not None:
        return rule.sku == sku
    if rule.attribute == "category":
        return in_category(item.category_path, rule.value or "")
    if rule.attribute == "brand":
        return item.brand == rule.value
    return item.country_of_origin == rule.value


def _shown(rules: Sequence[Rule], sku: str, item: Facts | None) -> bool:
    """Whether exclusions and filters let a product with these facts (None: not in the
    catalogue) be shown."""
    if item is None:
        return False
    for rule in rules:
        if rule.action == "exclude" and _matches_facts(rule, sku, item):
            return False
        if rule.action == "filter" and not _matches_facts(rule, sku, item):
            return False
    return True


def _factor(rules: Sequence[Rule], sku: str, item: Facts) -> float:
    """What boosts and buries multiply a product's score by (``_weighed``'s rules)."""
    factor = 1.0
    for rule in rules:
        if rule.action in ("boost", "bury") and rule.factor and _matches_facts(rule, sku, item):
            factor *= rule.factor if rule.action == "boost" else 1.0 / rule.factor
    return factor


def _as_catalogued(
    bundle: Bundle,
    rules: Sequence[Rule],
    pool: list[int],
    scores: npt.NDArray[np.float64],
    current: Mapping[str, Facts],
) -> list[int]:
    """The pool as the catalogue stands: products no longer in it, or that exclusions and
    filters now leave out, dropped; boosts and buries matched on the current facts in place
    of those at training (``scores`` changed in place); reordered by score."""
    sifting = [r for r in rules if r.action in ("exclude", "filter")]
    weighing = [r for r in rules if r.action in ("boost", "bury") and r.attribute is not None]
    kept: list[int] = []
    for i in pool:
        sku = bundle.data.items[i]
        item = current.get(sku)
        if item is None or (sifting and not _shown(sifting, sku, item)):
            continue
        if weighing:
            before = bundle_facts(bundle, i)
            if item != before:
                scores[i] *= _factor(weighing, sku, item) / _factor(weighing, sku, before)
        kept.append(i)
    if not weighing:
        return kept  # still in the order of their scores
    return sorted(kept, key=lambda i: (-scores[i], i))


def _allowed(bundle: Bundle, context: Context, rules: Sequence[Rule]) -> Mask:
    allowed = np.ones(len(bundle.data.items), dtype=bool)
    never = [context.item, *context.cart]
    for sku in never:
        if sku in bundle.item_index:
            allowed[bundle.item_index[sku]] = False
    for sku in context.recently_bought:
        index = bundle.item_index.get(sku)
        if index is not None and (context.exclude_purchased or bundle.repeat[index] < REPEAT_ITEM):
            allowed[index] = False
    if context.exclude_purchased and context.customer is not None:
        allowed[row_entries(bundle.data.binary(), context.customer)[0]] = False
    for rule in rules:
        if rule.action == "exclude":
            allowed &= ~_matches(bundle, rule)
        elif rule.action == "filter":
            allowed &= _matches(bundle, rule)
    return allowed


def _weighed(
    bundle: Bundle, context: Context, rules: Sequence[Rule], scores: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    for rule in rules:
        if rule.action in ("boost", "bury") and rule.factor:
            factor = rule.factor if rule.action == "boost" else 1.0 / rule.factor
            scores = np.where(_matches(bundle, rule), scores * factor, scores)
    lift = np.ones(len(bundle.top_categories), dtype=np.float64)
    if context.at is not None and context.placement in ("home", "discover", "email", "cart"):
        lift *= bundle.daypart_lift[:, daypart(context.at)]
    channel = DEVICE_CHANNELS.get((context.device or "").lower())
    if channel is not None:
        lift *= bundle.channel_lift[:, CHANNELS.index(channel)]
    scores = scores * np.power(lift, CONTEXT_STRENGTH)[bundle.category_of]
    if context.margin_weight:
        scores = scores * (1.0 + context.margin_weight * bundle.margin_rate)
    return scores


def _best(scores: npt.NDArray[np.float64], count: int) -> list[int]:
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) > count:
        finite = finite[np.argpartition(-scores[finite], count - 1)[:count]]
    order = np.lexsort((finite, -scores[finite]))
    return [int(i) for i in finite[order]]


def _in_stock(
    bundle: Bundle,
    scores: npt.NDArray[np.float64],
    pool: list[int],
    wanted: int,
    available: Callable[[list[str]], set[str]],
) -> list[int]:
    """Candidates in stock at the store, looking four times as deep down the ranking while too
    many are out, until the candidates (at most ``STOCK_SEARCH_LIMIT``) run out. Each round asks
    only about the candidates not asked about yet."""
    depth = min(int(np.count_nonzero(np.isfinite(scores))), STOCK_SEARCH_LIMIT)
    asked: set[int] = set()
    stocked: set[int] = set()
    while True:
        fresh = [i for i in pool if i not in asked]
        names = available([bundle.data.items[i] for i in fresh]) if fresh else set()
        stocked.update(i for i in fresh if bundle.data.items[i] in names)
        asked.update(fresh)
        kept = [i for i in pool if i in stocked]
        # The pool grows every round (it holds every candidate asked about and more), so the
        # depth ends the search: an empty pool, or every candidate out of stock, ends it too.
        if len(kept) >= wanted or len(pool) >= depth:
            return kept
        budget.check()
        pool = _best(scores, min(max(4 * len(pool), wanted), depth))


def _diverse(
    bundle: Bundle, scores: npt.NDArray[np.float64], pool: list[int], limit: int
) -> list[int]:
    """Greedy: each pick is the best score after a discount for its category's earlier picks
    (ties to the earlier candidate, which the pool orders by score, then index). Within a
    category the best remaining candidate is always its earliest, so each pick compares only
    the categories' first remaining candidates (plain Python: the pool is a few dozen)."""
    values = scores[pool].tolist()
    queues: dict[int, deque[int]] = {}  # category -> its candidates' positions in the pool
    for position, category in enumerate(bundle.category_of[pool].tolist()):
        queues.setdefault(category, deque()).append(position)
    shown = dict.fromkeys(queues, 0)
    chosen: list[int] = []
    for _ in range(min(limit, len(pool))):
        budget.check()
        best_category, best_position, best_value = -1, -1, -math.inf
        for category, queue in queues.items():
            if not queue:
                continue
            position = queue[0]
            value = values[position] * DIVERSITY ** shown[category]
            if value > best_value or (value == best_value and position < best_position):
                best_category, best_position, best_value = category, position, value
        queues[best_category].popleft()
        shown[best_category] += 1
        chosen.append(pool[best_position])
    return chosen


def _explain_neighbours(
    bundle: Bundle, context: Context, candidates: _Candidates, chosen: list[int]
) -> None:
    """Name the purchase behind each "goes with what you bought" item."""
    if context.customer is None:
        return
    history, _ = row_entries(bundle.data.binary(), context.customer)
    if not len(history):
        return
    columns = bundle.neighbour_links
    bought = set(history.tolist())
    for i in chosen:
        if candidates.reasons[i][0] != "because_you_bought":
            continue
        start, stop = columns.indptr[i], columns.indptr[i + 1]
        sources, weights = columns.indices[start:stop], columns.data[start:stop]
        mine = [k for k, source in enumerate(sources.tolist()) if source in bought]
        if mine:
            source = int(sources[max(mine, key=lambda k: weights[k])])
            candidates.reasons[i] = (
                "because_you_bought",
                f"Because you bought {bundle.names[source]}",
            )
