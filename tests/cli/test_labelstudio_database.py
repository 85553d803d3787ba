"""``labelstudio start --database``: Label Studio's own PostgreSQL settings, the password never on a command line."""

from pathlib import Path

import pytest

from labeling_assets.core.errors import ConfigurationError, ServiceUnavailable
from labeling_assets.local.labelstudio_database import database_settings, parse_database, remembered
from labeling_assets.local.labelstudio_files import ServerPaths
from tests.conftest import PostgresDatabases


def test_a_url_becomes_label_studios_own_settings_and_a_password_stays_off_the_command_line() -> None:
    database, password = parse_database("postgresql://ls@db.example:6543/labelstudio", from_command_line=True)
    assert password is None and database.display == "postgresql://ls@db.example:6543/labelstudio"
    assert database.settings("s3cret") == {
        "DJANGO_DB": "default",
        "POSTGRE_NAME": "labelstudio",
        "POSTGRE_USER": "ls",
        "POSTGRE_HOST": "db.example",
        "POSTGRE_PORT": "6543",
        "POSTGRE_PASSWORD": "s3cret",
    }
    with pytest.raises(ConfigurationError, match="leave the password out of the command line") as caught:
        parse_database("postgresql://ls:s3cret@db/labelstudio", from_command_line=True)
    assert "s3cret" not in str(caught.value)
    assert parse_database("postgresql://ls:s3cret@db/labelstudio", from_command_line=False)[1] == "s3cret"
    with pytest.raises(ConfigurationError, match="SQLite .* or PostgreSQL; got mysql://"):
        parse_database("mysql://root@db/labelstudio", from_command_line=True)
    with pytest.raises(ConfigurationError, match="names no database"):
        parse_database("postgresql://ls@db", from_command_line=True)


def test_the_database_is_checked_remembered_and_never_swapped_for_sqlite(
    tmp_path: Path, pg_databases: PostgresDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABEL_STUDIO_DATABASE_URL", raising=False)
    paths = ServerPaths(tmp_path / "labelstudio")
    assert database_settings(paths, None) == {}  # SQLite: Label Studio's default, nothing to set
    with pytest.raises(ServiceUnavailable, match=r"postgresql://postgres@127\.0\.0\.1:1/x does not answer"):
        database_settings(paths, "postgresql://postgres@127.0.0.1:1/x")
    assert remembered(paths) is None
    url = pg_databases.new_url()
    settings = database_settings(paths, url)
    assert settings["DJANGO_DB"] == "default" and settings["POSTGRE_NAME"] == url.rsplit("/", 1)[1]
    assert database_settings(paths, None) == settings  # a restart without --database stays on it
    sqlite = ServerPaths(tmp_path / "sqlite-server")
    sqlite.ls_data.mkdir(parents=True)
    (sqlite.ls_data / "label_studio.sqlite3").write_bytes(b"")
    with pytest.raises(ConfigurationError, match="already holds a Label Studio on SQLite"):
        database_settings(sqlite, url)
