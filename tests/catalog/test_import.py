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


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("-5", "'-5' must not be negative"),
        ("5.999", "'5.999' is not an amount in EUR such as 12.50 (at most 2 decimals)"),
        ("five", "'five' is not an amount in EUR such as 12.50"),
        (
            "99999999999999",
            "'99999999999999' is more than Rapport stores; the largest price is 21474836.47 EUR",
        ),
    ],
)
def test_a_price_is_refused_in_the_columns_own_units(db, tmp_path, cell, message) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"sku,name,price,currency\nX-1,Thing,{cell},EUR\n")
    with pytest.raises(MalformedFile) as error:
        import_products_file(db, path)
    assert error.value.detail == f"Line 2, column 'price': {message}"
    assert catalog.count_products(db) == 0


def test_a_sku_listed_twice_is_refused_naming_both_lines(db, tmp_path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text(CSV + "W-1,Chianti Riserva,Wine/Red,,19.00,,EUR,IT,\n")
    with pytest.raises(MalformedFile) as error:
        import_products_file(db, path)
    assert error.value.detail == (
        "Line 4, column 'sku': SKU 'W-1' is also on line 2; list each product once"
    )
    assert catalog.count_products(db) == 0


@pytest.mark.parametrize("separator", [";", "\t", "|"])
def test_a_file_separated_otherwise_is_read_by_its_header(db, tmp_path, separator) -> None:
    # given a catalogue from a spreadsheet that separates with something other than commas
    path = tmp_path / "catalogue.csv"
    path.write_text(
        separator.join(["sku", "name", "price", "currency", "grape"])
        + "\n"
        + separator.join(["W-1", "Chianti, Classico", "12.00", "EUR", "Sangiovese"])
        + "\n"
    )
    # when it is imported, then it is read as the comma-separated file would be
    assert import_products_file(db, path).written == 1
    wine = catalog.get_product(db, sku="W-1")
    assert (wine.name, wine.price_minor, wine.attributes) == (
        "Chianti, Classico",
        1200,
        {"grape": "Sangiovese"},
    )


def test_bytes_that_are_not_utf8_are_named(db, tmp_path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("sku,name,price,currency\nX-1,Th\xe9,1.00,EUR\n".encode("latin-1"))
    with pytest.raises(MalformedFile) as error:
        import_products_file(db, path)
    assert error.value.detail == (
        "Line 2, column 'name': this value is not UTF-8 text; export the file as UTF-8"
    )
