"""The segment builder takes money in the program's currency, not in minor units: a spend
condition of 1250 cents shows as 12.50, "12.50" typed is stored as 1250, and the summary reads
as money."""

from __future__ import annotations

from rapport.campaigns.segments.forms import (
    condition_form,
    conditions_from_form,
    field_names,
    summary,
)

EUROS = {"currency": [("EUR", "EUR")]}


def test_spend_condition_is_typed_and_shown_in_euros() -> None:
    condition = {"kind": "spent_more_than", "amount_minor": 1250, "days": 30}
    # when the builder shows it
    shown = condition_form(0, condition, choices=EUROS)
    # then the amount is in euros, labelled with the currency
    assert shown.as_json is None
    amount = next(w for w in shown.widgets if w.name == "amount_minor")
    assert amount.label == "Amount (EUR)"
    assert amount.step == "0.01"
    assert shown.values["amount_minor"] == "12.50"
    assert summary(condition, choices=EUROS) == "Spent more than €12.50 in the last 30 days"
    # and what is typed in euros is stored in cents
    fields = field_names(0, shown.widgets, {**shown.values, "amount_minor": "99.90"})
    fields["c0.kind"] = ["spent_more_than"]
    (typed,) = conditions_from_form(fields, choices=EUROS)
    assert typed["amount_minor"] == 9990


def test_a_yen_amount_has_no_decimals() -> None:
    yen = {"currency": [("JPY", "JPY")]}
    shown = condition_form(0, {"kind": "predicted_value", "min_minor": 5000}, choices=yen)
    low = next(w for w in shown.widgets if w.name == "min_minor")
    assert (low.label, low.step, shown.values["min_minor"]) == (
        "At least (JPY)",
        "1",
        "5000",
    )
