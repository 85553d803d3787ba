"""The label store's connection errors in one line: what is wrong (no such database, no server, a refused
login, a file that cannot be opened) and where (host:port, database name, file path), never the password.

``LabelStore`` hooks :func:`translate_connect_error` into SQLAlchemy's ``handle_error`` event for errors
raised while connecting, so every caller (a run, the CLI, a benchmark) gets a ``ConfigurationError`` or
``ServiceUnavailable`` instead of a driver trace whose cause is on its last line. A connection the server
drops (restarted, stopped, network cut) is ``ServiceUnavailable`` too (:func:`lost_connection`); other errors
of a query on an open connection are left as they are: they are not configuration.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from labeling_assets.core.errors import (
    ConfigurationError,
    ServiceUnavailable,
    SetupError,
    display_url,
    one_line,
)

FIX = "fix LABEL_STORE_URL or the label_store resource's url"
# libpq refusing a login (the role, its password, or pg_hba.conf): the server is up, the settings are wrong.
_LOGIN_REFUSED = ("password authentication failed", "no password supplied", "pg_hba.conf", "role ")
# No server to talk to at that address (down, wrong port, wrong host, firewall).
_NO_SERVER = ("connection refused", "could not translate host name", "timeout expired", "no route to host",
              "is the server running", "could not connect", "network is unreachable")


def store_url_for_display(url: sa.URL | str) -> str:
    """The store URL without its password."""
    if isinstance(url, sa.URL):
        return url.render_as_string(hide_password=True)
    return display_url(url)


def _reason(exc: BaseException, password: str | None) -> str:
    """The driver's message on one line, without libpq's "connection to server at ... failed:" preamble."""
    text = str(getattr(exc, "orig", None) or exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = re.sub(r"^connection to server (at|on) .*? failed:\s*", "", first)
    first = first.replace("FATAL:", "").strip()
    if password:
        first = first.replace(password, "***")
    return one_line(first, 200)


def translate_connect_error(url: sa.URL, exc: BaseException) -> SetupError:
    """The setup error that names why connecting to the store at ``url`` failed with ``exc``."""
    shown = store_url_for_display(url)
    reason = _reason(exc, url.password if isinstance(url.password, str) else None)
    lowered = reason.lower()
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        return ConfigurationError(
            f"label store: cannot open the SQLite file {path} ({reason}): its folder must exist and be writable; {FIX}"
        )
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if "does not exist" in lowered and "database" in lowered:
        return ConfigurationError(
            f"label store: PostgreSQL database {url.database!r} does not exist on {where} ({shown}): "
            f"create it (createdb) or {FIX}"
        )
    if any(marker in lowered for marker in _LOGIN_REFUSED):
        return ConfigurationError(
            f"label store: PostgreSQL on {where} refused user {url.username!r} ({reason}; {shown}): {FIX}"
        )
    if any(marker in lowered for marker in _NO_SERVER):
        return ServiceUnavailable(
            f"label store: no PostgreSQL server answers on {where} ({reason}; {shown}): start it or {FIX}"
        )
    return ServiceUnavailable(f"label store: cannot connect to {shown}: {reason}")


def lost_connection(url: sa.URL, exc: BaseException) -> ServiceUnavailable:
    """The server closed an open connection (restarted, stopped, network cut): what was in flight is rolled back."""
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    reason = _reason(exc, url.password if isinstance(url.password, str) else None)
    return ServiceUnavailable(
        f"label store: lost the connection to PostgreSQL on {where} ({reason}; {store_url_for_display(url)}): "
        "nothing of the open transaction was committed; check that the server is up (a retry reconnects)"
    )


def invalid_url(url: str, exc: BaseException) -> ConfigurationError:
    """A store URL SQLAlchemy cannot use (unparseable, unknown dialect, driver not installed)."""
    reason = f"{type(exc).__name__}: {one_line(str(exc), 120)}" if isinstance(exc, ImportError) else type(exc).__name__
    return ConfigurationError(
        f"label store: {display_url(url)} is not a usable SQLAlchemy URL ({reason}); "
        "expected sqlite:///path or postgresql+psycopg2://user@host:port/db"
    )


def create_engine(url: str, **kwargs: Any) -> sa.Engine:
    """``sa.create_engine`` whose errors name their cause in one line: an unusable URL (its message may hold
    the password, so only the URL without it is shown) and, later, any error raised while connecting."""
    try:
        engine = sa.create_engine(url, **kwargs)
    except (sa.exc.ArgumentError, ImportError, ValueError) as exc:
        raise invalid_url(url, exc) from None

    def on_error(context: Any) -> None:
        if context.connection is None:  # raised while connecting: no connection was ever handed out
            raise translate_connect_error(engine.url, context.original_exception)
        if context.is_disconnect and engine.url.get_backend_name() != "sqlite":
            # The server went away under an open connection (SQLAlchemy still invalidates it and the pool).
            raise lost_connection(engine.url, context.original_exception)

    sa.event.listen(engine, "handle_error", on_error)
    return engine


def make_folder(url: str, folder: Path) -> None:
    """Create a SQLite store's folder; a folder that cannot be made is a configuration error naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise translate_connect_error(sa.engine.make_url(url), exc) from exc
