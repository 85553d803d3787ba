"""The environment, read at run time: every variable the project reads, in one place (the only module that
touches ``os.environ``; tests/test_one_data_folder.py holds every other module to it).

Every path the project writes derives from one data folder, :func:`data_dir` (``$LABELING_ASSETS_HOME``, else
``<repo>/data``): the SQLite label store, the raw store and quarantine, the local Label Studio's files, MLflow's
local store, exports, backups, reports, the store's snapshot cache and the local Dagster instance's storage
(dagster.yaml's relative ``base_dir``s, ``local/instance_storage.py``).

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
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from labeling_assets.constants import REPO_ROOT
from labeling_assets.core.errors import ConfigurationError
from labeling_assets.core.store.schema import sqlite_url

LOCAL = "local"
PROD = "prod"
DEFAULT_LABEL_STUDIO_URL = "http://127.0.0.1:8080"
DEFAULT_LABEL_STUDIO_PROJECT = "labeling-assets"


class SettingMissing(ConfigurationError, RuntimeError):
    """A setting this deployment needs is in neither the resource config nor the environment (or is invalid)."""


def variable(name: str) -> str | None:
    """``$name`` now (an empty value counts as unset)."""
    return dg.EnvVar(name).get_value() or None


def data_dir() -> Path:
    """The project data folder: ``$LABELING_ASSETS_HOME`` or ``<repo>/data`` (git-ignored), absolute."""
    return Path(variable("LABELING_ASSETS_HOME") or REPO_ROOT / "data").resolve()


def store_cache_dir() -> Path:
    """Where a PostgreSQL store's snapshot of current annotations is kept: ``$LABELING_ASSETS_STORE_CACHE``,
    else ``<data>/cache/store`` (a SQLite store keeps it beside its file)."""
    return Path(variable("LABELING_ASSETS_STORE_CACHE") or data_dir() / "cache" / "store")


def cache_home() -> Path:
    """``$XDG_CACHE_HOME`` or ``~/.cache``: where installed tools live (the Label Studio venv), not data."""
    return Path(variable("XDG_CACHE_HOME") or Path.home() / ".cache")


def set_variable(name: str, value: str) -> None:
    """Set ``$name`` for this process and the runs and servers it starts."""
    os.environ[name] = value


def set_default(name: str, value: str) -> str:
    """``$name``, set to ``value`` first when unset; returns the value in force."""
    return os.environ.setdefault(name, value)


def child_environment(drop: Iterable[str] = (), **extra: str) -> dict[str, str]:
    """This process's environment for a child process, without ``drop``, with ``extra``."""
    environment = {k: v for k, v in os.environ.items() if k not in set(drop)}
    environment.update(extra)
    return environment


def needed_in_prod(name: str) -> None:
    """Raise SettingMissing naming ``name`` when the deployment is ``prod`` (no local default there)."""
    if deployment() == PROD:
        raise SettingMissing(f"{name} is not set (required when LABELING_ASSETS_DEPLOYMENT={PROD})")


def deployment() -> str:
    """``local`` or ``prod`` (``$LABELING_ASSETS_DEPLOYMENT``, default local)."""
    value = variable("LABELING_ASSETS_DEPLOYMENT") or LOCAL
    if value not in (LOCAL, PROD):
        raise SettingMissing(f"LABELING_ASSETS_DEPLOYMENT={value!r}: expected {LOCAL!r} or {PROD!r}")
    return value


def label_store_url() -> str:
    """``$LABEL_STORE_URL``, else (local) SQLite ``<data>/labels.db``."""
    url = variable("LABEL_STORE_URL")
    if url:
        return url
    needed_in_prod("LABEL_STORE_URL")
    return sqlite_url(str(data_dir() / "labels.db"))


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


def classes() -> list[str] | None:
    """``$LABELING_ASSETS_CLASSES``: the project's classes (entity types for text spans), comma-separated; None
    when unset (``ProjectSettings`` then has the digits). Read when ``ProjectSettings`` is made, as the task type."""
    value = variable("LABELING_ASSETS_CLASSES")
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    return names or None


def extra_fields() -> str:
    """``$LABELING_ASSETS_EXTRA_FIELDS``: the project's extra answer fields as JSON (``core/fields/spec.py``); empty
    when unset. Read when ``ProjectSettings`` is made, as the task type."""
    return variable("LABELING_ASSETS_EXTRA_FIELDS") or ""


def ask_self_confidence() -> bool:
    """``$LABELING_ASSETS_ASK_SELF_CONFIDENCE``: 1/true/yes adds the labeler's own confidence rating (1-5); unset
    or 0/false/no: not asked (the default); anything else is an error naming the variable."""
    value = (variable("LABELING_ASSETS_ASK_SELF_CONFIDENCE") or "false").strip().lower()
    if value not in {"1", "true", "yes", "0", "false", "no"}:
        raise SettingMissing(f"LABELING_ASSETS_ASK_SELF_CONFIDENCE={value!r}: expected true or false")
    return value in {"1", "true", "yes"}


def class_changes() -> str | None:
    """``$LABELING_ASSETS_CLASS_CHANGES``: the class renames, merges and splits that go with the class list
    (``rename cat->feline; merge husky,malamute->dog; split bird->sparrow,crow``); None when unset. Read when
    ``ProjectSettings`` is made, as the class list; checked when a run records the class list."""
    value = variable("LABELING_ASSETS_CLASS_CHANGES")
    return value.strip() if value and value.strip() else None


def allow_overlapping_spans() -> bool:
    """``$LABELING_ASSETS_ALLOW_OVERLAPPING_SPANS``: 1/true/yes lets a text_spans project keep overlapping (nested)
    entities; unset, 0/false/no: forbidden (the default); anything else is an error naming the variable. Read when
    ``ProjectSettings`` is made, as the task type."""
    value = (variable("LABELING_ASSETS_ALLOW_OVERLAPPING_SPANS") or "false").strip().lower()
    if value not in {"1", "true", "yes", "0", "false", "no"}:
        raise SettingMissing(f"LABELING_ASSETS_ALLOW_OVERLAPPING_SPANS={value!r}: expected true or false")
    return value in {"1", "true", "yes"}


def guidelines_path() -> str | None:
    """``$LABELING_ASSETS_GUIDELINES``: the labeling guidelines' Markdown file; None when unset. Read when
    ``ProjectSettings`` is made, as the task type."""
    return variable("LABELING_ASSETS_GUIDELINES")


def sweep_file() -> str | None:
    """``$LABELING_ASSETS_SWEEP``: the TOML file of a training sweep's grid (docs/model.md, "Sweeps"); None when
    unset. Read when ``sweep_plan`` runs (its run config's ``settings_file`` wins)."""
    return variable("LABELING_ASSETS_SWEEP")


ALLOCATIONS = ("rules", "allocator")


def allocation() -> str:
    """``$LABELING_ASSETS_ALLOCATION``: how ``labeling_tasks`` spends its slots, ``rules`` (dynamic overlap, the
    default) or ``allocator`` (docs/allocation.md); another value is a one-line error when the definitions load."""
    value = (variable("LABELING_ASSETS_ALLOCATION") or "rules").strip().lower()
    if value not in ALLOCATIONS:
        raise SettingMissing(f"LABELING_ASSETS_ALLOCATION={value!r}: expected one of {', '.join(ALLOCATIONS)}")
    return value


def demo_dir() -> Path:
    """Where the bundled demo digits are rendered: ``<data>/demo/digits``."""
    return data_dir() / "demo" / "digits"


def debug() -> bool:
    """``$LABELING_ASSETS_DEBUG`` set to 1/true/yes: the CLI shows tracebacks instead of one-line errors."""
    return (variable("LABELING_ASSETS_DEBUG") or "").strip().lower() in ("1", "true", "yes", "on")


def set_debug() -> None:
    """``--debug``: tracebacks for the rest of this process (runs it executes included)."""
    os.environ["LABELING_ASSETS_DEBUG"] = "1"


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
