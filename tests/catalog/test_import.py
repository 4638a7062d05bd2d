"""``rapport import products``: checked before writing, idempotent, errors naming the row."""

from __future__ import annotations

import gzip

import pytest

from rapport.catalog import service as catalog
from rapport.catalog.importer import import_products_file
from rapport.platform.errors import MalformedFile

CSV = (
    "sku,name,category_path,brand,price,cost,currency,country_of_origin,grape\n"
    "W-1,Chianti Classico,Wine/Red,Castello,12.00,7.10,EUR,IT,Sangiovese\n"
    "K-1,Corkscrew,Kitchen/Tools,,9.50,,EUR,FR,\n"
)


def test_products_import_once_with_attributes(db, tmp_path) -> None:
    path = tmp_path / "catalogue.csv.gz"
    path.write_bytes(gzip.compress(CSV.encode()))
    heard: list[tuple[int, int]] = []
    first = import_products_file(db, path, progress=lambda done, total: heard.append((done, total)))
    # the progress bar knows the total once the file is checked, and ends full
    assert heard == [(0, 2), (2, 2)]
    second = import_products_file(db, path)
    assert (first.rows, first.written, second.written) == (2, 2, 2)
    assert catalog.count_products(db) == 2
    wine = catalog.get_product(db, sku="W-1")
    assert (wine.price_minor, wine.cost_minor, wine.brand, wine.attributes) == (
        1200,
        710,
        "Castello",
        {"grape": "Sangiovese"},
    )
    tool = catalog.get_product(db, sku="K-1")
    assert (tool.price_minor, tool.cost_minor, tool.brand, tool.attributes) == (950, 0, None, {})


@pytest.mark.parametrize(
    ("_case", "content", "line", "column"),
    [
        ("missing column", "sku,name,category_path,currency\nA,B,Toys,EUR\n", 1, None),
        ("bad price", CSV + "X-1,Thing,Toys,,twelve,,EUR,CN,\n", 4, "price"),
        ("half a cent", CSV + "X-1,Thing,Toys,,1.005,,EUR,CN,\n", 4, "price"),
        ("bad currency", CSV + "X-1,Thing,Toys,,1.00,,euro,CN,\n", 4, "currency"),
        ("currency not in use", CSV + "X-1,Thing,Toys,,1.00,,XYZ,CN,\n", 4, "currency"),
        ("ragged row", CSV + "X-1,Thing\n", 4, None),
    ],
)
def test_malformed_file_names_the_row_and_writes_nothing(
    db, tmp_path, _case, content, line, column
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(MalformedFile) as error:
        import_products_file(db, path)
    assert error.value.line == line
    assert error.value.column == column
    assert "Value error" not in str(error.value)  # the validator's own words, as a person reads
    assert catalog.count_products(db) == 0


def test_a_catalogue_without_categories_files_its_products_as_uncategorised(db, tmp_path) -> None:
    # given a shop's export with no category column, and one with a category left empty
    bare = tmp_path / "bare.csv"
    bare.write_text("sku,name,price,currency\nM-1,Mug,4.50,GBP\n")
    some = tmp_path / "some.csv"
    some.write_text("sku,name,category_path,price,currency\nT-1,Teapot,,12.00,GBP\n")
    # when both are imported
    assert import_products_file(db, bare).written == 1
    assert import_products_file(db, some).written == 1
    # then both products are there, filed where order imports file theirs
    assert catalog.get_product(db, sku="M-1").category_path == catalog.UNCATEGORISED
    assert catalog.get_product(db, sku="T-1").category_path == catalog.UNCATEGORISED
