"""Where settings come from, and that nothing in them depends on the working directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rapport.platform.errors import InvalidInput
from rapport.platform.settings import Settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user of their own: no RAPPORT_* variables, XDG folders under ``tmp_path``."""
    for name in ("RAPPORT_DATABASE_URL", "RAPPORT_DATA_DIR", "RAPPORT_ENV_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return tmp_path


def test_the_default_database_is_in_the_users_data_directory(home: Path) -> None:
    settings = Settings()
    assert settings.data_dir == home / "data-home" / "rapport"
    assert settings.database_url == f"sqlite:///{home / 'data-home' / 'rapport' / 'rapport.db'}"


def test_without_xdg_the_data_directory_is_under_home(home: Path, monkeypatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME")
    assert Settings().data_dir == home / "home" / ".local" / "share" / "rapport"


def test_relative_paths_are_made_absolute_once(home: Path, monkeypatch) -> None:
    # given relative settings read in one directory
    monkeypatch.setenv("RAPPORT_DATA_DIR", "var")
    settings = Settings()
    # then they name that directory's files, whatever directory the process moves to later
    assert settings.data_dir == home / "work" / "var"
    assert settings.database_url == f"sqlite:///{home / 'work' / 'var' / 'rapport.db'}"
    relative = Settings(database_url="sqlite:///db/shop.db?timeout=5")
    assert relative.database_url == f"sqlite:///{home / 'work' / 'db' / 'shop.db'}?timeout=5"
    # and URLs that are not relative files are left as given
    server = "postgresql+psycopg://rapport:pw@db:5432/rapport"
    assert Settings(database_url=server).database_url == server
    assert Settings(database_url="sqlite://").database_url == "sqlite://"


def test_env_files_user_then_working_directory_then_environment(home: Path, monkeypatch) -> None:
    user_file = home / "config-home" / "rapport" / "env"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("RAPPORT_BIND_PORT=9001\nRAPPORT_SMTP_HOST=mail.user\n")
    # the user's env file applies anywhere
    assert Settings().bind_port == 9001
    # a working directory's .env wins over it
    (home / "work" / ".env").write_text("RAPPORT_BIND_PORT=9002\n")
    settings = Settings()
    assert settings.bind_port == 9002
    assert settings.smtp_host == "mail.user"
    # and the environment over both
    monkeypatch.setenv("RAPPORT_BIND_PORT", "9003")
    assert Settings().bind_port == 9003


def test_a_named_env_file_is_read_and_must_exist(home: Path, monkeypatch) -> None:
    named = home / "rapport.env"
    named.write_text("RAPPORT_SMTP_HOST=mail.named\n")
    monkeypatch.setenv("RAPPORT_ENV_FILE", str(named))
    assert Settings().smtp_host == "mail.named"
    monkeypatch.setenv("RAPPORT_ENV_FILE", str(home / "missing.env"))
    with pytest.raises(InvalidInput, match=r"missing\.env, which is not a file") as refused:
        Settings()
    assert refused.value.field == "RAPPORT_ENV_FILE"  # a setting refused: exit code 2


GUIDE = Path(__file__).parents[2] / "docs" / "operator-guide.md"
# Read from the environment before settings are: not fields of Settings.
NOT_SETTINGS = {"RAPPORT_ENV_FILE", "RAPPORT_DEBUG"}


def test_the_operator_guide_lists_every_setting_and_only_settings() -> None:
    # given the guide's settings table (its first column names the variables)
    guide = GUIDE.read_text()
    rows = [line for line in guide.splitlines() if line.startswith("| `RAPPORT_")]
    listed = {name for row in rows for name in re.findall(r"RAPPORT_[A-Z_]+", row.split("|")[1])}
    settings = {f"RAPPORT_{name.upper()}" for name in Settings.model_fields}
    # then every setting is in the table, and every RAPPORT_ name in the guide is a setting
    assert settings - listed == set()
    named = set(re.findall(r"RAPPORT_[A-Z][A-Z_]*[A-Z]", guide))
    assert named - settings - NOT_SETTINGS == set()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "https://shop.example.com",
        "https://surveys.shop.example/",
        "HTTPS://shop.example.com:8443/rapport",
        "http://[::1]:8000/shop%20front/",
        "https://shop-1.example.com./a_b~c/(x)",
        "https://10.0.0.1./",
        "https://1shop.example.com",
    ],
)
def test_a_public_base_url_is_kept_as_given(home: Path, url: str) -> None:
    assert Settings(public_base_url=url).public_base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "notaurl",
        "shop.example.com",
        "/u",
        "ftp://shop.example.com",
        "https://",
        "https://shop.example.com:port",
        "https://shop example.com",
        "https://shop.example.com/?utm=1",
        "https://user:pw@shop.example.com",
        'https://shop.example.com/"><script>',
        "https://shop.example.com/<b>",
        "https://shop.example.com/it's",
        "https://shop.example.com/a%2",
        "https://exa%6dple.com",
        "https://-shop.example.com",
        "https://shop_front.example.com",
        "https://[not-ipv6]",
        "https://shop..example.com",
        "https://shop.example.com:0",
        "http://127.0.0.1:0/",
        "https://1.2.3.999",
        "https://1.2.3",
        "https://999",
        "https://999.",
    ],
)
def test_a_public_base_url_that_is_no_absolute_http_url_is_refused(home: Path, url: str) -> None:
    with pytest.raises(ValueError, match="public_base_url") as refused:
        Settings(public_base_url=url)
    assert "is not an absolute http(s) URL" in str(refused.value)
    assert "https://shop.example.com" in str(refused.value)


def test_a_public_base_url_is_kept_without_the_spaces_around_it(home: Path) -> None:
    url = Settings(public_base_url=" https://shop.example.com\t").public_base_url
    assert url == "https://shop.example.com"
