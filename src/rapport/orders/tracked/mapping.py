"""Segment's E-commerce spec v2 messages as Rapport orders and returns, or why they cannot be.

"Order Completed" (event type ``order_completed``) carries ``order_id``, ``currency``, the
``products`` bought (``sku`` or ``product_id``, ``quantity``, ``price`` per unit) and the
totals the shop computed (``revenue``, ``subtotal``, ``total``, ``discount``, ``shipping``,
``tax``), all in the currency's major units ("19.99"). Rapport keeps integer minor units, so
each amount is converted with the currency's ISO 4217 exponent, and the stated totals are
checked against the products exactly as sent (within one minor unit): a shop whose tracking
and checkout disagree sees a refusal, never a wrong order. "Order Refunded" names the
``order_id`` and, for a partial refund, the ``products`` (and quantities) given back.

Segment's own examples and shops' practice differ on whether ``revenue`` and ``subtotal``
include the order discount, and whether prices include tax; each stated amount is accepted
when it matches one of the readings (see docs/tracking-ecommerce.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import ValidationError

from rapport.orders.schemas import OrderIn
from rapport.platform import formatting
from rapport.platform.schemas import MAX_MINOR_UNITS

# The most products one tracked order may have (as POST /v1/orders allows lines).
MAX_PRODUCTS = 500
MAX_QUANTITY = 10_000

# ISO 4217 currencies by their minor-unit exponent (digits after the point): Rapport's one
# table, which the admin pages and the imports read amounts with too.
CURRENCY_EXPONENTS: Mapping[str, int] = formatting.MINOR_UNITS

Reason = Literal[
    "missing_order_id",
    "invalid_order_id",
    "no_products",
    "too_many_products",
    "invalid_product",
    "unknown_product",
    "unknown_currency",
    "invalid_amount",
    "totals_disagree",
    "not_enough_stock",
    "no_customer",
    "customer_erased",
    "order_exists",
    "unknown_order",
    "not_on_order",
    "nothing_to_return",
    "not_handed_over",
    "not_cancellable",
    "not_the_customer",
    "invalid",
    "error",
]


class Refusal(Exception):
    """A message that cannot become an order or a return: a reason code, a sentence saying
    what to do, and the message field at fault (``properties.products.1.price``)."""

    def __init__(self, reason: Reason, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message
        self.field = field


@dataclass(frozen=True)
class TrackedProduct:
    """One entry of ``products``: the ids it names (``sku`` first, then ``product_id``), how
    many, and the unit price in major units (``None`` when not sent)."""

    index: int
    ids: tuple[str, ...]
    quantity: int | None
    price: Decimal | None


def order_id_of(properties: Mapping[str, Any]) -> str:
    """The shop's order id (``order_id``, or ``orderId`` as some libraries send it)."""
    value = properties.get("order_id", properties.get("orderId"))
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise Refusal(
            "missing_order_id",
            "The message has no order_id: Rapport identifies orders by the shop's order id",
            field="properties.order_id",
        )
    return str(value).strip()


def currency_exponent(code: str) -> int | None:
    """Digits after the point of an ISO 4217 currency, or ``None`` for an unknown code."""
    return CURRENCY_EXPONENTS.get(code)


def amount(value: Any, *, field: str) -> Decimal | None:
    """A money amount in major units, exactly as sent (``None`` when absent). Numbers and
    numeric text are accepted; negative, infinite, non-numeric values and values beyond what
    an order can hold in any currency (``MAX_MINOR_UNITS``) are refused, so every amount
    returned can be added, compared and converted without leaving Decimal's range."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Refusal("invalid_amount", f"{_name(field)} must be a number", field=field)
    if isinstance(value, float) and not math.isfinite(value):
        raise Refusal("invalid_amount", f"{_name(field)} must be a finite number", field=field)
    try:
        # str() of a float is its shortest exact reading: 19.99 stays 19.99.
        exact = Decimal(str(value).strip())
    except InvalidOperation:
        raise Refusal("invalid_amount", f"{_name(field)} must be a number", field=field) from None
    if not exact.is_finite():
        raise Refusal("invalid_amount", f"{_name(field)} must be a finite number", field=field)
    if exact < 0:
        raise Refusal("invalid_amount", f"{_name(field)} may not be negative", field=field)
    # Major units are at least minor units in every currency, so a larger value is too large
    # for any (1e308 or "1e999999" would overflow the arithmetic below instead).
    if exact > MAX_MINOR_UNITS:
        raise Refusal("invalid_amount", _too_large(field), field=field)
    return exact


def to_minor(value: Decimal, exponent: int, *, field: str) -> int:
    """Major units as integer minor units (half to even, as banks round); refused beyond
    ``MAX_MINOR_UNITS``. The bound is checked before rounding, whose result must fit the
    context's precision (a larger one raises ``InvalidOperation``)."""
    scaled = value.scaleb(exponent)
    if not scaled.is_finite() or scaled < 0 or scaled > MAX_MINOR_UNITS:
        raise Refusal("invalid_amount", _too_large(field), field=field)
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def products_of(properties: Mapping[str, Any], *, required: bool) -> list[TrackedProduct]:
    """The ``products`` list as sent; refused when malformed (or empty when ``required``)."""
    raw = properties.get("products")
    if raw is None or raw == []:
        if required:
            raise Refusal(
                "no_products",
                "The message has no products: an order needs at least one line",
                field="properties.products",
            )
        return []
    if not isinstance(raw, list):
        raise Refusal(
            "invalid_product", "products must be a list of objects", field="properties.products"
        )
    if len(raw) > MAX_PRODUCTS:
        raise Refusal(
            "too_many_products",
            f"An order may have at most {MAX_PRODUCTS} products",
            field="properties.products",
        )
    found = []
    for index, entry in enumerate(raw):
        field = f"properties.products.{index}"
        if not isinstance(entry, dict):
            raise Refusal("invalid_product", "Each product must be an object", field=field)
        ids = tuple(
            str(entry[key]).strip()
            for key in ("sku", "product_id", "productId")
            if isinstance(entry.get(key), str | int)
            and not isinstance(entry.get(key), bool)
            and str(entry[key]).strip()
        )
        if not ids:
            raise Refusal(
                "invalid_product", "A product needs a sku or a product_id", field=f"{field}.sku"
            )
        found.append(
            TrackedProduct(
                index=index,
                ids=ids,
                quantity=_quantity(entry.get("quantity"), field=f"{field}.quantity"),
                price=amount(entry.get("price"), field=f"{field}.price"),
            )
        )
    return found


def _quantity(value: Any, *, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUANTITY:
        raise Refusal(
            "invalid_product",
            f"quantity must be a whole number from 1 to {MAX_QUANTITY}",
            field=field,
        )
    return value


def catalog_sku(product: TrackedProduct, known: Mapping[str, str]) -> str:
    """The Rapport SKU a product names: its ``sku`` when the catalogue has it, else its
    ``product_id``. ``known`` maps the catalogue's SKUs among the ids sent to their currency."""
    for candidate in product.ids:
        if candidate in known:
            return candidate
    raise Refusal(
        "unknown_product",
        f"No product {' or '.join(repr(i) for i in product.ids)} in the catalogue: add it "
        "(POST /v1/products) or send Rapport's SKU as the product's sku",
        field=f"properties.products.{product.index}.sku",
    )


def order_currency(properties: Mapping[str, Any], catalog_currencies: set[str]) -> str:
    """The order's ISO 4217 code: ``currency`` as sent (any case), else the catalogue's
    currency of the products when they all share one."""
    stated = properties.get("currency")
    if stated is None or stated == "":
        if len(catalog_currencies) == 1:
            return next(iter(catalog_currencies))
        raise Refusal(
            "unknown_currency",
            "The message names no currency and its products are priced in several",
            field="properties.currency",
        )
    code = str(stated).strip().upper() if isinstance(stated, str) else ""
    if currency_exponent(code) is None:
        raise Refusal(
            "unknown_currency",
            f"{str(stated)[:20]!r} is not an ISO 4217 currency code",
            field="properties.currency",
        )
    return code


def build_order(
    properties: Mapping[str, Any],
    *,
    order_id: str,
    products: list[TrackedProduct],
    skus: list[str],
    currency: str,
    customer_id: str | None,
    channel: str,
    placed_at: datetime,
) -> OrderIn:
    """The order ``POST /v1/orders`` would take for these products (``skus`` are the
    catalogue's, one per product), with its totals checked against those the shop stated."""
    exponent = CURRENCY_EXPONENTS[currency]
    for product in products:
        if product.price is None:
            raise Refusal(
                "invalid_product",
                "A product needs its unit price (price)",
                field=f"properties.products.{product.index}.price",
            )
    goods = sum((p.price * (p.quantity or 1) for p in products if p.price), Decimal(0))
    discount = amount(properties.get("discount"), field="properties.discount") or Decimal(0)
    shipping = amount(properties.get("shipping"), field="properties.shipping") or Decimal(0)
    tax = amount(properties.get("tax"), field="properties.tax") or Decimal(0)
    if discount > goods:
        raise Refusal(
            "totals_disagree",
            f"The discount ({discount}) exceeds the products' value ({goods})",
            field="properties.discount",
        )
    after_discount = goods - discount
    readings = {
        # Segment's spec example: revenue is the products' value, subtotal that less the
        # discount, total the subtotal with shipping and tax. Many shops send revenue after
        # the discount, subtotal before it, or a total with tax already in the prices.
        "revenue": (goods, after_discount),
        "subtotal": (after_discount, goods),
        "total": (after_discount + shipping + tax, after_discount + shipping),
    }
    tolerance = Decimal(1).scaleb(-exponent)
    for name, accepted in readings.items():
        stated = amount(properties.get(name), field=f"properties.{name}")
        if stated is not None and all(abs(stated - value) > tolerance for value in accepted):
            raise Refusal(
                "totals_disagree",
                f"{name} is {stated} but the products add up to {goods}"
                + (f", {after_discount} after the discount" if discount else "")
                + (f", with shipping {shipping}" if shipping else "")
                + (f" and tax {tax}" if tax else "")
                + ": the order was not recorded",
                field=f"properties.{name}",
            )
    # One line per SKU and unit price: a product listed twice is one line of both quantities
    # (a return names lines by SKU).
    merged: dict[tuple[str, int], int] = {}
    for product, sku in zip(products, skus, strict=True):
        assert product.price is not None
        unit = to_minor(product.price, exponent, field=f"properties.products.{product.index}.price")
        merged[sku, unit] = merged.get((sku, unit), 0) + (product.quantity or 1)
    lines = [
        {"sku": sku, "quantity": quantity, "unit_price_minor": unit}
        for (sku, unit), quantity in merged.items()
    ]
    subtotal_minor = sum(quantity * unit for (_, unit), quantity in merged.items())
    if subtotal_minor > MAX_MINOR_UNITS:
        raise Refusal(
            "invalid_amount",
            f"The products add up to {goods} {currency}, more than an order can hold "
            f"({_largest(exponent)} {currency})",
            field="properties.products",
        )
    discount_minor = to_minor(discount, exponent, field="properties.discount")
    shipping_minor = to_minor(shipping, exponent, field="properties.shipping")
    total_minor = subtotal_minor - min(discount_minor, subtotal_minor) + shipping_minor
    if total_minor > MAX_MINOR_UNITS:
        raise Refusal(
            "invalid_amount",
            f"The order's total with shipping is more than an order can hold "
            f"({_largest(exponent)} {currency})",
            field="properties.shipping",
        )
    body = {
        "order_id": order_id,
        "customer_id": customer_id,
        "channel": "app" if channel == "app" else "web",
        "fulfilment": "ship",
        "currency": currency,
        "lines": lines,
        "discount_minor": min(discount_minor, subtotal_minor),
        "shipping_minor": shipping_minor,
        "subtotal_minor": subtotal_minor,
        "total_minor": total_minor,
        "placed_at": placed_at,
    }
    try:
        return OrderIn.model_validate(body)
    except ValidationError as failure:
        first = failure.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        reason: Reason = "invalid_order_id" if where == "order_id" else "invalid"
        raise Refusal(reason, f"{where}: {first['msg']}", field=_wire_field(where)) from None


def _wire_field(where: str) -> str:
    """An OrderIn field as the message's field that gave it."""
    if where == "order_id":
        return "properties.order_id"
    if where.startswith("lines."):
        return "properties.products." + where.removeprefix("lines.").split(".")[0]
    return f"properties.{where}"


def _name(field: str) -> str:
    return field.removeprefix("properties.")


def _largest(exponent: int) -> str:
    """The largest amount an order holds, in major units of a currency with ``exponent``."""
    return f"{Decimal(MAX_MINOR_UNITS).scaleb(-exponent):f}"


def _too_large(field: str) -> str:
    return (
        f"{_name(field)} is too large: an amount is at most {MAX_MINOR_UNITS} minor units "
        f"({_largest(2)} in a currency with cents)"
    )
