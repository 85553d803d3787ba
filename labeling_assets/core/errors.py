"""Errors a person fixes outside the code: a setting, a path, a server. Each says in one line what and where.

The resources raise them (``resources/errors.py`` makes them ``dg.Failure`` inside a run, so a run's failure
is this line, not a stack trace); the ``labeling-assets`` command prints the line and exits with the class's
``exit_code``. A message shows a URL only through ``display_url`` (never a password or token).
"""

import re
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"


class SetupError(Exception):
    """A configuration or connection problem: the message names what is wrong and where (one line)."""

    exit_code = 1
    retryable = False  # whether retrying the same run, unchanged, may succeed


class ConfigurationError(SetupError):
    """A setting is missing or wrong: a path that is not there, a database that does not exist, a refused token."""

    exit_code = 2


class ServiceUnavailable(SetupError):
    """A service that is configured does not answer (PostgreSQL, Label Studio, MLflow): start it or fix its URL."""

    exit_code = 3
    retryable = True


def display_url(url: str) -> str:
    """``url`` safe to print: a password in it becomes ``***`` (``user:***@host``); nothing else changes."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not parseable as a URL (a bad port): keep only what precedes any credentials
        return url.split("@", 1)[-1] if "@" in url else url
    if not password:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{HIDDEN}@{hostport}"))


def one_line(text: str, limit: int = 300) -> str:
    """The text on one line (whitespace runs collapsed), cut at ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def connection_reason(exc: BaseException) -> str:
    """The OS-level cause inside an HTTP client's long message: "[Errno 111] Connection refused" -> that,
    else a timeout or the exception's type name."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        return found.group(1).strip()
    for phrase in ("Name or service not known", "timed out", "Connection refused", "Connection reset"):
        if phrase.lower() in text.lower():
            return phrase.lower()
    return type(exc).__name__


_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s:/@]*:)[^\s@/]+@")


def hide_url_passwords(text: str) -> str:
    """Every ``scheme://user:password@`` in free text (an exception's message) as ``scheme://user:***@``."""
    return _URL_PASSWORD.sub(rf"\1{HIDDEN}@", text)


def unexpected_line(exc: BaseException, limit: int = 400) -> str:
    """An exception no layer explained, in one line for a person: what failed and on which file or value,
    the class name last (an ``OSError`` names its file: ``No space left on device: /data/raw/ab/...``)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = ", ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        text = f"{exc.strerror}: {where}" if where else exc.strerror
    else:
        text = str(exc) or "no message"
    return one_line(f"{hide_url_passwords(text)} ({type(exc).__name__})", limit)
