"""The recommendations overview shows what the serving version weighs and how it measured."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import ProductUpsert
from rapport.platform import service as platform
from rapport.platform.settings import Settings
from rapport.recommend import service
from rapport.recommend.schemas import RuleIn
from tests.platform.admin_forms import page_form, post_form, typed

from .factories import seed_shop

PASSWORD = "correct horse battery"

MEASURED = {
    "measured": True,
    "window_days": 28.0,
    "earlier_window_days": 28.0,
    "repeat": {
        "users": 2000,
        "weights": {
            "own": 1.0,
            "knn": 0.1,
            "ease": 0.0,
            "als": 0.25,
            "popular": 0.05,
            "upcf": 2.0,
            "season": 0.0,
        },
        "parts": {
            "own": 0.2984,
            "knn": 0.1731,
            "ease": 0.228,
            "als": 0.2558,
            "popular": 0.0915,
            "upcf": 0.303,
        },
        "served": 0.3155,
        "best_part": "upcf",
        "fallback": None,
    },
    "discover": {
        "users": 1800,
        "weights": {
            "own": 0.0,
            "knn": 0.1,
            "ease": 1.0,
            "als": 1.0,
            "popular": 0.05,
            "upcf": 0.0,
            "season": 0.5,
        },
        "parts": {"knn": 0.1031, "ease": 0.1248, "als": 0.1139, "popular": 0.0735, "upcf": 0.099},
        "served": 0.1322,
        "best_part": "ease",
        "fallback": None,
    },
    "own": {"half_life_days": 60.0, "repeat_power": 0.5, "habit_power": 0.5},
}


def _version(db: Session, name: str, metrics: dict[str, Any], day: int) -> None:
    db.add(
        service.ModelVersion(
            version=name,
            trained_at=datetime(2026, 12, day, tzinfo=UTC),
            file_name=f"{name}.npz",
            customers=4000,
            items=3400,
            purchases=230_000,
            train_seconds=12.5,
            params={},
            metrics=metrics,
            trained_by="test",
        )
    )
    db.commit()


@pytest.fixture
def signed_in(client: Any, db: Session) -> None:
    platform.create_admin_user(db, email="merch@example.com", password=PASSWORD)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/login").text)
    assert token is not None
    client.post(
        "/admin/login",
        data={"email": "merch@example.com", "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )


def test_the_overview_shows_the_weights_chosen_and_the_blend_against_its_best_part(
    client: Any, db: Session, settings: Settings, signed_in: None
) -> None:
    # an older version (measured with repeats only, before weights were tuned) and the new one
    _version(db, "v-old", {"rapport": {"recall@20": 0.19}, "top_frequency": {"recall@20": 0.2}}, 1)
    _version(db, "v-new", MEASURED, 2)
    directory = service.models_directory(settings.data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    service.make_current(directory, "v-new")

    page = client.get("/admin/recommendations").text
    said = re.sub(r"\s+", " ", page)
    assert "on the last 28 days and the 28 before them" in said
    assert "where several small steps together clearly find more, all of them" in said
    weights = page[page.index('data-testid="blend-weights"') :]
    weights = weights[: weights.index("</table>")]
    rows = dict(re.findall(r"<tr><td>([^<]+)</td>\s*<td class=\"num\">([^<]+)</td>", weights))
    assert rows["Customers like them"].strip() == "2.00"
    assert rows["EASE"].strip() == "0.00"
    # the in-season boost's power, per protocol
    season = re.search(
        r"<td>In-season boost \(power\)</td>\s*<td class=\"num\">([^<]+)</td>\s*"
        r"<td class=\"num\">([^<]+)</td>",
        weights,
    )
    assert season is not None
    assert (season.group(1).strip(), season.group(2).strip()) == ("0.00", "0.50")
    # the habit factor, not a searched weight, is said under the table
    habit = re.sub(r"\s+", " ", page[page.index('data-testid="habit-factor"') :][:400])
    assert "to the power 0.5" in habit
    verdict = re.sub(r"\s+", " ", page[page.index('data-testid="verdict-repeat"') :][:400])
    assert "31.6%" in verdict
    assert "30.3%" in verdict
    assert "(Customers like them)" in verdict  # the part as the table names it
    discover = re.sub(r"\s+", " ", page[page.index('data-testid="verdict-discover"') :][:400])
    assert "13.2%" in discover
    assert "12.5%" in discover
    # the chart of parts plots the figures stored with the version (as percentages)
    assert '"Blend served"' in page
    assert "31.55" in page
    assert "13.22" in page
    # both versions are on the per-version chart: the old one with repeats only
    assert "v-old" in page
    assert "19.0%" in page


def test_a_version_training_could_not_measure_says_why_and_shows_the_default_weights(
    client: Any, db: Session, settings: Settings, signed_in: None
) -> None:
    # given a shop whose history was too short to measure: the report training keeps
    from rapport.recommend.tuning import tune
    from tests.recommend.test_tuning import grocery

    report = tune(grocery(customers=20), dict(service.DEFAULT_BLEND)).report
    _version(db, "v-short", report, 3)
    directory = service.models_directory(settings.data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    service.make_current(directory, "v-short")

    page = client.get("/admin/recommendations").text
    said = re.sub(r"\s+", " ", page)

    # then no empty chart: the page says nothing could be measured, why, and what serves
    assert 'id="metrics-chart"' not in page
    assert "No version could be measured yet" in said
    notice = said[said.index('data-testid="not-measured"') :]
    assert "Version v-short could not be measured on the history's last weeks: only" in notice
    assert "at least 50 are needed to measure" in notice
    weights = page[page.index('data-testid="blend-weights"') :]
    weights = weights[: weights.index("</table>")]
    rows = dict(re.findall(r"<tr><td>([^<]+)</td>\s*<td class=\"num\">([^<]+)</td>", weights))
    assert rows["Own purchases"].strip() == "1.00"


def _rule_form(client: Any, path: str, **typed_in: str) -> list[tuple[str, str]]:
    """The rule form at ``path`` as the page shows it, with the given fields typed in (a select
    is set like a text box)."""
    action = "/admin/recommendations/rules" + (
        "" if path.endswith("new") else path[path.rindex("/") :]
    )
    fields = page_form(client.get(path).text, action=action, testid="rule-form")
    for name, value in typed_in.items():
        fields = typed(fields, name, value)
    return fields


def test_a_setting_the_action_ignores_is_refused_beside_its_field(
    client: Any, db: Session, signed_in: None
) -> None:
    seed_shop(db)
    # given a boost of a category with a position, which only a pin has
    fields = _rule_form(
        client,
        "/admin/recommendations/rules/new",
        name="Wine up",
        action="boost",
        attribute="category",
        value="Wine",
        factor="2",
        position="3",
    )
    answer = post_form(client, "/admin/recommendations/rules", fields)
    # then the form comes back with the message beside Position, what was typed kept
    assert answer.status_code == 422
    beside = re.search(r'data-field-error="position">([^<]+)<', answer.text)
    assert beside is not None
    assert beside.group(1) == "Position: boost takes no position: only a pin has one"
    assert page_form(answer.text, action="/admin/recommendations/rules", testid="rule-form")
    assert 'value="3"' in answer.text
    # and nothing is saved
    assert service.list_rules(db) == []
    # without the position it is saved
    answer = post_form(client, "/admin/recommendations/rules", typed(fields, "position", ""))
    assert answer.status_code == 200
    assert [(r.action, r.position, r.factor) for r in service.list_rules(db)] == [
        ("boost", None, 2.0)
    ]


@pytest.mark.parametrize(
    ("typed_in", "field", "message"),
    [
        (
            {"factor": "abc"},
            "factor",
            "Factor: Input should be a valid number, unable to parse string as a number",
        ),
        ({"factor": "nan"}, "factor", "Factor: Input should be a finite number"),
        ({"factor": "inf"}, "factor", "Factor: Input should be a finite number"),
        (
            {"factor": "1"},
            "factor",
            "Factor: boost multiplies the score by a factor from 1.1 to 100, not 1: a factor "
            "this close to 1 changes (almost) nothing",
        ),
        (
            {"starts_at": "2026-12-10T10:00", "ends_at": "2026-12-09T10:00"},
            "ends_at",
            "Until: must be after From",
        ),
        ({"sku": "NO-SUCH"}, "sku", "SKU: "),
    ],
)
def test_each_rule_form_message_starts_with_its_fields_label(
    client: Any, db: Session, signed_in: None, typed_in: dict[str, str], field: str, message: str
) -> None:
    seed_shop(db)
    fields = _rule_form(
        client, "/admin/recommendations/rules/new", name="Up", action="boost", **{
            "attribute": "" if "sku" in typed_in else "category",
            "value": "" if "sku" in typed_in else "Wine",
            "factor": "2",
            **typed_in,
        }
    )  # fmt: skip
    answer = post_form(client, "/admin/recommendations/rules", fields)
    assert answer.status_code == 422
    beside = re.search(rf'data-field-error="{field}"[^>]*>([^<]+)<', answer.text)
    assert beside is not None, answer.text
    assert beside.group(1).startswith(message)
    assert service.list_rules(db) == []


def test_saving_a_rule_unchanged_keeps_every_stored_value_and_audits_nothing(
    client: Any, db: Session, signed_in: None
) -> None:
    seed_shop(db)
    # given a rule whose window starts at a moment with seconds, at another offset than UTC
    starts = datetime(2026, 12, 8, 0, 0, 30, 500000, tzinfo=timezone(timedelta(hours=2)))
    rule = service.create_rule(
        db,
        rule=RuleIn(
            name="Wine up",
            action="boost",
            attribute="category",
            value="Wine",
            factor=1.2345678,
            starts_at=starts,
        ),
        by="api key shop",
    )
    path = f"/admin/recommendations/rules/{rule.id}"

    # when its form is opened and saved as it is
    answer = post_form(client, path, _rule_form(client, path))

    # then nothing is changed, nor audited, and the page says so
    assert answer.status_code == 200
    assert f"Rule {rule.id} (Wine up) nothing changed" in answer.text
    db.expire_all()
    kept = service.get_rule(db, rule_id=rule.id)
    assert kept.starts_at == starts  # 22:00:30.5 UTC, not 22:00:00
    assert kept.factor == 1.2345678  # not the 1.23457 the form shows
    assert kept.updated_by == "api key shop"
    assert [c.change for c in service.rule_changes(db, rule_id=rule.id)] == ["created"]

    # when only its name is changed, only the name changes, and the audit says just that
    answer = post_form(client, path, _rule_form(client, path, name="Wine up, gently"))
    assert f"Rule {rule.id} (Wine up, gently) saved" in answer.text
    db.expire_all()
    kept = service.get_rule(db, rule_id=rule.id)
    assert (kept.name, kept.starts_at, kept.factor) == ("Wine up, gently", starts, 1.2345678)
    change = service.rule_changes(db, rule_id=rule.id)[0]
    assert change.change == "updated"
    differs = {k for k in change.after or {} if (change.before or {}).get(k) != change.after[k]}
    assert differs == {"name"}

    # and a new moment typed in the form is taken, to the minute
    answer = post_form(client, path, _rule_form(client, path, starts_at="2026-12-09T08:15"))
    db.expire_all()
    assert service.get_rule(db, rule_id=rule.id).starts_at == datetime(
        2026, 12, 9, 8, 15, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            "placement=product_similar",
            "item_id",
            "Enter the product&#39;s SKU: this placement shows items similar to one product",
        ),
        (
            "placement=product_complements&item_id=%20",
            "item_id",
            "Enter the product&#39;s SKU: this placement shows items that go with one product",
        ),
        (
            "placement=cart&cart=%2C",
            "cart",
            "Enter at least one SKU: this placement shows items that go with a cart",
        ),
        ("placement=home&device=toaster", "device", "Device: Unknown device &#39;toaster&#39;"),
        (
            "placement=home&item_id=W-CHIANTI",
            "item_id",
            "Leave the product empty: this placement shows no items about one product",
        ),
        ("placement=product_similar&item_id=NOPE", "item_id", "Product (SKU): product NOPE"),
    ],
)
def test_the_preview_says_what_is_missing_beside_the_field_in_the_forms_words(
    client: Any, db: Session, settings: Settings, signed_in: None, query: str, field: str,
    message: str,
) -> None:  # fmt: skip
    seed_shop(db)
    if "NOPE" in query:  # a product is looked up once a model is there
        service.train_model(db, data_dir=settings.data_dir, trained_by="test")
    answer = client.get(f"/admin/recommendations/preview?{query}")
    assert answer.status_code in (404, 422)
    beside = re.search(rf'data-field-error="{field}"[^>]*>([^<]+)<', answer.text)
    assert beside is not None, answer.text[answer.text.find("preview-form") :][:2000]
    assert beside.group(1).startswith(message)
    # the API's parameter names are not what the form says
    assert "needs item_id" not in answer.text
    assert "cart placement needs" not in answer.text


def test_every_setting_a_changed_action_refuses_is_said_at_once_beside_its_field(
    client: Any, db: Session, signed_in: None
) -> None:
    seed_shop(db)
    # given a boost of a category by a factor of 2
    rule = service.create_rule(
        db,
        rule=RuleIn(name="Wine up", action="boost", attribute="category", value="Wine", factor=2),
        by="test",
    )
    # when its action is switched to pin, with a SKU and position 2, the rest left as it was
    path = f"/admin/recommendations/rules/{rule.id}"
    fields = _rule_form(client, path, action="pin", sku="W-MONTE", position="2")
    answer = post_form(client, path, fields)
    # then every setting a pin does not take is named at once, each beside its field
    assert answer.status_code == 422
    beside = dict(re.findall(r'data-field-error="(\w+)"[^>]*>([^<]+)<', answer.text))
    assert beside == {
        "attribute": "Attribute: pin takes no attribute: a pin places one sku",
        "value": "Equal to: pin takes no value: a pin places one sku",
        "factor": "Factor: pin takes no factor: only boost and bury have one",
    }
    assert "The rule was not saved: 3 fields to correct." in answer.text
    # and what was typed is kept
    kept = dict(page_form(answer.text, action=path, testid="rule-form"))
    assert (kept["action"], kept["sku"], kept["position"]) == ("pin", "W-MONTE", "2")
    # when those are cleared, it is saved as a pin
    for name in ("attribute", "value", "factor"):
        fields = typed(fields, name, "")
    assert post_form(client, path, fields).status_code == 200
    saved = service.get_rule(db, rule_id=rule.id)
    assert (saved.action, saved.sku, saved.position, saved.factor) == ("pin", "W-MONTE", 2, None)


def test_the_api_still_refuses_a_rule_by_its_first_wrong_setting() -> None:
    with pytest.raises(ValueError, match="pin takes no attribute"):
        RuleIn(name="x", action="pin", sku="S", position=2, attribute="category", value="W")


def _beside(text: str) -> dict[str, str]:
    return dict(re.findall(r'data-field-error="(\w+)"[^>]*>([^<]+)<', text))


def test_a_pin_without_sku_and_position_is_told_both_at_once(
    client: Any, db: Session, signed_in: None
) -> None:
    seed_shop(db)
    # given a new pin with neither SKU nor position
    new = "/admin/recommendations/rules/new"
    fields = _rule_form(client, new, name="Top", action="pin", sku="", position="")
    answer = post_form(client, "/admin/recommendations/rules", fields)
    # then both are marked, each beside its field, and counted
    assert answer.status_code == 422
    assert _beside(answer.text) == {
        "sku": "SKU: a pin needs sku and position",
        "position": "Position: a pin needs sku and position",
    }
    assert "The rule was not saved: 2 fields to correct." in answer.text


def test_a_boost_switched_to_pin_is_told_every_setting_at_once(
    client: Any, db: Session, signed_in: None
) -> None:
    seed_shop(db)
    # given a boost of a brand by 2, switched to pin with nothing else typed
    rule = service.create_rule(
        db,
        rule=RuleIn(
            name="Castello up", action="boost", attribute="brand", value="Castello", factor=2
        ),
        by="test",
    )
    path = f"/admin/recommendations/rules/{rule.id}"
    answer = post_form(client, path, _rule_form(client, path, action="pin"))
    # then the three settings a pin refuses and the two it lacks are all said
    assert answer.status_code == 422
    assert set(_beside(answer.text)) == {"sku", "position", "attribute", "value", "factor"}
    assert "The rule was not saved: 5 fields to correct." in answer.text


def test_catalogue_problems_come_with_the_rules_own_in_one_save(
    client: Any, db: Session, signed_in: None
) -> None:
    seed_shop(db)
    # given a filter on 'wine' (the category is 'Wine') that ends before it starts
    new = "/admin/recommendations/rules/new"
    fields = _rule_form(
        client, new, name="Wine only", action="filter", attribute="category", value="wine",
        starts_at="2026-12-10T10:00", ends_at="2026-12-09T10:00",
    )  # fmt: skip
    answer = post_form(client, "/admin/recommendations/rules", fields)
    # then the case and the dates are both said, in one go
    beside = _beside(answer.text)
    assert answer.status_code == 422
    assert set(beside) == {"value", "ends_at"}
    assert "use &#39;Wine&#39;" in beside["value"]
    assert "2 fields to correct" in answer.text
    # and a pin of an unknown SKU without a position is told both
    fields = _rule_form(client, new, name="Top", action="pin", sku="NO-SUCH", position="")
    answer = post_form(client, "/admin/recommendations/rules", fields)
    beside = _beside(answer.text)
    assert beside["sku"].startswith("SKU: No product &#39;NO-SUCH&#39; in the catalogue")
    assert beside["position"] == "Position: a pin needs sku and position"
    assert service.list_rules(db) == []


def test_a_category_with_a_trailing_slash_is_saved_without_it(
    client: Any, db: Session, signed_in: None
) -> None:
    seed_shop(db)
    new = "/admin/recommendations/rules/new"
    fields = _rule_form(
        client, new, name="Reds", action="filter", attribute="category", value="Wine/Red/"
    )
    assert post_form(client, "/admin/recommendations/rules", fields).status_code == 200
    assert [r.value for r in service.list_rules(db)] == ["Wine/Red"]


def test_a_tiny_shops_verdict_says_its_customers_are_too_few_to_tell(
    client: Any, db: Session, settings: Settings, signed_in: None
) -> None:
    # given a version measured on a small shop's few validation customers
    tiny = {
        **MEASURED,
        "repeat": {**MEASURED["repeat"], "users": 40},
        "discover": {**MEASURED["discover"], "users": 1},
    }
    _version(db, "v-tiny", tiny, 2)
    directory = service.models_directory(settings.data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    service.make_current(directory, "v-tiny")
    page = client.get("/admin/recommendations").text
    # then each verdict gives the figures but says they are too few to tell, not which is better
    repeat = re.sub(r"\s+", " ", page[page.index('data-testid="verdict-repeat"') :][:600])
    repeat = repeat[: repeat.index("</p>")]
    assert "on only 40 customers the blend served found 31.6%" in repeat
    assert "against 30.3% for its best part alone (Customers like them)" in repeat
    assert "on the customers its weights were chosen on" in repeat
    assert "too few to tell whether either does better (that takes at least 500)" in repeat
    discover = re.sub(r"\s+", " ", page[page.index('data-testid="verdict-discover"') :][:600])
    assert "on only 1 customer the blend" in discover
    assert "too few to tell" in discover


def test_the_preview_shows_each_price_in_its_products_currency(
    client: Any, db: Session, settings: Settings, signed_in: None
) -> None:
    # given a trained shop whose sofa is now priced in yen
    seed_shop(db)
    service.train_model(db, data_dir=settings.data_dir, trained_by="test")
    sofa = catalog.get_product(db, sku="H-SOFA")
    assert sofa is not None
    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku="H-SOFA",
                name=sofa.name,
                category_path=sofa.category_path,
                price_minor=89900,
                cost_minor=50000,
                currency="JPY",
            )
        ],
    )
    # when the home placement is previewed
    page = client.get("/admin/recommendations/preview?placement=home&limit=20").text
    row = re.search(r"Three-seat sofa.*?</tr>", page, re.S)
    # then its price reads in yen (89,900 yen, not 899.00 of the shop's currency)
    assert row is not None
    assert "89,900" in row.group(0)
    assert "899.00" not in row.group(0)
