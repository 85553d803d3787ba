"""The environment, read at run time: every variable the resources fall back on, in one place.

Nothing here runs at import. The resources call these functions when a run or a sensor tick uses them,
so ``dagster dev`` started before ``labeling-assets labelstudio start`` finds the server once it is up,
without a restart. Explicit resource config always wins over the environment.

``LABELING_ASSETS_DEPLOYMENT`` (read at run time too): ``local`` (default) falls back to the data folder's
defaults (SQLite label store, the local Label Studio's URL and token, a local MLflow store); ``prod`` (the
docker/ stack) needs ``LABEL_STORE_URL``, ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` and fails with
the variable's name instead of silently using a local default inside a container. Values are read
through ``dg.EnvVar`` and never become resource config, so the UI never shows a URL with a password.
"""

import os
from pathlib import Path

import dagster as dg

from labeling_assets.constants import data_dir
from labeling_assets.core.errors import ConfigurationError
from labeling_assets.core.store.schema import sqlite_url
from labeling_assets.local.labelstudio_files import default_paths, local_connection

LOCAL = "local"
PROD = "prod"
DEFAULT_LABEL_STUDIO_URL = "http://127.0.0.1:8080"
DEFAULT_LABEL_STUDIO_PROJECT = "labeling-assets"


class SettingMissing(ConfigurationError, RuntimeError):
    """A setting this deployment needs is in neither the resource config nor the environment (or is invalid)."""


def variable(name: str) -> str | None:
    """``$name`` now (an empty value counts as unset)."""
    return dg.EnvVar(name).get_value() or None


def deployment() -> str:
    """``local`` or ``prod`` (``$LABELING_ASSETS_DEPLOYMENT``, default local)."""
    value = variable("LABELING_ASSETS_DEPLOYMENT") or LOCAL
    if value not in (LOCAL, PROD):
        raise SettingMissing(f"LABELING_ASSETS_DEPLOYMENT={value!r}: expected {LOCAL!r} or {PROD!r}")
    return value


def _needed_in_prod(name: str) -> None:
    if deployment() == PROD:
        raise SettingMissing(f"{name} is not set (required when LABELING_ASSETS_DEPLOYMENT={PROD})")


def label_store_url() -> str:
    """``$LABEL_STORE_URL``, else (local) SQLite ``<data>/labels.db``."""
    url = variable("LABEL_STORE_URL")
    if url:
        return url
    _needed_in_prod("LABEL_STORE_URL")
    return sqlite_url(str(data_dir() / "labels.db"))


def label_studio_url() -> str:
    """``$LABEL_STUDIO_URL``, else (local) the local server's URL, else the port it starts on by default."""
    url = variable("LABEL_STUDIO_URL")
    if url:
        return url
    _needed_in_prod("LABEL_STUDIO_URL")
    local = local_connection()
    return local[0] if local else DEFAULT_LABEL_STUDIO_URL


def label_studio_token(url: str) -> str:
    """``$LABEL_STUDIO_API_KEY``, else (local) the local server's token, and only when ``url`` is that server:
    the local token is never sent to another server."""
    token = variable("LABEL_STUDIO_API_KEY")
    if token:
        return token
    _needed_in_prod("LABEL_STUDIO_API_KEY")
    local = local_connection()
    if local is not None and local[0] == url:
        return local[1]
    raise SettingMissing(
        f"no Label Studio API token for {url}: set LABEL_STUDIO_API_KEY, or start a local server with "
        f"`labeling-assets labelstudio start` (none under {default_paths().root})"
    )


def label_studio_project() -> str:
    """``$LABEL_STUDIO_PROJECT``, else ``labeling-assets``."""
    return variable("LABEL_STUDIO_PROJECT") or DEFAULT_LABEL_STUDIO_PROJECT


def image_source() -> str | None:
    """``$LABELING_ASSETS_IMAGE_SOURCE`` (None: the bundled demo digits)."""
    return variable("LABELING_ASSETS_IMAGE_SOURCE")


def task_type() -> str:
    """``$LABELING_ASSETS_TASK_TYPE``: ``single_label`` (default) or ``multi_label``; anything else is an error
    naming the variable. Read when ``ProjectSettings`` is made (the definitions load), so a process started
    with it (``dagster dev``, ``labeling-assets demo --task multi-label``) runs every stage that way."""
    from labeling_assets.core.label_sets import TASK_TYPES

    value = (variable("LABELING_ASSETS_TASK_TYPE") or TASK_TYPES[0]).strip().lower().replace("-", "_")
    if value not in TASK_TYPES:
        raise SettingMissing(f"LABELING_ASSETS_TASK_TYPE={value!r}: expected one of {', '.join(TASK_TYPES)}")
    return value


def demo_dir() -> Path:
    """Where the bundled demo digits are rendered: ``<data>/demo/digits``."""
    return data_dir() / "demo" / "digits"


def debug() -> bool:
    """``$LABELING_ASSETS_DEBUG`` set to 1/true/yes: the CLI shows tracebacks instead of one-line errors."""
    return (variable("LABELING_ASSETS_DEBUG") or "").strip().lower() in ("1", "true", "yes", "on")


def mlflow_tracking_uri() -> str | None:
    """``$MLFLOW_TRACKING_URI`` (None: the local SQLite store under the data folder)."""
    return variable("MLFLOW_TRACKING_URI")


def use_mlflow_credentials(username: str, password: str) -> None:
    """Hand MLflow's client the basic-auth login of a tracking server through its own variables
    (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, read on each request): a password left in the tracking URI is
    printed by MLflow with the URI ("View run ... at: ...")."""
    os.environ["MLFLOW_TRACKING_USERNAME"] = username
    os.environ["MLFLOW_TRACKING_PASSWORD"] = password


def disable_mlflow_telemetry() -> None:
    """``MLFLOW_DISABLE_TELEMETRY=true`` unless set: no network call at run time that nobody asked for."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
