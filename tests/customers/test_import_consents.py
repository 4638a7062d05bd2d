"""Consents granted by imports: customers and transactions files read each customer's choice
from a column (--consent PURPOSE=COLUMN) or grant a purpose to every customer created
(--grant-consent PURPOSE); the consent history names the file; without either, nobody is
contacted for marketing."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from rapport.customers import service as customers
from rapport.customers.file_import import PRESETS as CUSTOMER_PRESETS
from rapport.customers.file_import import MalformedFile, import_customers_file
from rapport.orders.cli import import_transactions_command
from rapport.orders.importing import PRESETS as TRANSACTION_PRESETS
from rapport.orders.importing import MalformedFile as TransactionFileProblem
from rapport.orders.importing import import_transactions_file
from rapport.platform.db import open_session
from rapport.platform.errors import InvalidInput
from tests.customers import test_file_import as customer_files

runner = CliRunner()
# The commands and a migrated SQLite database of their own, as the import tests set them up.
database_url = customer_files.database_url
command_app = customer_files.command_app


@pytest.fixture
def transactions_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(import_transactions_command)
    return app


def write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def consents_of(db: Session, external_id: str) -> dict[str, bool]:
    customer = customers.find_customer_by_external_id(db, external_id=external_id)
    assert customer is not None
    return {
        c.purpose: c.granted for c in customers.get_consents(db, customer_id=customer.customer_id)
    }


def history_sources(db: Session, external_id: str) -> set[str]:
    customer = customers.find_customer_by_external_id(db, external_id=external_id)
    assert customer is not None
    return {c.source for c in customers.consent_history(db, customer_id=customer.customer_id)}


def marketable(db: Session, external_ids: list[str], purpose: str) -> set[str]:
    """The external ids the campaigns' contact gate lets through for ``purpose``."""
    ids = {
        customers.resolve_customer_ref(db, ref=external_id): external_id
        for external_id in external_ids
    }
    return {ids[c] for c in customers.contactable(db, customer_ids=list(ids), purpose=purpose)}


# ------------------------------------------------------------------------------ customers

CRM = "Id,Mail,Newsletter\nC-1,a@example.com,opt-in\nC-2,b@example.com,No\nC-3,c@example.com,\n"
CRM_MAPPING = CUSTOMER_PRESETS["crm"].with_overrides({"external_id": "Id", "email": "Mail"})


def test_a_consent_column_records_each_choice_with_the_file_as_source(db, tmp_path) -> None:
    path = write(tmp_path, CRM, "crm-2026.csv")
    mapping = CRM_MAPPING.with_overrides({"consent.marketing_email": "Newsletter"})
    import_customers_file(db, path, mapping)
    assert consents_of(db, "C-1") == {"marketing_email": True}
    assert consents_of(db, "C-2") == {"marketing_email": False}
    assert consents_of(db, "C-3") == {}  # an empty cell is no choice: no
    assert history_sources(db, "C-1") == {"import:crm-2026.csv"}
    assert marketable(db, ["C-1", "C-2", "C-3"], "marketing_email") == {"C-1"}
    # service messages still reach everyone live
    assert marketable(db, ["C-1", "C-2", "C-3"], customers.SERVICE) == {"C-1", "C-2", "C-3"}


def test_a_long_file_name_is_cut_to_what_a_consent_source_holds(db, tmp_path) -> None:
    name = f"crm-{'x' * 80}.csv"
    path = write(tmp_path, CRM, name)
    mapping = CRM_MAPPING.with_overrides({"consent.marketing_email": "Newsletter"})
    import_customers_file(db, path, mapping)
    assert consents_of(db, "C-1") == {"marketing_email": True}
    # 60 characters, what consents.source and consent_changes.source hold on every database
    assert history_sources(db, "C-1") == {f"import:{name}"[:60]}


def test_a_granted_purpose_applies_to_everyone_but_a_rows_own_no(db, tmp_path) -> None:
    path = write(tmp_path, CRM, "crm.csv")
    mapping = CRM_MAPPING.with_overrides(
        {"consent.marketing_email": "Newsletter"},
        granted_consents=["marketing_email", "personalization"],
    )
    import_customers_file(db, path, mapping)
    assert consents_of(db, "C-1") == {"marketing_email": True, "personalization": True}
    assert consents_of(db, "C-2") == {"marketing_email": False, "personalization": True}
    assert consents_of(db, "C-3") == {"marketing_email": True, "personalization": True}


def test_without_consents_nobody_is_marketable(db, tmp_path) -> None:
    import_customers_file(db, write(tmp_path, CRM, "crm.csv"), CRM_MAPPING)
    assert consents_of(db, "C-1") == {}
    assert marketable(db, ["C-1", "C-2"], "marketing_email") == set()


def test_a_value_that_is_no_choice_names_its_line_and_column(db, tmp_path) -> None:
    path = write(tmp_path, CRM.replace("opt-in", "maybe"), "crm.csv")
    mapping = CRM_MAPPING.with_overrides({"consent.marketing_email": "Newsletter"})
    with pytest.raises(MalformedFile) as raised:
        import_customers_file(db, path, mapping)
    assert (raised.value.line, raised.value.column) == (2, "Newsletter")
    with pytest.raises(InvalidInput) as unknown:
        CRM_MAPPING.with_overrides(granted_consents=["telepathy"])
    assert unknown.value.field == "grant_consent"


def test_the_command_takes_consent_columns_and_grants(command_app, database_url, tmp_path) -> None:
    path = write(tmp_path, CRM, "crm.csv")
    result = runner.invoke(
        command_app,
        [
            str(path),
            *("--map", "external_id=Id", "--map", "email=Mail"),
            *("--consent", "marketing_email=Newsletter", "--grant-consent", "analytics"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "marketing_email from 'Newsletter'" in result.output
    assert "granted to every new customer: analytics" in result.output
    with open_session(database_url) as db:
        assert consents_of(db, "C-2") == {"marketing_email": False, "analytics": True}
    bare = runner.invoke(command_app, [str(path), "--map", "external_id=Id"])
    assert "No consents imported" in bare.output
    bad = runner.invoke(command_app, [str(path), "--consent", "newsletter"])
    assert bad.exit_code == 2
    assert "PURPOSE=COLUMN" in bad.output


# ------------------------------------------------------------------------------ transactions

SALES = (
    "Receipt,Client,Article,When,Price,Opt\n"
    "R1,ana,SKU-1,2024-03-01 10:00:00,12.50,no\n"
    "R2,ana,SKU-1,2024-03-05 10:00:00,12.50,yes\n"
    "R3,ben,SKU-2,2024-03-02 09:30:00,3.00,\n"
)
SALES_MAPPING = TRANSACTION_PRESETS["csv"].with_overrides(
    {"order": "Receipt", "customer": "Client", "item": "Article", "time": "When", "price": "Price"},
    currency="EUR",
)


def test_transactions_read_each_customers_latest_choice(db, tmp_path) -> None:
    path = write(tmp_path, SALES, "sales.csv")
    mapping = SALES_MAPPING.with_overrides(
        {"consent.marketing_email": "Opt"}, granted_consents=["analytics"]
    )
    summary = import_transactions_file(db, path, mapping)
    assert summary.customers_created == 2
    # ana said no on 1 March, then yes on 5 March: the latest choice wins
    assert consents_of(db, "ana") == {"marketing_email": True, "analytics": True}
    assert consents_of(db, "ben") == {"analytics": True}
    assert history_sources(db, "ana") == {"import:sales.csv"}


def test_transactions_without_consents_create_unmarketable_customers(db, tmp_path) -> None:
    import_transactions_file(db, write(tmp_path, SALES, "sales.csv"), SALES_MAPPING)
    assert consents_of(db, "ana") == {}
    assert marketable(db, ["ana", "ben"], "marketing_email") == set()


def test_transactions_refuse_a_value_that_is_no_choice(db, tmp_path) -> None:
    path = write(tmp_path, SALES.replace(",yes", ",perhaps"), "sales.csv")
    mapping = SALES_MAPPING.with_overrides({"consent.marketing_email": "Opt"})
    with pytest.raises(TransactionFileProblem) as raised:
        import_transactions_file(db, path, mapping)
    assert (raised.value.line, raised.value.column) == (3, "Opt")
    assert customers.count_customers(db) == 0


def test_the_transactions_command_takes_consents(transactions_app, database_url, tmp_path) -> None:
    path = write(tmp_path, SALES, "sales.csv")
    columns = ["--order-col", "Receipt", "--customer-col", "Client", "--item-col", "Article"]
    columns += ["--time-col", "When", "--price-col", "Price", "--currency", "EUR"]
    result = runner.invoke(
        transactions_app,
        [str(path), *columns, "--consent", "marketing_email=Opt", "--grant-consent", "location"],
    )
    assert result.exit_code == 0, result.output
    assert "import:sales.csv" in result.output
    with open_session(database_url) as db:
        assert consents_of(db, "ana") == {"marketing_email": True, "location": True}
    bad = runner.invoke(transactions_app, [str(path), *columns, "--grant-consent", "telepathy"])
    assert bad.exit_code == 2
    assert "telepathy" in bad.output
