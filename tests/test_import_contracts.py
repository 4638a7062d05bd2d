"""The faces contract names each import that reaches past a domain's service and events, and
lets through what the architecture allows (docs/architecture.md)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import grimp
import pytest

from tests.import_contracts import FacesContract, IllegalImport

SHOP = {
    "__init__.py": "",
    "platform/__init__.py": "",
    "platform/db.py": "",
    "stock/__init__.py": "",
    "stock/models.py": "",
    "stock/service.py": "from shop.stock import models\n",
    "stock/events.py": "",
    "stock/api.py": "from shop.stock import service\n",
    "stock/counting.py": "from shop.stock import models\n",
    "orders/__init__.py": "",
    "orders/service.py": """\
        from shop.platform import db
        from shop.stock import service as stock
        from shop.stock import events as stock_events
        from shop.stock.counting import models
    """,
    "orders/api.py": "from shop.stock import api\n",
    "domains.py": "from shop.stock import api, models\n",
}


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> grimp.ImportGraph:
    for name, source in SHOP.items():
        path = tmp_path / "shop" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in [m for m in sys.modules if m == "shop" or m.startswith("shop.")]:
        monkeypatch.delitem(sys.modules, module)
    return grimp.build_graph("shop", cache_dir=None)


def _contract() -> FacesContract:
    return FacesContract(
        name="faces",
        session_options={"root_packages": ["shop"]},
        contract_options={
            "domains": ["shop.stock", "shop.orders"],
            "faces": ["service", "events"],
            "mounts": ["api", "models"],
            "mounting_modules": ["shop.domains"],
        },
    )


def test_imports_past_a_face_are_named_with_their_lines(shop: grimp.ImportGraph) -> None:
    # Given orders reaching stock's private counting module and (from its router) stock's router
    # When the contract checks the graph
    check = _contract().check(shop, verbose=False)

    # Then it is broken, naming exactly those two imports and where they are
    assert not check.kept
    assert sorted(check.metadata["illegal"], key=lambda link: link.imported) == [
        IllegalImport("shop.orders.api", "shop.stock.api", "shop.stock", (1,)),
        IllegalImport("shop.orders.service", "shop.stock.counting", "shop.stock", (4,)),
    ]


def test_faces_platform_and_the_composition_root_are_allowed(
    shop: grimp.ImportGraph, tmp_path: Path
) -> None:
    # Given the two offending imports removed: what is left uses stock's service and events,
    # the platform, and the composition root mounting stock's router and tables
    (tmp_path / "shop/orders/service.py").write_text(
        "from shop.platform import db\nfrom shop.stock import service, events\n"
    )
    (tmp_path / "shop/orders/api.py").write_text("from shop.orders import service\n")
    graph = grimp.build_graph("shop", cache_dir=None)

    # When the contract checks it
    check = _contract().check(graph, verbose=False)

    # Then it is kept
    assert check.kept, check.metadata["illegal"]
