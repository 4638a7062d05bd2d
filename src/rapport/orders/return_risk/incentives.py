"""Turning a risk into an offer only where it pays for itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

# --- incentives ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    """An offer that may prevent a return, and what making it costs.

    Parameters
    ----------
    name : str
        Stable identifier, e.g. ``"gift_card_instead_of_refund"``.
    description : str
        What the customer is offered.
    uptake : float
        Assumed share, in [0, 1], of would-be returns the offer prevents when made.
    avoided_share : float
        Share, in [0, 1], of the return's cost avoided when it is prevented (pick-up in store
        saves the carrier leg, not the handling).
    cost_minor : int, default 0
        Fixed expected cost of making the offer, in minor units.
    cost_basis_points : int, default 0
        Expected cost as a share of basket value, in 1/10,000 (500 = 5%).
    """

    name: str
    description: str
    uptake: float
    avoided_share: float
    cost_minor: int = 0
    cost_basis_points: int = 0

    def cost(self, basket_value_minor: int) -> int:
        """Expected cost of making the offer on a basket, in minor units (floored)."""
        return self.cost_minor + basket_value_minor * self.cost_basis_points // 10_000


@dataclass(frozen=True, slots=True)
class IncentiveSuggestion:
    """The offer to make and what it is expected to save, in minor units."""

    offer: Offer
    expected_saving_minor: int


# Illustrative defaults; each retailer configures its own costs and uptakes.
DEFAULT_OFFERS: Final[tuple[Offer, ...]] = (
    Offer(
        "gift_card_instead_of_refund",
        "a gift card worth 105% of any return instead of a refund",
        uptake=0.3,
        avoided_share=1.0,
        cost_basis_points=150,
    ),
    Offer(
        "future_discount",
        "10% off the next order if this one is kept",
        uptake=0.2,
        avoided_share=1.0,
        cost_basis_points=300,
    ),
    Offer(
        "pick_up_in_store",
        "pick-up in store instead of delivery, so fit and size are checked at the counter",
        uptake=0.25,
        avoided_share=0.5,
        cost_minor=100,
    ),
)


def suggest_incentive(
    probability: float,
    basket_value_minor: int,
    *,
    return_cost_minor: int,
    offers: Sequence[Offer] = DEFAULT_OFFERS,
) -> IncentiveSuggestion | None:
    """The offer with the largest positive expected saving, or ``None``.

    For each offer, expected saving = ``probability * return_cost_minor * avoided_share *
    uptake - offer.cost(basket_value_minor)``, rounded half to even to whole minor units.
    Offers with a saving of zero or less are never suggested; ties go to the offer listed
    first, so the answer depends only on the arguments.

    Parameters
    ----------
    probability : float
        Return risk in [0, 1], e.g. from :meth:`ReturnRiskModel.predict_proba`.
    basket_value_minor : int
        Basket value in minor units.
    return_cost_minor : int
        What one return costs the retailer (carriage, handling, write-down), in minor units.
    offers : sequence of Offer, default DEFAULT_OFFERS

    Returns
    -------
    IncentiveSuggestion or None
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    if basket_value_minor < 0 or return_cost_minor < 0:
        raise ValueError("basket value and return cost must not be negative")
    best: IncentiveSuggestion | None = None
    for offer in offers:
        avoided = probability * return_cost_minor * offer.avoided_share * offer.uptake
        saving = round(avoided - offer.cost(basket_value_minor))
        if saving > 0 and (best is None or saving > best.expected_saving_minor):
            best = IncentiveSuggestion(offer, saving)
    return best
