"""Training, serving, consent, stock and rules through the recommend service, on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.models import StockLevel
from rapport.customers import service as customers
from rapport.platform import clock
from rapport.recommend import service
from rapport.recommend.algorithms import PARTS
from rapport.recommend.models import MerchRuleChange
from rapport.recommend.ranking import Context, rank
from rapport.recommend.schemas import RuleIn
from rapport.recommend.trained_model import Bundle, ProductFacts, Purchase, build

from .factories import NOW, PRODUCTS, purchases, seed_shop


@pytest.fixture
def shop(db: Session, tmp_path: Path) -> dict[str, str]:
    clock.set_clock(clock.FrozenClock(NOW))
    ids = seed_shop(db)
    service.train_model(db, data_dir=tmp_path, trained_by="test")
    return ids


def ask(db: Session, tmp_path: Path, **kw: object) -> service.Answer:
    return service.recommend(db, request=service.Request(**kw), data_dir=tmp_path)  # type: ignore[arg-type]


def test_training_records_a_version_and_serves_it(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    versions = service.list_versions(db)
    assert len(versions) == 1
    version = versions[0]
    assert version.customers == 12
    assert version.items == len(PRODUCTS)
    assert version.trained_by == "test"
    assert service.active_version(tmp_path) == version.version
    assert (tmp_path / "models" / "recommend" / version.file_name).exists()
    answer = ask(db, tmp_path, placement="home", customer_id=shop["c2"])
    assert answer.model_version == version.version
    assert answer.personalized is True
    assert answer.items[0].sku == "G-COFFEE"
    assert answer.items[0].reason == "buy_again"


def test_without_personalization_consent_the_answer_is_not_personal(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    customers.set_consent(
        db, customer_id=shop["c2"], purpose="personalization", granted=False, source="test"
    )
    answer = ask(db, tmp_path, placement="home", customer_id=shop["c2"], limit=5)
    anonymous = ask(db, tmp_path, placement="home", limit=5)
    assert answer.personalized is False
    assert [i.sku for i in answer.items] == [i.sku for i in anonymous.items]
    assert not {i.reason for i in answer.items} & {"buy_again", "because_you_bought"}


def test_a_new_customer_gets_popular_items(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    from rapport.customers.schemas import CustomerIn

    newcomer = customers.create_customer(
        db, customer=CustomerIn(email="new@example.com", consents={"personalization": True})
    )
    answer = ask(db, tmp_path, placement="home", customer_id=newcomer.customer_id, limit=3)
    assert answer.personalized is True
    assert answer.items
    assert {i.reason for i in answer.items} <= {"popular", "trending"}


def test_store_bound_requests_leave_out_items_out_of_stock_there(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    catalog.set_stock(db, levels=[("G-COFFEE", "st-par-01", 0)])
    db.commit()
    at_paris = ask(db, tmp_path, placement="home", customer_id=shop["c2"], store_id="st-par-01")
    at_lyon = ask(db, tmp_path, placement="home", customer_id=shop["c2"], store_id="st-lyo-01")
    assert "G-COFFEE" not in [i.sku for i in at_paris.items]
    assert at_lyon.items[0].sku == "G-COFFEE"
    # A point near Paris binds the request to the Paris store.
    near = ask(
        db, tmp_path, placement="home", customer_id=shop["c2"], latitude=48.86, longitude=2.35
    )
    assert near.store_id == "st-par-01"
    assert "G-COFFEE" not in [i.sku for i in near.items]


def test_store_bound_requests_keep_items_the_store_does_not_track(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    # Paris keeps no stock level for coffee: the till sells it there without limit, so it is
    # not out of stock there (a level of 0 would be).
    db.execute(
        delete(StockLevel).where(StockLevel.sku == "G-COFFEE", StockLevel.store_id == "st-par-01")
    )
    db.commit()
    at_paris = ask(db, tmp_path, placement="home", customer_id=shop["c2"], store_id="st-par-01")
    assert at_paris.items[0].sku == "G-COFFEE"


def test_recently_bought_sofa_is_not_recommended_again(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    answer = ask(db, tmp_path, placement="home", customer_id=shop["c3"], limit=9)
    found = [i.sku for i in answer.items]
    assert "H-SOFA" not in found  # bought three days ago, and nobody buys a second
    assert "G-COFFEE" in found  # bought last week too, but coffee comes back


def test_segment_rules_apply_only_to_their_segment_and_only_in_their_window(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    from datetime import timedelta

    service.create_rule(
        db,
        rule=RuleIn(
            name="Montepulciano for guests",
            action="pin",
            sku="W-MONTE",
            position=1,
            segment="anonymous",
            placement="home",
            starts_at=NOW - timedelta(days=1),
            ends_at=NOW + timedelta(days=1),
        ),
        by="merch@example.com",
    )
    assert ask(db, tmp_path, placement="home").items[0].sku == "W-MONTE"
    assert ask(db, tmp_path, placement="home", customer_id=shop["c2"]).items[0].sku != "W-MONTE"
    assert ask(db, tmp_path, placement="email").items[0].sku != "W-MONTE"
    later = ask(db, tmp_path, placement="home", at=NOW + timedelta(days=2))
    assert later.items[0].sku != "W-MONTE"


def test_two_boosts_of_one_category_do_not_multiply_the_newest_applies(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    def chablis() -> float:
        found = ask(db, tmp_path, placement="home", limit=20).items
        return next(item.score for item in found if item.sku == "W-CHABLIS")

    def boost(name: str, factor: float, **window: object) -> None:
        rule = RuleIn(
            name=name, action="boost", attribute="category", value="Wine", factor=factor,
            **window,  # type: ignore[arg-type]
        )  # fmt: skip
        service.create_rule(db, rule=rule, by="merch@example.com")

    plain = chablis()
    boost("Wine x2", 2.0)
    boost("Wine x3", 3.0)
    # the rule made last applies, where both did (x6)
    assert chablis() == pytest.approx(3 * plain, rel=1e-4)
    # a boost that began later than both (an older row, begun since) is newer still
    boost("Summer wine x1.5", 1.5, starts_at=NOW - timedelta(hours=1))
    assert chablis() == pytest.approx(1.5 * plain, rel=1e-4)


def test_every_rule_change_is_audited(db: Session, tmp_path: Path, shop: dict[str, str]) -> None:
    rule = service.create_rule(
        db, rule=RuleIn(name="No sofas", action="exclude", sku="H-SOFA"), by="ana"
    )
    service.update_rule(
        db,
        rule_id=rule.id,
        rule=RuleIn(name="No sofas", action="exclude", sku="H-SOFA", active=False),
        by="ben",
    )
    service.delete_rule(db, rule_id=rule.id, by="cleo")
    changes = service.rule_changes(db, rule_id=rule.id)
    assert [(c.change, c.changed_by) for c in changes] == [
        ("deleted", "cleo"),
        ("updated", "ben"),
        ("created", "ana"),
    ]
    updated = next(c for c in changes if c.change == "updated")
    assert updated.before is not None
    assert updated.before["active"] is True
    assert updated.after is not None
    assert updated.after["active"] is False
    assert db.query(MerchRuleChange).count() == 3


def test_training_is_deterministic(tmp_path: Path) -> None:
    first, second = (build(purchases(), PRODUCTS, version="v", now=NOW) for _ in range(2))
    first.save(tmp_path / "a.npz")
    second.save(tmp_path / "b.npz")
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def _catalogue(prefix: str) -> tuple[list[Purchase], list[ProductFacts]]:
    products = [
        ProductFacts(f"{prefix}-{n}", f"{prefix} item {n}", f"Cat{n % 3}/Sub", None, 100 + n)
        for n in range(30)
    ]
    lines = [Purchase(f"{prefix}-o{n}", f"u{n % 7}", products[n % 30].sku, NOW) for n in range(120)]
    return lines, products


def test_serving_swaps_models_atomically_between_requests(tmp_path: Path) -> None:
    """Readers take the current model while another thread switches versions back and forth:
    every answer comes wholly from one version (its items all carry that version's prefix)."""
    directory = tmp_path / "models" / "recommend"
    for prefix in ("A", "B"):
        lines, products = _catalogue(prefix)
        build(lines, products, version=prefix, now=NOW).save(directory / f"{prefix}.npz")
    holder = service.ModelHolder(directory)
    service.make_current(directory, "A")
    errors: list[str] = []
    answered: set[str] = set()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            bundle = holder.current()
            assert bundle is not None
            items = rank(bundle, Context("home", limit=5), [])
            if not items or any(not i.sku.startswith(bundle.version) for i in items):
                errors.append(f"{bundle.version}: {[i.sku for i in items]}")
            answered.add(bundle.version)

    readers = [threading.Thread(target=serve) for _ in range(3)]
    for reader in readers:
        reader.start()
    for n in range(6):
        service.make_current(directory, "B" if n % 2 == 0 else "A")
        holder._checked = -float("inf")  # as if a second had passed
        stop.wait(0.15)
    stop.set()
    for reader in readers:
        reader.join()
    assert not errors
    assert answered == {"A", "B"}


def test_no_model_yet_answers_empty(db: Session, tmp_path: Path) -> None:
    answer = ask(db, tmp_path, placement="home")
    assert answer.model_version is None
    assert answer.items == []


def test_item_placements_need_an_item(db: Session, tmp_path: Path) -> None:
    from rapport.platform.errors import InvalidInput

    with pytest.raises(InvalidInput) as failure:
        ask(db, tmp_path, placement="product_similar")
    assert failure.value.field == "item_id"
    with pytest.raises(InvalidInput) as failure:
        ask(db, tmp_path, placement="cart")
    assert failure.value.field == "cart"


def test_loaded_bundle_answers_like_the_trained_one(tmp_path: Path) -> None:
    trained = build(purchases(), PRODUCTS, version="v", now=NOW)
    trained.save(tmp_path / "v.npz")
    loaded = Bundle.load(tmp_path / "v.npz")
    for context in (
        Context("home", customer=trained.user_index["c1"]),
        Context("product_similar", item="W-CHIANTI"),
        Context("cart", cart=("W-RIOJA",)),
    ):
        assert rank(loaded, context, []) == rank(trained, context, [])


def test_a_warmed_model_builds_nothing_more_for_its_first_requests(tmp_path: Path) -> None:
    # Every part weighed (UP-CF reads its recent baskets from the history): what a request
    # reads must be built once by warm(), not by the first requests after a model loads
    # (a second on Ta-Feng, and each concurrent first request built it again).
    every_part = {**service.DEFAULT_BLEND, **dict.fromkeys(PARTS, 1.0)}
    build(purchases(), PRODUCTS, version="v", now=NOW, blend_params=every_part, tuned=False).save(
        tmp_path / "v.npz"
    )
    loaded = Bundle.load(tmp_path / "v.npz")
    assert set(loaded.blend._used()) == {"knn", "ease", "als", "upcf"}
    service.warm(loaded)
    built = set(loaded.data._cache)
    customer = loaded.user_index["c1"]
    for context in (
        Context("home", customer=customer),
        Context("discover", customer=customer, exclude_purchased=True),
        Context("email", customer=customer),
        Context("product_similar", item="W-CHIANTI"),
        Context("product_complements", item="W-CHIANTI"),
        Context("cart", cart=("W-RIOJA",)),
        Context("home"),
    ):
        assert rank(loaded, context, [])
    assert set(loaded.data._cache) == built


def test_the_event_loop_answers_only_what_cannot_make_it_wait(
    db: Session, tmp_path: Path, shop: dict[str, str]
) -> None:
    asked = service.Request(placement="home", customer_id=shop["c2"])
    now = service.recommend_now(db, request=asked, data_dir=tmp_path)
    if db.get_bind().dialect.name == "sqlite":
        # SQLite's readers never wait, and the trained model is in memory: answered in place,
        # exactly as recommend() answers
        assert now is not None
        assert now == service.recommend(db, request=asked, data_dir=tmp_path)
    else:
        # PostgreSQL's round trips would block the loop: the caller uses a worker thread
        assert now is None


def test_a_model_still_to_load_is_not_loaded_on_the_event_loop(tmp_path: Path) -> None:
    directory = tmp_path / "models" / "recommend"
    holder = service.ModelHolder(directory)
    # nothing trained yet: nothing to load, the (empty) answer needs no wait
    assert holder.ready() is True
    for prefix in ("A", "B"):
        lines, products = _catalogue(prefix)
        build(lines, products, version=prefix, now=NOW).save(directory / f"{prefix}.npz")
    service.make_current(directory, "A")
    # a model file to load (seconds for a real one): not ready until someone has loaded it
    assert holder.ready() is False
    current = holder.current()
    assert current is not None
    assert current.version == "A"
    assert holder.ready() is True
    # a new version made current: not ready again once the holder looks, until loaded
    service.make_current(directory, "B")
    holder._checked = -float("inf")  # as if a second had passed
    assert holder.ready() is False
    current = holder.current()
    assert current is not None
    assert current.version == "B"
    assert holder.ready() is True
