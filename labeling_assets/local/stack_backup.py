"""The whole stack of this deployment in one bundle, and back onto a wiped machine (``store backup|restore --all``).

Parts, in the order they are taken (the label store first: Label Studio is then never older than the store, so
an annotation saved between the two snapshots is synced again after a restore instead of looking deleted):

- ``labels``: the label store, ``core/store/backup.py``'s verified backup (SQLite online backup or ``pg_dump``).
- ``labelstudio``: the local server's folder ``<data>/labelstudio`` (its SQLite database as a snapshot, uploaded
  media, the token and admin password files; not its pid file, port file, log or cache).
- ``labelstudio_database``: a Label Studio on PostgreSQL (``labelstudio start --database``, or
  ``$LABEL_STUDIO_DATABASE_URL`` for one that runs elsewhere): ``pg_dump`` when it answers, else skipped.
- ``labelstudio_export/<id>.json``: Label Studio's own JSON export of every project whose title starts with the
  project's (the labeling project, blind labelers' projects, the review project): a portable copy any Label
  Studio imports; not restored by ``--all`` (the database is). Skipped with the reason when the server is down.
- ``mlflow``: the local tracking store ``<data>/mlflow`` (SQLite snapshot and artifacts), or ``pg_dump`` of a
  PostgreSQL ``$MLFLOW_TRACKING_URI``; a tracking server (http) is skipped: back it up where it runs.
- ``dagster``: the local instance's storage ``<data>/dagster`` (the repository's dagster.yaml), or ``pg_dump``
  of the PostgreSQL storage the ``$DAGSTER_HOME/dagster.yaml`` names.
- ``raw``: the raw copies ``<data>/raw`` (content-addressed, immutable), unless ``raw=False``.

Secrets (URLs' passwords, tokens) are never written to the manifest or a message; the bundle itself holds the
token files inside the Label Studio part, as the server's own database does, so it is 0700/0600.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
import yaml

from labeling_assets import env
from labeling_assets.constants import REPO_ROOT
from labeling_assets.core.errors import display_url
from labeling_assets.core.store import backup
from labeling_assets.core.store import stack_bundle as sb
from labeling_assets.core.store.backup import BackupError
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.local.labelstudio_database import (
    DATABASE_URL_ENV,
    PASSWORD_ENV,
    parse_database,
    remembered,
)
from labeling_assets.local.labelstudio_files import ServerPaths, default_paths, local_connection
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioError

BUNDLE_PREFIX = "stack-"
LABELSTUDIO_TABLES = ("project", "task", "task_completion", "prediction", "htx_user")
LABELSTUDIO_COUNT = {"data/label_studio.sqlite3": LABELSTUDIO_TABLES}
LABELSTUDIO_LEFT_OUT = ("server.pid", "server.json", "server.log", "cache")
MLFLOW_TABLES = ("experiments", "runs", "registered_models", "model_versions", "registered_model_aliases")
MLFLOW_COUNT = {"mlflow.db": MLFLOW_TABLES}
DAGSTER_TABLES = ("runs", "event_logs", "jobs", "job_ticks")
DAGSTER_COUNT = {"storage/history/runs.db": ("runs",), "storage/history/runs/index.db": ("event_logs",),
                 "storage/schedules/schedules.db": ("jobs", "job_ticks")}  # fmt: skip


@dataclass(frozen=True)
class Database:
    """A PostgreSQL database of the stack: ``url`` may carry a password, ``display`` never does."""

    url: str
    display: str


@dataclass(frozen=True)
class Stack:
    """Where each part of this deployment lives, read from the environment and the data folder."""

    data: Path
    store_url: str
    labelstudio: ServerPaths
    labelstudio_database: Database | None
    mlflow_uri: str | None  # None: the local store <data>/mlflow
    dagster_database: Database | None  # None: the local instance's <data>/dagster

    @property
    def mlflow_folder(self) -> Path:
        return self.data / "mlflow"

    @property
    def dagster_folder(self) -> Path:
        return self.data / "dagster"


def discover(data: Path | None = None, store_url: str | None = None) -> Stack:
    """The stack of the data folder ``data`` (default: the environment's) and the label store ``store_url``."""
    data = data or env.data_dir()
    paths = ServerPaths(data / "labelstudio") if data != env.data_dir() else default_paths()
    mlflow_uri = env.mlflow_tracking_uri()
    if mlflow_uri and mlflow_uri.startswith("sqlite:"):
        local = sa.make_url(mlflow_uri).database
        mlflow_uri = None if local and Path(local).resolve().parent == data / "mlflow" else mlflow_uri
    return Stack(data, store_url or env.label_store_url(), paths, _labelstudio_database(paths), mlflow_uri,
                 _dagster_database())  # fmt: skip


def _labelstudio_database(paths: ServerPaths, display: str | None = None) -> Database | None:
    """Label Studio's PostgreSQL database: ``$LABEL_STUDIO_DATABASE_URL``, else the one the local folder was
    started on (or ``display``, a manifest's source), with the password of ``$POSTGRE_PASSWORD``."""
    url = env.variable(DATABASE_URL_ENV)
    if url:
        target, password = parse_database(url, from_command_line=False)
    else:
        found = remembered(paths)
        if found is None and display:
            found, _ = parse_database(display, from_command_line=False)
        if found is None:
            return None
        target, password = found, None
    password = password or env.variable(PASSWORD_ENV) or env.variable(f"LABEL_STUDIO_{PASSWORD_ENV}")
    full = sa.URL.create("postgresql+psycopg2", target.user, password, target.host, target.port, target.name)
    return Database(full.render_as_string(hide_password=False), target.display)


def _dagster_database() -> Database | None:
    """The PostgreSQL storage ``$DAGSTER_HOME/dagster.yaml`` names (values or ``{env: NAME}``), else None."""
    config = Path(env.variable("DAGSTER_HOME") or REPO_ROOT) / "dagster.yaml"
    try:
        postgres = (yaml.safe_load(config.read_text()) or {}).get("storage", {}).get("postgres")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    if not isinstance(postgres, dict):
        return None

    def value(raw: Any) -> str | None:
        return env.variable(str(raw["env"])) if isinstance(raw, dict) and "env" in raw else (None if raw is None else str(raw))

    if postgres.get("postgres_url") is not None:
        url = value(postgres["postgres_url"]) or ""
    else:
        db = postgres.get("postgres_db") or {}
        port = value(db.get("port"))
        url = sa.URL.create("postgresql+psycopg2", value(db.get("username")), value(db.get("password")),
                            value(db.get("hostname")), int(port) if port else None,
                            value(db.get("db_name"))).render_as_string(hide_password=False)  # fmt: skip
    return Database(url, display_url(url)) if url else None


# --- backup --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackBackup:
    bundle: Path
    manifest: sb.Manifest
    seconds: float
    removed: list[Path] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.bundle.rglob("*") if p.is_file())


def backup_stack(folder: Path, *, keep: int, raw: bool = True, stack: Stack | None = None,
                 now: dt.datetime | None = None) -> StackBackup:  # fmt: skip
    """One bundle ``<folder>/stack-<UTC time>/`` of every part (see the module doc); the newest ``keep`` kept.

    Raises:
        BackupError: the label store could not be backed up (every other part is skipped with its reason).
    """
    if keep < 1:
        raise BackupError(f"keep={keep}: at least the new bundle must be kept")
    stack = stack or discover()
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    sb.private_folder(folder)
    partial = folder / f".{BUNDLE_PREFIX}{stamp}.partial"
    sb.private_folder(partial)
    started = time.perf_counter()
    try:
        parts = [_labels(stack, partial), *_labelstudio(stack, partial), _mlflow(stack, partial),
                 _dagster(stack, partial)]  # fmt: skip
        parts.append(_folder("raw", stack.data / "raw", partial) if raw else sb.skipped("raw", "left out (--no-raw)"))
        bundle = folder / f"{BUNDLE_PREFIX}{stamp}"
        sb.write_manifest(partial, sb.Manifest(stamp, parts))
        partial.rename(bundle)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return StackBackup(bundle, sb.read_manifest(bundle), time.perf_counter() - started, prune(folder, keep))


def list_bundles(folder: Path) -> list[Path]:
    """The bundles in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.name.startswith(BUNDLE_PREFIX) and (p / sb.MANIFEST).is_file()),
                  key=lambda p: p.name)  # fmt: skip


def prune(folder: Path, keep: int) -> list[Path]:
    old = list_bundles(folder)[:-keep]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return old


def _labels(stack: Stack, bundle: Path) -> sb.Part:
    store = LabelStore(stack.store_url)
    try:
        made = backup.backup_store(store, bundle / "labels", keep=1)
        source = repr(store)
    finally:
        store.dispose()
    summary = made.summary
    return sb.made_part("labels", "label-store", bundle, made.path, summary.tables, source, summary.annotations_sha256)


def _folder(name: str, folder: Path, bundle: Path, **kwargs: Any) -> sb.Part:
    if not folder.is_dir() or not any(folder.iterdir()):
        return sb.skipped(name, f"nothing at {folder}", str(folder))
    return sb.folder_part(name, folder, bundle, **kwargs)


def _remote(name: str, source: str, make: Callable[[], sb.Part]) -> sb.Part:
    """``make()``, or the part skipped with the one-line reason when its server does not answer or refuses."""
    try:
        return make()
    except (BackupError, sa.exc.SQLAlchemyError, LabelStudioError, requests.RequestException, env.SettingMissing) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return sb.skipped(name, reason, source)


def _labelstudio(stack: Stack, bundle: Path) -> list[sb.Part]:
    parts = [_folder("labelstudio", stack.labelstudio.root, bundle, count=LABELSTUDIO_COUNT, exclude=LABELSTUDIO_LEFT_OUT)]
    db = stack.labelstudio_database
    if db is not None:
        parts.append(_remote("labelstudio_database", db.display, lambda: sb.postgres_part(
            "labelstudio_database", db.url, bundle, tables=LABELSTUDIO_TABLES, source=db.display)))  # fmt: skip
    return [*parts, *_exports(stack, bundle)]


def _connection(stack: Stack) -> tuple[str, str] | None:
    """Label Studio's URL and token: ``$LABEL_STUDIO_URL`` / ``_API_KEY``, else the stack's local server (whose
    token goes to that server only)."""
    local = local_connection(stack.labelstudio)
    url = env.variable("LABEL_STUDIO_URL") or (local[0] if local else None)
    token = env.variable("LABEL_STUDIO_API_KEY") or (local[1] if local and local[0] == url else None)
    return (url, token) if url and token else None


def _exports(stack: Stack, bundle: Path) -> list[sb.Part]:
    if (connection := _connection(stack)) is None:
        return [sb.skipped("labelstudio_export", f"no Label Studio: none was started under {stack.labelstudio.root} "
                           "and LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY are unset")]  # fmt: skip
    url, token = connection
    try:
        client = LabelStudioClient(url, token, timeout_s=120.0)
        title = env.label_studio_project()
        projects = [p for p in client.list_projects() if str(p.get("title", "")).startswith(title)]
    except (LabelStudioError, requests.RequestException, env.SettingMissing, OSError) as exc:
        return [sb.skipped("labelstudio_export", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)]
    if not projects:
        return [sb.skipped("labelstudio_export", f"no project titled {title!r}* at {display_url(url)}")]

    def one(project: dict[str, Any]) -> sb.Part:
        data = client.export_json(int(project["id"]))
        counts = sb.export_counts(json.loads(data))
        return sb.json_part(f"labelstudio_export/{project['id']}", f"labelstudio_export/{project['id']}.json", data,
                            bundle, counts, f"{display_url(url)} project {project['id']} {project.get('title')!r}")  # fmt: skip

    return [_remote(f"labelstudio_export/{p['id']}", display_url(url), partial(one, p)) for p in projects]


def _mlflow(stack: Stack, bundle: Path) -> sb.Part:
    uri = stack.mlflow_uri
    if uri is None:
        return _folder("mlflow", stack.mlflow_folder, bundle, count=MLFLOW_COUNT)
    shown = display_url(uri)
    if uri.startswith("postgresql"):
        return _remote("mlflow", shown, lambda: sb.postgres_part("mlflow", uri, bundle, tables=MLFLOW_TABLES, source=shown))
    return sb.skipped("mlflow", "a tracking server or a store outside the data folder: back up its backend store "
                      "and artifact root where it runs", shown)  # fmt: skip


def _dagster(stack: Stack, bundle: Path) -> sb.Part:
    db = stack.dagster_database
    if db is None:
        return _folder("dagster", stack.dagster_folder, bundle, count=DAGSTER_COUNT)
    return _remote("dagster", db.display, lambda: sb.postgres_part("dagster", db.url, bundle, tables=DAGSTER_TABLES,
                                                                   source=db.display))  # fmt: skip


# --- restore -------------------------------------------------------------------------------------


def restore_stack(bundle: Path, *, stack: Stack | None = None) -> sb.Manifest:
    """Bring every part of ``bundle`` back onto this machine's (empty) stack; the export stays in the bundle.

    Everything is checked before anything is written: the manifest, every part's SHA-256, and that every target
    is empty (absent folders, an absent SQLite file, PostgreSQL databases that exist and hold no table).

    Raises:
        BackupError: one line naming every problem; nothing was restored when it comes from the checks.
    """
    manifest = sb.read_manifest(bundle)
    if problems := sb.verify_files(bundle, manifest):
        raise BackupError(f"{bundle}: refused, nothing restored: {'; '.join(problems)}")
    stack = stack or discover()
    plan = _plan(stack, manifest, bundle)
    if busy := [why for check, _ in plan if (why := check()) is not None]:
        raise BackupError(f"refused, nothing restored (restore onto an empty stack): {'; '.join(busy)}")
    for _, restore in plan:
        restore()
    return manifest


Step = tuple[Callable[[], str | None], Callable[[], None]]


def _plan(stack: Stack, manifest: sb.Manifest, bundle: Path) -> list[Step]:
    """(check, restore) for every part the bundle holds, in the order they were taken."""
    steps: list[Step] = []
    folders: dict[str, tuple[Path, Mapping[str, Iterable[str]]]] = {
        "labelstudio": (stack.labelstudio.root, LABELSTUDIO_COUNT),
        "mlflow": (stack.mlflow_folder, MLFLOW_COUNT),
        "dagster": (stack.dagster_folder, DAGSTER_COUNT),
        "raw": (stack.data / "raw", {}),
    }
    for part in manifest.parts:
        if part.status != sb.OK or part.kind == "json":
            continue
        if part.name == "labels":
            steps.append((partial(_store_target_busy, stack.store_url), partial(_restore_labels, part, bundle, stack)))
        elif part.kind == "folder":
            folder, count = folders[part.name]
            steps.append((partial(sb.refuse_non_empty_folder, part.name, folder),
                          partial(sb.restore_folder, part, bundle, folder, count=count)))  # fmt: skip
        elif part.kind == "pgdump":
            db = _database_for(stack, part)
            tables = {"labelstudio_database": LABELSTUDIO_TABLES, "mlflow": MLFLOW_TABLES}.get(part.name, DAGSTER_TABLES)
            steps.append((partial(sb.postgres_is_empty, part.name, db.url, db.display),
                          partial(sb.restore_postgres, part, bundle, db.url, tables=tables, source=db.display)))  # fmt: skip
    return steps


def _database_for(stack: Stack, part: sb.Part) -> Database:
    found: Database | None
    if part.name == "labelstudio_database":
        found = _labelstudio_database(stack.labelstudio, part.source)
    elif part.name == "mlflow":
        found = Database(stack.mlflow_uri, display_url(stack.mlflow_uri)) if stack.mlflow_uri else None
    else:
        found = stack.dagster_database
    if found is None:
        raise BackupError(f"{part.name}: the bundle has a PostgreSQL dump ({part.source}) but this machine names no "
                          "PostgreSQL database for it (set its URL as for the running stack)")  # fmt: skip
    return found


def _store_target_busy(url: str) -> str | None:
    store = LabelStore(url)
    try:
        if store.backend == "sqlite":
            path = Path(sa.make_url(url).database or "")
            return f"labels: {path} already exists" if path.exists() and path.stat().st_size > 0 else None
        return sb.postgres_is_empty("labels", url, repr(store))
    finally:
        store.dispose()


def _restore_labels(part: sb.Part, bundle: Path, stack: Stack) -> None:
    restored = backup.restore_store(bundle / part.file, stack.store_url)
    expected = backup.StoreSummary(part.counts, part.content_sha256)
    if diff := restored.differences(expected):
        raise BackupError(f"labels: the restored store differs from the manifest: {'; '.join(diff)}")
