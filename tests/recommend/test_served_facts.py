"""Recommendations as served against the catalogue and the customer as they are now: facts and
category rules after a product changed since training, segment rules without consent, rule
values no product has, pins of products added since training, far-off moments. On SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import ProductUpsert
from rapport.customers import service as customers
from rapport.loyalty.models import TierStanding
from rapport.platform.errors import InvalidInput
from rapport.platform.privacy import PrivacySubject
from rapport.recommend import service
from rapport.recommend.schemas import RuleIn

from . import test_service
from .factories import NOW
from .test_service import ask

shop = test_service.shop  # the trained shop (a fixture)


def skus(answer: service.Answer) -> list[str]:
    return [item.sku for item in answer.items]


def put_product(db: Session, sku: str, name: str, category: str, price_minor: int) -> None:
    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku=sku,
                name=name,
                category_path=category,
                brand="Domaine Clair",
                price_minor=price_minor,
                cost_minor=100,
                currency="EUR",
                country_of_origin="FR",
            )
        ],
    )
    db.commit()


def rule(db: Session, **settings: object) -> None:
    service.create_rule(db, rule=RuleIn(**settings), by="merch@example.com")  # type: ignore[arg-type]


def test_served_facts_and_category_rules_are_the_catalogues_now(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    put_product(db, "W-CHABLIS", "Chablis (renamed)", "Kitchen/Tools", 1234)
    served = {item.sku: item for item in ask(db, tmp_path, placement="home", limit=20).items}
    chablis = served["W-CHABLIS"]
    assert (chablis.name, chablis.category, chablis.price_minor) == (
        "Chablis (renamed)",
        "Kitchen/Tools",
        1234,
    )
    assert chablis.score > 0  # the model's score still ranks it
    # a filter on its old category leaves it out; an exclusion of its new one too, at once
    rule(db, name="Wine only", action="filter", attribute="category", value="Wine")
    assert "W-CHABLIS" not in skus(ask(db, tmp_path, placement="home", limit=20))
    service._rules_cache.clear()
    for row in service.list_rules(db):
        service.delete_rule(db, rule_id=row.id, by="merch@example.com")
    rule(db, name="No kitchen", action="exclude", attribute="category", value="Kitchen")
    shown = skus(ask(db, tmp_path, placement="home", limit=20))
    assert shown
    assert not {"W-CHABLIS", "K-CORK", "K-GLASS"} & set(shown)


def test_a_category_boost_follows_a_product_into_its_new_category(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    def score(sku: str) -> float:
        items = ask(db, tmp_path, placement="home", limit=20).items
        return next(item.score for item in items if item.sku == sku)

    plain = score("W-CHABLIS")
    rule(db, name="Kitchen x3", action="boost", attribute="category", value="Kitchen", factor=3)
    assert score("W-CHABLIS") == pytest.approx(plain, rel=1e-4)
    put_product(db, "W-CHABLIS", "Chablis", "Kitchen/Tools", 1400)
    assert score("W-CHABLIS") == pytest.approx(3 * plain, rel=1e-4)


def _gold(db: Session, customer_id: str) -> None:
    db.add(
        TierStanding(
            customer_id=customer_id,
            tier_id="gold",
            since=NOW - timedelta(days=10),
            review_at=NOW + timedelta(days=355),
            qualifying_value=100_000,
            updated_at=NOW,
        )
    )
    db.commit()


def test_tier_rules_do_not_apply_without_personalization_consent(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    customer = shop["c2"]
    _gold(db, customer)
    customers.identify_customer(
        db, identities={"email": "c2@example.com", "anonymous_id": "anon-c2"}
    )
    rule(db, name="Gold sofa", action="pin", sku="H-SOFA", position=1, segment="gold")
    rule(db, name="Customers' pasta", action="pin", sku="G-PASTA", position=2, segment="customers")
    assert skus(ask(db, tmp_path, placement="home", customer_id=customer))[:2] == [
        "H-SOFA",
        "G-PASTA",
    ]
    customers.set_consent(
        db, customer_id=customer, purpose="personalization", granted=False, source="test"
    )
    db.commit()
    for who in ({"customer_id": customer}, {"anonymous_id": "anon-c2"}):
        answer = ask(db, tmp_path, placement="home", **who)
        assert answer.personalized is False
        assert skus(answer)[0] != "H-SOFA"  # the tier is personal data
        assert skus(answer)[1] == "G-PASTA"  # being a customer is not
    exported = service.export_customer_data(
        db, subject=PrivacySubject(customer_id=customer, customer_ids=(customer,))
    )
    # Spelt as the API's `personalized` and the consent purpose are.
    assert exported["recommendations"] == {"personalized": False, "segments": ["customers"]}


@pytest.mark.parametrize(
    ("attribute", "value", "said"),
    [
        ("category", "wine", "use 'Wine'"),
        ("category", "Wines/Red", "'Wine/Red'"),
        ("brand", "Castelo", "'Castello'"),
        ("country_of_origin", "XX", "some that exist"),
    ],
)
def test_a_rule_value_no_product_has_is_refused_saying_which_exist(
    db: Session, tmp_path: Path, shop: dict[str, str], attribute: str, value: str, said: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        rule(db, name="Typo", action="filter", attribute=attribute, value=value)
    assert refused.value.field == "value"
    assert said in str(refused.value)
    assert service.list_rules(db) == []
    # an update to such a value is refused too; the values products have are accepted
    rule(db, name="Red", action="filter", attribute="category", value="Wine/Red")
    row = service.list_rules(db)[0]
    typo = RuleIn(name="Red", action="filter", attribute=attribute, value=value)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        service.update_rule(db, rule_id=row.id, rule=typo, by="merch@example.com")
    rule(db, name="Italian", action="boost", attribute="country_of_origin", value="IT", factor=2)


def test_a_pin_of_a_product_added_since_training_shows_at_once(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    put_product(db, "W-NEW", "Crémant", "Wine/Sparkling", 1850)
    catalog.set_stock(db, levels=[("W-NEW", "st-par-01", 4), ("W-NEW", "st-lyo-01", 0)])
    db.commit()
    rule(db, name="New Crémant", action="pin", sku="W-NEW", position=2, placement="home")
    for who in ({}, {"customer_id": shop["c2"]}, {"store_id": "st-par-01"}):
        items = ask(db, tmp_path, placement="home", **who).items
        assert items[1].sku == "W-NEW", who
        assert (items[1].name, items[1].category, items[1].price_minor) == (
            "Crémant",
            "Wine/Sparkling",
            1850,
        )
        assert items[1].reason == "pinned"
    # not where the rule does not reach, nor where it is out of stock, nor once excluded
    assert "W-NEW" not in skus(ask(db, tmp_path, placement="email"))
    assert "W-NEW" not in skus(ask(db, tmp_path, placement="home", store_id="st-lyo-01"))
    rule(db, name="No sparkling", action="exclude", attribute="category", value="Wine/Sparkling")
    assert "W-NEW" not in skus(ask(db, tmp_path, placement="home"))


@pytest.mark.parametrize(
    "at",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1, 1, 3, tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
    ],
)
def test_a_moment_at_the_ends_of_the_calendar_answers(
    db: Session, tmp_path: Path, shop: dict[str, str], at: datetime
) -> None:
    answer = ask(db, tmp_path, placement="home", customer_id=shop["c2"], at=at)
    assert answer.personalized is True
    assert service.recently_browsed(db, customer_id=shop["c2"], at=at) == ()
