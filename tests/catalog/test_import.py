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


@pytest.mark.parametrize(
    ("row", "price_minor"),
    [
        ("PX-6,Yen whole,1200,JPY", 1200),  # the yen has no minor unit
        ("PX-7,Dinar,1.250,KWD", 1250),  # the dinar has three decimals
        ("PX-7,Dinar,1.255,KWD", 1255),
        ("PX-8,Euro,12.5,EUR", 1250),
        ("PX-9,Iraqi dinar,1.234,IQD", 1234),  # ISO 4217's 3 decimals, though CLDR shows none
        ("PX-10,Serbian dinar,12.34,RSD", 1234),  # ISO 4217's 2, though CLDR shows none
    ],
)
def test_a_price_has_the_decimals_of_its_currency(db, tmp_path, row, price_minor) -> None:
    path = tmp_path / "catalogue.csv"
    path.write_text(f"sku,name,price,currency\n{row}\n")
    assert import_products_file(db, path).written == 1
    assert catalog.get_product(db, sku=row.split(",")[0]).price_minor == price_minor


@pytest.mark.parametrize(
    ("cell", "currency", "message"),
    [
        ("1200.5", "JPY", "'1200.5' is not an amount in JPY such as 1250 (JPY has no decimals)"),
        ("1.2555", "KWD", "'1.2555' is not an amount in KWD such as 12.500 (at most 3 decimals)"),
        (
            "99999999999",
            "JPY",
            "'99999999999' is more than Rapport stores; the largest price is 2147483647 JPY",
        ),
        (
            "9999999",
            "KWD",
            "'9999999' is more than Rapport stores; the largest price is 2147483.647 KWD",
        ),
    ],
)
def test_a_price_is_refused_by_the_decimals_of_its_currency(
    db, tmp_path, cell, currency, message
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"sku,name,price,currency\nX-1,Thing,{cell},{currency}\n")
    with pytest.raises(MalformedFile) as error:
        import_products_file(db, path)
    assert error.value.detail == f"Line 2, column 'price': {message}"
    assert catalog.count_products(db) == 0


def test_a_semicolon_file_may_write_prices_with_a_decimal_comma(db, tmp_path) -> None:
    # given what a spreadsheet in a European locale exports
    path = tmp_path / "catalogue.csv"
    path.write_text(
        "sku;name;price;cost;currency\nW-1;Chianti;12,50;7,1;EUR\nD-1;Dinar;1,250;;KWD\n"
        'Q-1;Quoted;"3,99";;EUR\n'
    )
    assert import_products_file(db, path).written == 3
    prices = {
        sku: (p.price_minor, p.cost_minor)
        for sku in ("W-1", "D-1", "Q-1")
        if (p := catalog.get_product(db, sku=sku)) is not None
    }
    assert prices == {"W-1": (1250, 710), "D-1": (1250, 0), "Q-1": (399, 0)}


@pytest.mark.parametrize(
    ("header", "cell", "currency", "message"),
    [
        (
            "sku;name;price;currency",
            "1.234,50",
            "EUR",
            "'1.234,50' is not an amount in EUR such as 12.50: write amounts without thousands "
            "separators, like 12.50 or 12,50, with at most 2 decimals",
        ),
        (
            "sku,name,price,currency",
            '"1,234"',
            "EUR",
            "'1,234' is not an amount in EUR such as 12.50: write amounts without thousands "
            "separators, like 12.50 or 12,50, with at most 2 decimals",
        ),
        (
            "sku;name;price;currency",
            "1200,5",
            "JPY",
            "'1200,5' is not an amount in JPY such as 1250: write amounts without thousands "
            "separators, like 1250 (the currency has no decimals)",
        ),
    ],
)
def test_a_comma_that_could_separate_thousands_is_refused(
    db, tmp_path, header, cell, currency, message
) -> None:
    separator = header[3]
    path = tmp_path / "bad.csv"
    path.write_text(f"{header}\n" + separator.join(["X-1", "Thing", cell, currency]) + "\n")
    with pytest.raises(MalformedFile) as error:
        import_products_file(db, path)
    assert error.value.detail == f"Line 2, column 'price': {message}"
    assert catalog.count_products(db) == 0


def test_a_line_of_spaces_is_skipped_as_blank(db, tmp_path) -> None:
    path = tmp_path / "catalogue.csv"
    path.write_text(
        "sku,name,price,currency\nW-1,Chianti,12.00,EUR\n   \n\t\nK-1,Corkscrew,9.50,EUR\n"
    )
    assert import_products_file(db, path).rows == 2
    assert catalog.count_products(db) == 2


@pytest.mark.parametrize(
    "cell", ["1_000", "1e3", ",5", "5,", ".5", "5.", "+5", "\uff11\uff12", "\u0661\u0662", "1 000"]
)
def test_a_price_written_otherwise_than_in_ascii_digits_is_refused(db, tmp_path, cell) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f'sku;name;price;currency\nX-1;Thing;"{cell}";EUR\n', encoding="utf-8")
    with pytest.raises(MalformedFile) as error:
        import_products_file(db, path)
    assert error.value.detail == (
        f"Line 2, column 'price': {cell!r} is not an amount in EUR such as 12.50"
    )
    assert catalog.count_products(db) == 0


def test_a_lowercase_currency_is_refused_saying_how_to_write_it(db, tmp_path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("sku,name,price,currency\nX-1,Thing,1.00,eur\n")
    with pytest.raises(MalformedFile) as error:
        import_products_file(db, path)
    assert error.value.detail == (
        "Line 2, column 'currency': 'eur' is not a currency code; write the currency as three "
        "capital letters, such as EUR"
    )
    assert catalog.count_products(db) == 0
