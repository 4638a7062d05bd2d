"""Short human-readable reasons for a basket's risk, one per feature group."""

from __future__ import annotations

import math

from rapport.orders.return_risk.features import BasketFeatures
from rapport.platform.formatting import minor_to_major, money_input

# --- reasons -------------------------------------------------------------------------------


def money(minor: int, currency: str) -> str:
    """Minor units with the currency's decimals: "150.00 EUR", "15,000 KRW"."""
    return f"{money_input(minor, currency)} {currency}"


def _orders(count: int) -> str:
    return f"{count} past order" + ("" if count == 1 else "s")


def _customer_record(row: BasketFeatures) -> str:
    """The customer's orders as far as they can be judged: those whose 30 days have closed
    and how many of them came back, then the returns already made on newer orders (or how
    many newer orders are still within their 30 days). Never "kept" of an order that may
    still come back or already did."""
    closed, returned = row.closed_baskets, row.returned_baskets
    still_open = row.prior_baskets - closed
    # Returns known so far, less those of closed orders: returns made within an open window.
    recent = max(row.known_returns - returned, 0)
    if closed:
        its = "its" if closed == 1 else "their"
        text = f"{_orders(closed)} with {its} 30 days closed, {returned or 'none'} returned"
        if recent:
            return f"{text}; {recent} returned recently"
        if still_open:
            return f"{text}; {still_open} more within their 30 days"
        return text
    text = f"{_orders(still_open)}, all within their 30 days"
    return f"{text}; {recent} returned already" if recent else f"{text}, none returned yet"


def _other_currency(row: BasketFeatures, what: str) -> str:
    return f"not compared with {what} in {row.shop_currency}"


def round_down(major: float) -> str:
    """The largest 1-2-5 step not above ``major``: 312.40 -> "300", 1,234 -> "1,000"."""
    if major < 1:
        return "0"
    power = 10 ** math.floor(math.log10(major))
    step = max(m * power for m in (1, 2, 3, 5) if m * power <= major)
    return f"{step:,.0f}"


def reason_for(group: str, row: BasketFeatures) -> str:
    if group == "customer":
        if row.is_new:
            return "new customer with no past orders"
        return _customer_record(row)
    if group == "returns":
        if row.days_since_last_return is None:
            return "customer has never returned anything"
        text = f"customer's last return was {row.days_since_last_return:.0f} days ago"
        if row.returns_last_30_days >= 2:
            text += f" ({row.returns_last_30_days} returns in the last 30 days)"
        if row.returned_sku_share > 0:
            text += "; they returned some of these items before"
        return text
    if group == "bracketing":
        if row.bracketed_families:
            return f"{row.bracketed_families} products in several variants in one basket"
        if row.repeated_sku_lines:
            return f"{row.repeated_sku_lines} products on several lines"
        if row.quantity_vs_usual_max is not None and row.quantity_vs_usual_max >= 2:
            return f"{row.quantity_vs_usual_max:.0f}x the usual quantity of a product"
        if row.units_per_line_vs_customer is not None:
            return f"{row.units_per_line_vs_customer:.1f}x the customer's usual quantities"
        return "one of each product"
    if group == "discount":
        if row.price_vs_usual_min is None:
            if row.currency != row.shop_currency:
                return f"products never sold in {row.currency} before"
            return "products never sold before"
        if row.price_vs_usual_min < 1:
            return f"prices up to {1 - row.price_vs_usual_min:.0%} below the usual price"
        return "prices at or above the usual price"
    if group == "repeat":
        if row.rebought_last_7_days_share > 0:
            return f"{row.rebought_last_7_days_share:.0%} of the items were bought in the last week"
        if row.rebought_sku_share > 0:
            return f"{row.rebought_sku_share:.0%} of the items were bought before"
        return "all items new to the customer"
    if group == "recency":
        if row.baskets_last_30_days >= 2:
            return f"{row.baskets_last_30_days} orders in the last 30 days"
        if row.days_since_previous is None:
            return "first order"
        return f"ordered again {row.days_since_previous:.0f} days after the previous order"
    if group == "value":
        major = float(minor_to_major(row.basket_value_minor, row.currency))
        text = f"basket over {round_down(major)} {row.currency}"
        other = row.currency != row.shop_currency
        notes = []
        if row.value_vs_customer_mean is not None and row.value_vs_customer_mean >= 2:
            usual = " in " + row.currency if other else ""
            notes.append(f"{row.value_vs_customer_mean:.1f}x their usual{usual}")
        if other:
            notes.append(_other_currency(row, "amounts"))
        return f"{text} ({'; '.join(notes)})" if notes else text
    if group == "size":
        return f"large basket: {row.lines} lines, {row.units} units"
    if group == "price":
        text = f"unit prices up to {money(row.basket_max_unit_price_minor, row.currency)}"
        if row.currency != row.shop_currency:
            text += f" ({_other_currency(row, 'prices')})"
        return text
    if group == "items":
        if row.top_sku is None:
            return "items never sold before"
        return f"item {row.top_sku} often comes back ({row.top_sku_rate:.0%} of orders)"
    if group == "categories":
        if row.top_category is None:
            return "categories never sold before"
        rate = f"{row.top_category_rate:.0%}"
        return f"{row.top_category.lower()} items often come back ({rate} of orders)"
    return f"{row.channel} orders come back more often"
