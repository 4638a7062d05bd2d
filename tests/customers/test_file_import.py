"""Importing customers from CSV files: mapping, formats, idempotency, malformed files, the CLI
command and the real Olist customers file."""

from __future__ import annotations

import gzip
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rapport.customers import service as customers
from rapport.customers.cli import import_customers_command
from rapport.customers.file_import import (
    PRESETS,
    ImportSummary,
    MalformedFile,
    import_customers_file,
    read_customers,
)
from rapport.flows import privacy
from rapport.platform.db import open_session
from rapport.platform.errors import InvalidInput
from rapport.platform.settings import get_settings
from tests.conftest import SHARED_DATA, migrated_sqlite

CRM = PRESETS["crm"]
HEADER = (
    "customer_id,email,phone,first_name,last_name,locale,city,latitude,longitude,"
    "loyalty_card,consent_analytics,consent_marketing_email,consent_location,segment\n"
)
ROWS = (
    "C-1,Ana@Example.com,+33 6 12 34 56 78,Ana,Silva,fr-FR,Paris,48.8566,2.3522,LC-1,yes,No,,gold\n"
    "C-2,ben@example.org,,Ben,Jones,,London,,,,true,1,n,\n"
    'C-3,,,"Chloé","Dubois, Jr",de-DE,Berlin,52.52,13.405,,,,Y,silver\n'
)
OLIST_CUSTOMERS = SHARED_DATA / "olist" / "subset-2017-10k" / "customers.csv"


def write(tmp_path: Path, text: str, name: str = "crm.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def consents_of(db, external_id: str) -> dict[str, bool]:
    customer = customers.find_customer_by_external_id(db, external_id=external_id)
    assert customer is not None
    return {
        c.purpose: c.granted for c in customers.get_consents(db, customer_id=customer.customer_id)
    }


def identities_of(db, external_id: str) -> dict[str, str]:
    customer = customers.find_customer_by_external_id(db, external_id=external_id)
    assert customer is not None
    return {i.kind: i.value for i in customers.get_identities(db, customer_id=customer.customer_id)}


def test_crm_export_imports_profiles_consents_identities_attributes(db, tmp_path) -> None:
    # given a CRM export with consents, a loyalty card and a segment column
    path = write(tmp_path, HEADER + ROWS)
    mapping = CRM.with_overrides(attributes=["segment"])
    # when it is imported
    summary = import_customers_file(db, path, mapping)
    # then every row is a customer
    assert summary == ImportSummary(
        read=3,
        added=3,
        skipped_existing=0,
        duplicates_in_file=0,
        ignored_fields=(
            "time_zone",
            "consent.personalization",
            "consent.marketing_push",
        ),
        unused_columns=(),
    )
    assert customers.count_customers(db) == 3
    ana = customers.find_customer_by_external_id(db, external_id="C-1")
    assert ana is not None
    assert (ana.first_name, ana.last_name, ana.locale, ana.home_city) == (
        "Ana",
        "Silva",
        "fr-FR",
        "Paris",
    )
    assert (ana.home_latitude, ana.home_longitude) == (48.8566, 2.3522)
    assert ana.phone == "+33612345678"  # as its identity has it, however the file spaced it
    assert ana.attributes == {"segment": "gold"}
    # and consent values of every spelling are read; empty means no choice recorded
    assert consents_of(db, "C-1") == {"analytics": True, "marketing_email": False}
    assert consents_of(db, "C-2") == {"analytics": True, "marketing_email": True, "location": False}
    assert consents_of(db, "C-3") == {"location": True}
    # and the email, phone and loyalty card recognise the customer
    assert identities_of(db, "C-1") == {
        "external_id": "C-1",
        "email": "ana@example.com",
        "phone": "+33612345678",
        "loyalty_card": "LC-1",
    }
    found = customers.find_customer(db, kind="loyalty_card", value="LC-1")
    assert found is not None
    assert found.customer_id == ana.customer_id
    # and empty cells are empty, the locale falling back to the preset's
    ben = customers.find_customer_by_external_id(db, external_id="C-2")
    assert ben is not None
    assert (ben.locale, ben.home_latitude, ben.phone, ben.attributes) == ("en", None, None, {})
    chloe = customers.find_customer_by_external_id(db, external_id="C-3")
    assert chloe is not None
    assert (chloe.first_name, chloe.last_name, chloe.email) == ("Chloé", "Dubois, Jr", None)


def gzipped(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


def zipped(path: Path) -> Path:
    target = path.with_suffix(".zip")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", "exported by the CRM")
        archive.writestr("__MACOSX/._crm.csv", "resource fork")
        archive.write(path, arcname="export/crm.csv")
    return target


def renamed_gzip(path: Path) -> Path:
    # The format is sniffed from the bytes: a gzip file named .csv still reads.
    target = path.with_name("misnamed.csv")
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


@pytest.mark.parametrize("pack", [gzipped, zipped, renamed_gzip])
def test_gzip_and_zip_exports_import_the_same(db, tmp_path, pack) -> None:
    # given the CRM export compressed
    path = pack(write(tmp_path, "\ufeff" + HEADER + ROWS))  # with a BOM, as Excel writes
    # when it is imported
    summary = import_customers_file(db, path, CRM)
    # then the same customers arrive
    assert (summary.read, summary.added) == (3, 3)
    assert consents_of(db, "C-2") == {"analytics": True, "marketing_email": True, "location": False}
    assert summary.unused_columns == ("segment",)


def test_running_the_same_import_again_adds_nothing(db, tmp_path) -> None:
    # given an imported export
    path = write(tmp_path, HEADER + ROWS)
    import_customers_file(db, path, CRM)
    before = (customers.count_customers(db), customers.consent_counts(db))
    # when it is imported again
    second = import_customers_file(db, path, CRM)
    # then nothing is added or changed
    assert (second.read, second.added, second.skipped_existing, second.duplicates_in_file) == (
        3,
        0,
        3,
        0,
    )
    assert (customers.count_customers(db), customers.consent_counts(db)) == before


def test_first_row_wins_for_an_external_id_repeated_in_the_file(db, tmp_path) -> None:
    # given C-1 twice, its second row in a later batch
    path = write(
        tmp_path,
        "customer_id,city,consent_marketing_email\n"
        "C-1,Paris,yes\n"
        "C-2,Lyon,no\n"
        "C-1,Nice,no\n"
        "C-3,Lille,\n",
    )
    # when it is imported in batches of two
    summary = import_customers_file(db, path, CRM, batch_size=2)
    # then the first row is kept and the repeat is counted as such, not as already present
    assert (summary.read, summary.added, summary.skipped_existing, summary.duplicates_in_file) == (
        4,
        3,
        0,
        1,
    )
    kept = customers.find_customer_by_external_id(db, external_id="C-1")
    assert kept is not None
    assert kept.home_city == "Paris"
    assert consents_of(db, "C-1") == {"marketing_email": True}


def test_customers_sharing_an_email_are_both_imported(db, tmp_path) -> None:
    # given two customer numbers with one email (a couple sharing an address)
    path = write(tmp_path, "customer_id,email\nC-1,home@example.com\nC-2,HOME@example.com\n")
    # when the file is imported
    summary = import_customers_file(db, path, CRM)
    # then both are customers, the email recognises the first, and the second is added
    # without it, named by line and column
    assert summary.added == 2
    assert identities_of(db, "C-1")["email"] == "home@example.com"
    assert "email" not in identities_of(db, "C-2")
    assert summary.emails_left_out == (
        "Line 3, column 'email': 'home@example.com' is another customer's email; C-2 was "
        "imported without it (merge the two if they are one person)",
    )


def test_an_email_another_customer_holds_is_left_out_and_not_kept_once_they_are_erased(
    db, tmp_path
) -> None:
    # given a customer holding an email
    first = write(tmp_path, "customer_id,email\nC-1,ana@example.com\n", "first.csv")
    assert import_customers_file(db, first, CRM).added == 1
    # when a later file gives it, in capitals, to someone else
    second = write(
        tmp_path, "customer_id,email\nC-8,ANA@Example.com\nC-9,eve@example.com\n", "second.csv"
    )
    summary = import_customers_file(db, second, CRM)
    # then both rows are imported, C-8 without the email, and the summary says so
    assert summary.added == 2
    assert summary.emails_left_out == (
        "Line 2, column 'email': 'ana@example.com' is another customer's email; C-8 was "
        "imported without it (merge the two if they are one person)",
    )
    eight = customers.find_customer_by_external_id(db, external_id="C-8")
    assert eight is not None
    assert eight.email is None
    assert "email" not in identities_of(db, "C-8")
    nine = customers.find_customer_by_external_id(db, external_id="C-9")
    assert nine is not None
    assert (nine.email, identities_of(db, "C-9")["email"]) == ("eve@example.com",) * 2
    # and once the holder is erased, nobody imported carries their blocklisted address
    one = customers.find_customer_by_external_id(db, external_id="C-1")
    assert one is not None
    privacy.erase_customer(db, customer_id=one.customer_id, requested_by="test")
    db.refresh(eight)
    assert eight.email is None
    assert customers.may_contact(db, customer_id=eight.customer_id, purpose="service")


def test_mapping_overrides_read_other_column_names(db, tmp_path) -> None:
    # given an export with its own column names, in another case
    path = write(
        tmp_path,
        "Customer No;E-Mail;Newsletter;Town;Store\n9001;eve@example.net;yes;Porto;Baixa\n",
    )
    mapping = CRM.with_overrides(
        {"external_id": "customer no", "email": "e-mail", "consent.marketing_email": "Newsletter"},
        attributes=["Store"],
        default_locale="pt-PT",
    ).with_overrides({"city": "TOWN"})
    # when it is imported with ';' between fields
    summary = import_customers_file(db, path, mapping, delimiter=";")
    # then each field came from its column
    assert summary.added == 1
    eve = customers.find_customer_by_external_id(db, external_id="9001")
    assert eve is not None
    assert (eve.email, eve.home_city, eve.locale, eve.attributes) == (
        "eve@example.net",
        "Porto",
        "pt-PT",
        {"Store": "Baixa"},
    )
    assert consents_of(db, "9001") == {"marketing_email": True}


def test_mapping_refuses_unknown_fields_and_purposes() -> None:
    with pytest.raises(InvalidInput) as unknown_field:
        CRM.with_overrides({"birthday": "dob"})
    assert unknown_field.value.field == "birthday"
    with pytest.raises(InvalidInput) as unknown_purpose:
        CRM.with_overrides({"consent.sms": "sms_ok"})
    assert unknown_purpose.value.field == "consent.sms"
    with pytest.raises(InvalidInput):
        CRM.with_overrides({"external_id": ""})


def test_the_crm_preset_reads_the_customer_number_from_external_id_too(db, tmp_path) -> None:
    # given an export calling the customer number by the API's name
    path = write(tmp_path, "External_ID,email\nC-1,a@example.com\n")
    # when it is imported with the crm preset
    summary = import_customers_file(db, path, CRM)
    # then the column is the customer number, and nothing is left unread
    assert (summary.added, summary.unused_columns) == (1, ())
    stored = customers.find_customer_by_external_id(db, external_id="C-1")
    assert stored is not None
    assert stored.email == "a@example.com"
    # but a column named with --map is the only one read
    other = write(tmp_path, "external_id,email\nC-2,b@example.com\n", name="other.csv")
    with pytest.raises(MalformedFile) as error:
        import_customers_file(db, other, CRM.with_overrides({"external_id": "No"}))
    assert error.value.detail.startswith(
        "Line 1, column 'No': missing column 'No' (field external_id: a column named 'No'); "
        "the header has 'external_id', 'email'. Rename the column in the file or map another "
        "one with --map external_id=COLUMN"
    ), error.value.detail
    assert customers.count_customers(db) == 1


def test_an_unmapped_field_is_not_read(db, tmp_path) -> None:
    # given an export whose phone column holds something else
    path = write(tmp_path, "customer_id,phone\nC-1,ask reception\n")
    # when phone is unmapped
    summary = import_customers_file(db, path, CRM.with_overrides({"phone": ""}))
    # then the column is left alone
    assert summary.unused_columns == ("phone",)
    stored = customers.find_customer_by_external_id(db, external_id="C-1")
    assert stored is not None
    assert stored.phone is None


ZONED_HEADER = "customer_id,time_zone\n"


def test_the_time_zone_column_is_each_customers_time_zone(db, tmp_path) -> None:
    # given a CRM export with a time_zone column, one row without a zone
    path = write(
        tmp_path, ZONED_HEADER + "C-1, Asia/Tokyo \nC-2,\nC-3,America/Argentina/Buenos_Aires\n"
    )
    # when it is imported with the crm preset
    summary = import_customers_file(db, path, CRM)
    # then the column is read, each zone kept trimmed, an empty one left unset
    assert (summary.added, summary.unused_columns) == (3, ())
    zones = {}
    for number in ("C-1", "C-2", "C-3"):
        customer = customers.find_customer_by_external_id(db, external_id=number)
        assert customer is not None
        zones[number] = customer.time_zone
    assert zones == {
        "C-1": "Asia/Tokyo",
        "C-2": None,
        "C-3": "America/Argentina/Buenos_Aires",
    }


MALFORMED = [
    pytest.param(
        "id,email\nC-1,a@example.com\n",
        1,
        "customer_id",
        "missing column 'customer_id' (field external_id: a column named 'customer_id' or "
        "'external_id'); the header has 'id', 'email'",
        id="missing-column",
    ),
    pytest.param(
        HEADER + ROWS.replace(",true,1,n,", ",true,maybe,n,"),
        3,
        "consent_marketing_email",
        "'maybe' is not a consent choice for marketing_email",
        id="bad-consent",
    ),
    pytest.param(
        HEADER + ROWS.replace("52.52", "north"),
        4,
        "latitude",
        "'north' is not a latitude",
        id="bad-latitude",
    ),
    pytest.param(
        HEADER + ROWS.replace("48.8566", "91"),
        2,
        "latitude",
        "'91' is not a latitude; use a decimal number from -90 to 90",
        id="latitude-out-of-range",
    ),
    pytest.param(
        HEADER + ROWS + "C-4,d@example.com,,Dee\n",
        5,
        "last_name",
        "the row has 4 fields but the header has 14",
        id="ragged-short",
    ),
    pytest.param(
        HEADER + ROWS.replace(",silver", ",silver,platinum"),
        4,
        None,
        "the row has 15 fields but the header has 14",
        id="ragged-long",
    ),
    pytest.param(
        HEADER + ROWS.replace("ben@example.org", "ben at example.org"),
        3,
        "email",
        "'ben at example.org' is not an email address",
        id="email-without-at",
    ),
    pytest.param(
        HEADER + ROWS.replace("ben@example.org,", "ben@example.org,06 12 34 56 78"),
        3,
        "phone",
        "'06 12 34 56 78' is no phone number Rapport can keep. Give the phone number in "
        "international form",
        id="national-phone",
    ),
    pytest.param(
        HEADER + ROWS.replace("ben@example.org,", "ben@example.org,ask reception"),
        3,
        "phone",
        "'ask reception' is no phone number Rapport can keep. This is not a phone number",
        id="unreadable-phone",
    ),
    pytest.param(
        ZONED_HEADER + "C-1,Europe/Paris\nC-2,Mars/Olympus_Mons\n",
        3,
        "time_zone",
        "Unknown time zone 'Mars/Olympus_Mons': give an IANA name such as Europe/Paris, or "
        "leave it empty",
        id="unknown-time-zone",
    ),
    pytest.param(
        ZONED_HEADER + "C-1,paris\n",
        2,
        "time_zone",
        "Unknown time zone 'paris'",
        id="city-for-a-time-zone",
    ),
    pytest.param(
        HEADER + ROWS.replace("C-2,", ","),
        3,
        "customer_id",
        "the external id is empty",
        id="empty-external-id",
    ),
    pytest.param(
        HEADER + ROWS.replace("Berlin", "B" * 121),
        4,
        "city",
        "121 characters is too long for city (at most 120)",
        id="too-long",
    ),
    pytest.param(
        HEADER + ROWS.replace('"Dubois, Jr"', '"Dubois, Jr'),
        4,
        None,
        "unexpected end of data",
        id="unclosed-quote",
    ),
    pytest.param(
        "customer_id,email,customer_id\nC-1,a@example.com,C-1\n",
        1,
        "customer_id",
        "the header names 'customer_id' 2 times",
        id="duplicate-header",
    ),
    pytest.param("", 1, None, "the file is empty", id="empty-file"),
]


@pytest.mark.parametrize(("text", "line", "column", "reason"), MALFORMED)
def test_malformed_file_names_line_and_column_and_changes_nothing(
    db, tmp_path, text, line, column, reason
) -> None:
    # given a file with one bad row after good ones
    path = write(tmp_path, text)
    # when it is imported in batches of one, so good rows before it would be a full batch
    with pytest.raises(MalformedFile) as error:
        import_customers_file(db, path, CRM, batch_size=1)
    # then the error names the line and column, and no customer was written
    assert (error.value.line, error.value.column) == (line, column)
    assert reason in error.value.detail
    assert error.value.detail.startswith(f"Line {line}")
    assert error.value.extra == {"line": line}  # problem+json carries it too
    assert customers.count_customers(db) == 0


def test_bytes_that_are_not_utf8_name_their_line_and_column(db, tmp_path) -> None:
    # given a Latin-1 export of 3,000 rows (decoding works in chunks: the line must be exact)
    rows = "".join(f"C-{n},Paris\n" for n in range(3_000))
    path = tmp_path / "latin1.csv"
    path.write_bytes(("customer_id,city\n" + rows + "C-x,Orl\xe9ans\n").encode("latin-1"))
    # when it is imported
    with pytest.raises(MalformedFile) as error:
        import_customers_file(db, path, CRM)
    # then the error points at the value and suggests the encoding option
    assert (error.value.line, error.value.column) == (3_002, "city")
    assert "this value is not UTF-8 text; export the file as UTF-8" in error.value.detail
    assert "--encoding" in error.value.detail
    assert customers.count_customers(db) == 0
    # and with the right encoding the file imports
    summary = import_customers_file(db, path, CRM, encoding="latin-1")
    assert summary.added == 3_001
    stored = customers.find_customer_by_external_id(db, external_id="C-x")
    assert stored is not None
    assert stored.home_city == "Orléans"


def test_line_numbers_count_physical_lines(db, tmp_path) -> None:
    # given a quoted value spanning two lines and a blank line before a bad row
    path = write(
        tmp_path,
        'customer_id,note,latitude\nC-1,"two\nlines",1.5\n\nC-2,,far\n',
    )
    # when it is read
    with pytest.raises(MalformedFile) as error:
        import_customers_file(db, path, CRM.with_overrides(attributes=["note"]))
    # then the line is the one an editor shows
    assert (error.value.line, error.value.column) == (5, "latitude")


def test_a_line_of_spaces_is_skipped_as_blank(db, tmp_path) -> None:
    path = write(tmp_path, "customer_id,city\nC-1,Paris\n   \n\t\nC-2,Lyon\n  \n")
    summary = import_customers_file(db, path, CRM)
    assert (summary.read, summary.added) == (2, 2)


def test_damaged_gzip_is_malformed(db, tmp_path) -> None:
    # given a gzip export cut short
    whole = gzipped(write(tmp_path, HEADER + ROWS * 200)).read_bytes()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    # when it is imported
    with pytest.raises(MalformedFile) as error:
        import_customers_file(db, path, CRM)
    # then nothing was written
    assert "damaged" in error.value.detail
    assert customers.count_customers(db) == 0


def test_zip_without_a_csv_is_malformed(db, tmp_path) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("customers.xlsx", "not a csv")
    with pytest.raises(MalformedFile) as error:
        import_customers_file(db, path, CRM)
    assert error.value.detail == "The zip archive holds no .csv file (it holds customers.xlsx)"


def test_rows_are_streamed_not_loaded(tmp_path) -> None:
    # given a file whose third data row is bad
    path = write(tmp_path, "customer_id,latitude\nC-1,1\nC-2,2\nC-3,bad\n")
    # when it is read one customer at a time
    customers_read = read_customers(path, CRM)
    # then the rows before the bad one arrive before the error
    assert [next(customers_read).external_id, next(customers_read).external_id] == ["C-1", "C-2"]
    with pytest.raises(MalformedFile):
        next(customers_read)


def test_progress_reports_bytes_checked_then_rows_imported(db, tmp_path) -> None:
    # given an export of 5 rows
    path = write(tmp_path, "customer_id\n" + "".join(f"C-{n}\n" for n in range(5)))
    reports: list[tuple[str, int, int]] = []
    # when it is imported in batches of two
    import_customers_file(db, path, CRM, lambda *report: reports.append(report), batch_size=2)
    # then the check ends at the file's size and the import advances batch by batch
    size = path.stat().st_size
    assert reports == [
        ("check", 0, size),
        ("check", size, size),
        ("import", 0, 5),
        ("import", 2, 5),
        ("import", 4, 5),
        ("import", 5, 5),
    ]


# --- the command -------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def command_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(import_customers_command)
    return app


@pytest.fixture
def database_url(tmp_path, monkeypatch) -> Iterator[str]:
    url = migrated_sqlite(tmp_path / "import.db")
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_command_imports_and_prints_a_summary(command_app, database_url, tmp_path) -> None:
    path = write(tmp_path, HEADER + ROWS)
    # when the command runs twice
    first = runner.invoke(command_app, [str(path), "--attribute", "segment"])
    second = runner.invoke(command_app, [str(path), "--attribute", "segment"])
    assert second.exit_code == 0, second.output
    # then the first adds three customers and the second none
    assert first.exit_code == 0, first.output
    assert re.search(r"Customers added\s*│\s*3\s*│", first.output), first.output
    assert re.search(r"Customers added\s*│\s*0\s*│", second.output), second.output
    with open_session(database_url) as db:
        assert customers.count_customers(db) == 3
        stored = customers.find_customer_by_external_id(db, external_id="C-1")
        assert stored is not None
        assert stored.attributes == {"segment": "gold"}


def test_a_row_naming_an_erased_person_is_counted_apart(
    command_app, database_url, tmp_path
) -> None:
    # given an export imported once, then its first person erased
    path = write(tmp_path, HEADER + ROWS)
    assert runner.invoke(command_app, [str(path)]).exit_code == 0
    with open_session(database_url) as db:
        stored = customers.find_customer_by_external_id(db, external_id="C-1")
        assert stored is not None
        privacy.erase_customer(db, customer_id=stored.customer_id, requested_by="test")
    # when the same export is imported again
    again = runner.invoke(command_app, [str(path)])
    # then the erased person's row is said apart, not as already in the database
    assert again.exit_code == 0, again.output
    assert re.search(r"Already in the database \(left as they are\)\s*│\s*2\s*│", again.output)
    assert re.search(r"Skipped: the person was erased\s*│\s*1\s*│", again.output), again.output
    with open_session(database_url) as db:
        summary = import_customers_file(db, path, CRM)
    assert (summary.skipped_existing, summary.skipped_erased) == (2, 1)


def test_command_maps_columns(command_app, database_url, tmp_path) -> None:
    path = write(tmp_path, "No,Mail\n7,g@example.com\n")
    result = runner.invoke(
        command_app, [str(path), "--map", "external_id=No", "--map", "email=Mail"]
    )
    assert result.exit_code == 0, result.output
    with open_session(database_url) as db:
        stored = customers.find_customer_by_external_id(db, external_id="7")
        assert stored is not None
        assert stored.email == "g@example.com"


def test_command_says_which_columns_the_preset_reads_the_customer_number_from(
    command_app, database_url, tmp_path
) -> None:
    path = write(tmp_path, "id,email\nC-1,a@example.com\n")
    result = runner.invoke(command_app, [str(path)])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert (
        "Error in crm.csv: Line 1, column 'customer_id': missing column 'customer_id' (field "
        "external_id: a column named 'customer_id' or 'external_id'); the header has 'id', "
        "'email'. Rename the column in the file or map another one with --map "
        "external_id=COLUMN" in output
    ), output
    assert "Nothing was imported" in output
    taken = runner.invoke(command_app, [str(write(tmp_path, "external_id\nC-2\n"))])
    assert taken.exit_code == 0, taken.output
    with open_session(database_url) as db:
        assert customers.find_customer_by_external_id(db, external_id="C-2") is not None


def test_command_reports_a_malformed_file_and_exits_2(command_app, database_url, tmp_path) -> None:
    path = write(tmp_path, HEADER + ROWS.replace("52.52", "north"))
    result = runner.invoke(command_app, [str(path)])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "Error in crm.csv: Line 4, column 'latitude': 'north' is not a latitude" in output
    assert "Nothing was imported" in output
    with open_session(database_url) as db:
        assert customers.count_customers(db) == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--preset", "sap"], "Unknown preset 'sap'; use one of crm, olist"),
        (["--map", "email"], "--map 'email' is not FIELD=COLUMN"),
        (["--map", "birthday=dob"], "Unknown field 'birthday'"),
        (["--delimiter", ";;"], "--delimiter must be one character"),
        (["--encoding", "klingon"], "unknown encoding 'klingon'"),
    ],
)
def test_command_refuses_bad_options(
    command_app, database_url, tmp_path, arguments, message
) -> None:
    path = write(tmp_path, HEADER + ROWS)
    result = runner.invoke(command_app, [str(path), *arguments])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


# --- the real Olist customers file -------------------------------------------------------


@pytest.fixture
def olist_customers() -> Path:
    if not OLIST_CUSTOMERS.exists():
        pytest.skip(f"the Olist subset is not at {OLIST_CUSTOMERS} (shared data not present)")
    return OLIST_CUSTOMERS


def test_olist_preset_imports_one_customer_per_person(db, olist_customers) -> None:
    # given the Olist subset: 10,000 order-customers, 9,920 people
    before = customers.count_customers(db)
    # when it is imported twice
    started = time.perf_counter()
    first = import_customers_file(db, olist_customers, PRESETS["olist"])
    elapsed = time.perf_counter() - started
    second = import_customers_file(db, olist_customers, PRESETS["olist"])
    # then each person is one customer, once
    assert first == ImportSummary(
        read=10_000,
        added=9_920,
        skipped_existing=0,
        duplicates_in_file=80,
        unused_columns=("customer_id",),
    )
    assert (second.added, second.skipped_existing, second.duplicates_in_file) == (0, 9_920, 80)
    assert customers.count_customers(db) == before + 9_920
    # and a known person has their city, state and zip prefix
    known = customers.find_customer_by_external_id(
        db, external_id="918dc87cd72cd9f6ed4bd442ed785235"
    )
    assert known is not None
    assert (known.home_city, known.locale, known.email) == ("lencois paulista", "pt-BR", None)
    assert known.attributes == {"customer_zip_code_prefix": "18682", "customer_state": "SP"}
    # and a person listed twice (lines 3106 and 6963) keeps their first row
    moved = customers.find_customer_by_external_id(
        db, external_id="9832ae2f7d3e5fa4c7a1a06e9551bc61"
    )
    assert moved is not None
    assert moved.home_city == "duque de caxias"
    assert elapsed < 60  # a generous bound: measured about 1-3 s


def test_a_phone_another_customer_holds_is_left_out_naming_its_line(db, tmp_path) -> None:
    # given a customer holding a phone
    first = write(tmp_path, "customer_id,phone\nC-1,+33 6 12 34 56 78\n", "first.csv")
    assert import_customers_file(db, first, CRM).added == 1
    # when a file gives the same number to someone else, in another spelling, and one
    # number to two new customers
    second = write(
        tmp_path,
        "customer_id,email,phone\n"
        "C-8,h@example.com,\n"
        "C-9,i@example.com,0033 6 12 34 56 78\n"
        "C-10,j@example.com,+44 20 7946 0958\n"
        "C-11,k@example.com,+442079460958\n",
        "second.csv",
    )
    summary = import_customers_file(db, second, CRM)
    # then everyone is imported, those two without the phone, each named by line and column
    assert summary.added == 4
    assert summary.phones_left_out == (
        "Line 3, column 'phone': '+33612345678' is another customer's phone; C-9 was imported "
        "without it (merge the two if they are one person)",
        "Line 5, column 'phone': '+442079460958' is another customer's phone; C-11 was "
        "imported without it (merge the two if they are one person)",
    )
    nine = customers.find_customer_by_external_id(db, external_id="C-9")
    assert nine is not None
    assert nine.phone is None
    assert "phone" not in identities_of(db, "C-9")
    ten = customers.find_customer_by_external_id(db, external_id="C-10")
    assert ten is not None
    assert ten.phone == "+442079460958"
    assert identities_of(db, "C-10")["phone"] == "+442079460958"
    # and once the holder is erased, nobody imported carries their blocklisted number
    one = customers.find_customer_by_external_id(db, external_id="C-1")
    assert one is not None
    privacy.erase_customer(db, customer_id=one.customer_id, requested_by="test")
    db.refresh(nine)
    assert nine.phone is None
    assert customers.may_contact(db, customer_id=nine.customer_id, purpose="service")


def test_the_command_counts_and_names_phones_and_emails_left_out(
    command_app, database_url, tmp_path
) -> None:
    path = write(
        tmp_path,
        "customer_id,phone,email\nC-1,+33612345678,a@example.com\n"
        "C-2,+33 6 12 34 56 78,b@example.com\nC-3,,A@example.com\n",
    )
    result = runner.invoke(command_app, [str(path)])
    assert result.exit_code == 0, result.output
    assert re.search(r"Added without their phone: another customer's\s*│\s*1\s*│", result.output)
    assert re.search(r"Added without their email: another customer's\s*│\s*1\s*│", result.output)
    assert "Line 3, column 'phone': '+33612345678' is another customer's phone" in result.output
    assert "Line 4, column 'email': 'a@example.com' is another customer's email" in result.output
