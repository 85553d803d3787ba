"""The local Label Studio on PostgreSQL instead of its SQLite file, through Label Studio's own settings.

``labeling-assets labelstudio start --database postgresql://USER@HOST:PORT/NAME`` (or
``$LABEL_STUDIO_DATABASE_URL``) sets Label Studio's ``DJANGO_DB=default`` and ``POSTGRE_NAME``, ``POSTGRE_USER``,
``POSTGRE_HOST``, ``POSTGRE_PORT``, as the docker stack does. The password never goes on a command line (every
local user can read those): it comes from ``$POSTGRE_PASSWORD`` (Label Studio's own variable), or from
``$LABEL_STUDIO_DATABASE_URL``, which is an environment variable too. The database is remembered (without its
password) beside the server's other files, so a restart never falls back to SQLite by accident.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from labeling_assets import env
from labeling_assets.core.errors import ConfigurationError, ServiceUnavailable
from labeling_assets.local.labelstudio_files import ServerPaths

DATABASE_URL_ENV = "LABEL_STUDIO_DATABASE_URL"
PASSWORD_ENV = "POSTGRE_PASSWORD"
_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg")


@dataclass(frozen=True)
class PostgresDatabase:
    """Where Label Studio keeps its data: one PostgreSQL database (the password is not part of it)."""

    name: str
    user: str
    host: str
    port: int

    @property
    def display(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name}"

    def settings(self, password: str) -> dict[str, str]:
        """Label Studio's own environment variables for this database."""
        return {
            "DJANGO_DB": "default",
            "POSTGRE_NAME": self.name,
            "POSTGRE_USER": self.user,
            "POSTGRE_HOST": self.host,
            "POSTGRE_PORT": str(self.port),
            # Set even when empty: unset, Label Studio would try the password "postgres".
            PASSWORD_ENV: password,
        }


def parse_database(url: str, *, from_command_line: bool) -> tuple[PostgresDatabase, str | None]:
    """The database of a ``postgresql://`` URL and the password it carries (refused on a command line)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"--database: not a database URL ({exc})") from exc
    if parsed.drivername not in _SCHEMES:
        raise ConfigurationError(
            f"--database: Label Studio runs on SQLite (the default) or PostgreSQL; got {parsed.drivername}://"
        )
    if not parsed.database:
        raise ConfigurationError("--database: the URL names no database (postgresql://USER@HOST:PORT/NAME)")
    if parsed.password and from_command_line:
        raise ConfigurationError(
            f"--database: leave the password out of the command line (every local user can read it); "
            f"set {PASSWORD_ENV} or put the whole URL in {DATABASE_URL_ENV}"
        )
    database = PostgresDatabase(
        name=parsed.database,
        user=parsed.username or "postgres",
        host=parsed.host or "127.0.0.1",
        port=int(parsed.port or 5432),
    )
    return database, parsed.password


def _remembered_file(paths: ServerPaths) -> Path:
    return paths.root / "database.json"


def remembered(paths: ServerPaths) -> PostgresDatabase | None:
    """The PostgreSQL database this server folder was started on, or None (SQLite)."""
    try:
        return PostgresDatabase(**json.loads(_remembered_file(paths).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def database_settings(paths: ServerPaths, database: str | None) -> dict[str, str]:
    """Label Studio's database variables for a start of ``paths``: ``database`` (a command-line URL), else
    ``$LABEL_STUDIO_DATABASE_URL``, else the database this folder was started on before; {} for SQLite.

    Raises ConfigurationError (one line) for a bad URL, a password on the command line or a server folder that
    already holds a SQLite Label Studio; ServiceUnavailable when the database does not answer.
    """
    environment_url = env.variable(DATABASE_URL_ENV)
    password: str | None = None
    target: PostgresDatabase | None
    if database:
        target, password = parse_database(database, from_command_line=True)
    elif environment_url:
        target, password = parse_database(environment_url, from_command_line=False)
    else:
        target = remembered(paths)
    if target is None:
        return {}
    if password is None:
        password = env.variable(PASSWORD_ENV) or env.variable(f"LABEL_STUDIO_{PASSWORD_ENV}") or ""
    previous = remembered(paths)
    if previous is None and (paths.ls_data / "label_studio.sqlite3").is_file():
        raise ConfigurationError(
            f"{paths.root} already holds a Label Studio on SQLite: start the PostgreSQL one in another data "
            "folder (LABELING_ASSETS_HOME), or stop using --database here"
        )
    _check_reachable(target, password)
    _remembered_file(paths).parent.mkdir(parents=True, exist_ok=True)
    _remembered_file(paths).write_text(json.dumps(target.__dict__))
    return target.settings(password)


def _check_reachable(target: PostgresDatabase, password: str) -> None:
    """One connection before Label Studio starts: its own failure would be a trace in its log after a minute."""
    url = sa.URL.create(
        "postgresql+psycopg2",
        username=target.user,
        password=password or None,
        host=target.host,
        port=target.port,
        database=target.name,
    )
    engine = sa.create_engine(url, connect_args={"connect_timeout": 10})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ServiceUnavailable(f"Label Studio's database {target.display} does not answer: {reason}") from exc
    finally:
        engine.dispose()
