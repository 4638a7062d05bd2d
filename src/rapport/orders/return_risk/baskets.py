"""Plain basket records: what the orders domain builds from its tables and importers from
files, labelled with whether something came back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasketLine:
    """One line of a basket: a SKU, its category, how many and at what unit price.

    Parameters
    ----------
    sku : str
        Product identifier.
    category : str
        Category name used for category return rates (any stable label works).
    quantity : int
        Units on the line, at least 1.
    unit_price_minor : int
        Price per unit in minor units of the basket's currency, at least 0.
    """

    sku: str
    category: str
    quantity: int
    unit_price_minor: int

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"quantity must be positive, got {self.quantity} for {self.sku}")
        if self.unit_price_minor < 0:
            raise ValueError(f"unit_price_minor must not be negative for {self.sku}")

    @property
    def value_minor(self) -> int:
        """Line value in minor units."""
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True, slots=True)
class Basket:
    """A basket as it stands before it is bought.

    Parameters
    ----------
    basket_id : str
        Unique identifier (an order or invoice number once bought).
    customer_id : str
        The customer it belongs to.
    placed_at : datetime
        When it is (or was) placed; must be timezone-aware.
    lines : tuple of BasketLine
        At least one line.
    channel : str, default "web"
        Sales channel, such as ``"web"``, ``"app"`` or ``"store"``.
    currency : str, default "EUR"
        ISO 4217 code of every ``unit_price_minor`` in the basket, in its minor units (cents
        for EUR, yen for JPY: as many decimals as the currency has).
    """

    basket_id: str
    customer_id: str
    placed_at: datetime
    lines: tuple[BasketLine, ...]
    channel: str = "web"
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if self.placed_at.tzinfo is None:
            raise ValueError(f"placed_at must be timezone-aware for basket {self.basket_id}")
        if not self.lines:
            raise ValueError(f"basket {self.basket_id} has no lines")

    @property
    def value_minor(self) -> int:
        """Basket value in minor units."""
        return sum(line.value_minor for line in self.lines)

    @property
    def units(self) -> int:
        """Units across all lines."""
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True, slots=True)
class LabelledBasket:
    """A past basket with its outcome.

    Parameters
    ----------
    basket : Basket
        The basket as bought.
    returned : bool
        Whether anything in it came back within the label window.
    returned_skus : frozenset of str, optional
        Which SKUs came back, when known. SKU and category return rates use it; when it is
        empty and ``returned`` is true, every SKU in the basket counts as returned.
    returned_at : datetime, optional
        When the (first) return was recorded, when known. From that moment on the return
        itself is a known fact (the customer's last return, returns of these SKUs), even
        though the basket's label only counts in return *rates* once its window has closed.
        When omitted, a return becomes known when the window closes.
    """

    basket: Basket
    returned: bool
    returned_skus: frozenset[str] = frozenset()
    returned_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.returned_skus and not self.returned:
            raise ValueError(f"basket {self.basket.basket_id} has returned SKUs but no return")
        if self.returned_at is not None:
            basket_id = self.basket.basket_id
            if not self.returned:
                raise ValueError(f"basket {basket_id} has a return time but no return")
            if self.returned_at.tzinfo is None:
                raise ValueError(f"returned_at must be timezone-aware for basket {basket_id}")
            if self.returned_at < self.basket.placed_at:
                raise ValueError(f"basket {basket_id} came back before it was placed")
        unknown = self.returned_skus - {line.sku for line in self.basket.lines}
        if unknown:
            raise ValueError(f"returned SKUs {sorted(unknown)} are not in the basket")

    def sku_returned(self, sku: str) -> bool:
        """Whether this SKU counts as returned from this basket."""
        return sku in self.returned_skus if self.returned_skus else self.returned
