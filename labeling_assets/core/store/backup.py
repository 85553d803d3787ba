"""Backups of the label store: compressed, consistent, verified on restore, the last N kept.

- SQLite: the online backup API (``sqlite3.Connection.backup``) copies a consistent snapshot while writers
  go on, then gzip: ``labels-<UTC time>.sqlite.gz``.
- PostgreSQL: ``pg_dump`` in its custom format (compressed, restored with ``pg_restore``):
  ``labels-<UTC time>.pgdump``. The row counts are taken in a REPEATABLE READ transaction whose snapshot
  pg_dump reuses (``--snapshot``), so counts and dump describe the same instant.

Each backup has a sidecar ``<file>.json``: backend, schema version, the row count of every table and a
content hash of the annotation log. ``restore_store`` refuses a target that already holds tables (a restore
never merges into live data), restores, recomputes the summary and fails naming every difference. The
password of a PostgreSQL URL goes to pg_dump/pg_restore through ``PGPASSWORD``, never on a command line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store.schema import LabelStore, annotations_table

PREFIX = "labels-"
SQLITE_SUFFIX = ".sqlite.gz"
POSTGRES_SUFFIX = ".pgdump"
SIDECAR_SUFFIX = ".json"
_CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says what and where."""


@dataclass(frozen=True)
class StoreSummary:
    """Row count of every table and a content hash of the annotation log (ordered by row id)."""

    tables: dict[str, int]
    annotations_sha256: str

    def differences(self, other: StoreSummary) -> list[str]:
        """What differs from ``other`` (empty when equal), one line per table or hash."""
        out = [
            f"{name}: {self.tables.get(name)} rows vs {other.tables.get(name)}"
            for name in sorted(set(self.tables) | set(other.tables))
            if self.tables.get(name) != other.tables.get(name)
        ]
        if self.annotations_sha256 != other.annotations_sha256:
            out.append("annotation log content hash differs")
        return out


@dataclass(frozen=True)
class BackupResult:
    path: Path
    summary: StoreSummary
    seconds: float
    removed: list[Path] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def summarize(conn: Connection) -> StoreSummary:
    """The summary of the database behind ``conn`` (every table it holds, not only the ones we know)."""
    names = sorted(sa.inspect(conn).get_table_names())
    counts = {name: int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar() or 0)
              for name in names}  # fmt: skip
    digest = hashlib.sha256()
    if annotations_table.name in names:
        rows = conn.execute(sa.select(annotations_table).order_by(annotations_table.c.id))
        for row in rows:
            digest.update(json.dumps(dict(row._mapping), sort_keys=True, default=_stable).encode())
            digest.update(b"\n")
    return StoreSummary(counts, digest.hexdigest())


def _stable(value: Any) -> str:
    # SQLite hands datetimes back naive, PostgreSQL aware: compare instants, not their spelling.
    if isinstance(value, dt.datetime):
        instant = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo is not None else value
        return instant.isoformat()
    return str(value)


def store_summary(store: LabelStore) -> StoreSummary:
    with store.engine.connect() as conn:
        return summarize(conn)


# --- backup --------------------------------------------------------------------------------------


def backup_store(store: LabelStore, folder: Path, *, keep: int, now: dt.datetime | None = None) -> BackupResult:
    """Write a compressed backup of ``store`` under ``folder`` and keep only the newest ``keep``.

    Raises:
        BackupError: the backend is neither SQLite nor PostgreSQL, or pg_dump failed (its message is kept).
    """
    if keep < 1:
        raise BackupError(f"keep={keep}: at least the new backup must be kept")
    # Owner-only: a backup is the whole store, hidden gold included.
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):  # not ours to change (a shared folder): the files below are still 0600
        folder.chmod(0o700)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    started = time.perf_counter()
    if store.backend == "sqlite":
        path = folder / f"{PREFIX}{stamp}{SQLITE_SUFFIX}"
        summary = _backup_sqlite(_sqlite_path(store.url), path)
    elif store.backend == "postgresql":
        path = folder / f"{PREFIX}{stamp}{POSTGRES_SUFFIX}"
        summary = _backup_postgres(store, path)
    else:
        raise BackupError(f"cannot back up a {store.backend} store: SQLite and PostgreSQL only")
    sidecar = {
        "backend": store.backend,
        "schema_version": store.schema_version(),
        "created_at": stamp,
        "tables": summary.tables,
        "annotations_sha256": summary.annotations_sha256,
    }
    _atomic_write(Path(f"{path}{SIDECAR_SUFFIX}"), json.dumps(sidecar, indent=2, sort_keys=True).encode())
    for written in (path, Path(f"{path}{SIDECAR_SUFFIX}")):
        written.chmod(0o600)
    return BackupResult(path, summary, time.perf_counter() - started, prune(folder, keep))


def list_backups(folder: Path) -> list[Path]:
    """The backups in ``folder``, oldest first (the UTC time in the name orders them)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and p.name.endswith((SQLITE_SUFFIX, POSTGRES_SUFFIX))]
    return sorted(found, key=lambda p: p.name)


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` backups (with their sidecars); returns what was removed."""
    old = list_backups(folder)[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
        Path(f"{path}{SIDECAR_SUFFIX}").unlink(missing_ok=True)
    return old


def _sqlite_path(url: str) -> Path:
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url}: an in-memory SQLite store has no file to back up")
    return Path(database)


def _backup_sqlite(source: Path, target: Path) -> StoreSummary:
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".backup-") as tmp:
        copy = Path(tmp) / "labels.db"
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)  # a consistent snapshot, page by page, while other connections write
        finally:
            src.close()
            dst.close()
        summary = _summary_of_sqlite_file(copy)
        partial = target.with_name(f".{target.name}.partial")
        with copy.open("rb") as raw, gzip.open(partial, "wb", compresslevel=6) as packed:
            shutil.copyfileobj(raw, packed, _CHUNK)
        partial.replace(target)
    return summary


def _summary_of_sqlite_file(path: Path) -> StoreSummary:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return summarize(conn)
    finally:
        engine.dispose()


def _libpq_env(url: str) -> dict[str, str]:
    """The libpq variables for ``url``: the password travels in the environment, not in argv."""
    parsed = sa.engine.make_url(url)
    env = dict(os.environ)
    for name, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", parsed.port),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
        ("PGSSLMODE", parsed.query.get("sslmode")),
    ):
        if value is not None:
            env[name] = str(value)
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not on PATH: install the PostgreSQL client (Debian: apt-get install postgresql-client)")
    return found


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{what} failed ({Path(argv[0]).name} exit {done.returncode}): {done.stderr.strip()}")


def _backup_postgres(store: LabelStore, target: Path) -> StoreSummary:
    partial = target.with_name(f".{target.name}.partial")
    with store.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar())
        summary = summarize(conn)
        # The transaction stays open while pg_dump reads from its snapshot.
        _run([_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--no-owner", f"--file={partial}"],
             _libpq_env(store.url), f"pg_dump of {store!r}")  # fmt: skip
    partial.replace(target)
    return summary


def _atomic_write(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


# --- restore -------------------------------------------------------------------------------------


def read_sidecar(path: Path) -> StoreSummary | None:
    """The summary written next to a backup, or None when the sidecar is missing."""
    sidecar = Path(f"{path}{SIDECAR_SUFFIX}")
    if not sidecar.is_file():
        return None
    data = json.loads(sidecar.read_text())
    return StoreSummary({str(k): int(v) for k, v in data["tables"].items()}, str(data["annotations_sha256"]))


def restore_store(path: Path, to_url: str) -> StoreSummary:
    """Restore the backup ``path`` into the empty database ``to_url`` and verify it against its sidecar.

    A SQLite backup restores into a new SQLite file, a PostgreSQL dump into an existing, empty PostgreSQL
    database (create it first: ``createdb``). The source backup is never changed.

    Raises:
        BackupError: the file is missing or of another backend, the target is not empty, the restore
            tool failed, or the restored store differs from the summary taken at backup time.
    """
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    target = LabelStore(to_url)
    try:
        if path.name.endswith(SQLITE_SUFFIX):
            _need_backend(target, "sqlite", path)
            _restore_sqlite(path, _sqlite_path(to_url))
        elif path.name.endswith(POSTGRES_SUFFIX):
            _need_backend(target, "postgresql", path)
            _refuse_non_empty(target)
            _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={target.engine.url.database}", str(path)],
                 _libpq_env(to_url), f"pg_restore of {path} into {target!r}")  # fmt: skip
        else:
            raise BackupError(f"{path.name}: not a label store backup (*{SQLITE_SUFFIX} or *{POSTGRES_SUFFIX})")
        restored = store_summary(target)
    finally:
        target.dispose()
    expected = read_sidecar(path)
    if expected is not None and (diff := restored.differences(expected)):
        raise BackupError(f"restored {target!r} differs from the backup's summary: {'; '.join(diff)}")
    return restored


def _need_backend(target: LabelStore, backend: str, path: Path) -> None:
    if target.backend != backend:
        raise BackupError(f"{path.name} is a {backend} backup; {target!r} is {target.backend}: restore it into a {backend} database")


def _refuse_non_empty(target: LabelStore) -> None:
    with target.engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
    if tables:
        raise BackupError(f"{target!r} already holds tables ({', '.join(sorted(tables)[:5])}...): restore into an empty database")


def _restore_sqlite(path: Path, database: Path) -> None:
    if database.exists() and database.stat().st_size > 0:
        raise BackupError(f"{database} already exists: restore into a new file")
    database.parent.mkdir(parents=True, exist_ok=True)
    partial = database.with_name(f".{database.name}.partial")
    try:
        with gzip.open(path, "rb") as packed, partial.open("wb") as raw:
            shutil.copyfileobj(packed, raw, _CHUNK)
    except (OSError, EOFError) as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"{path} is not a readable gzip backup: {exc}") from exc
    with _closing_sqlite(partial) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()
    if not check or check[0] != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"{path}: the restored database fails SQLite's integrity check ({check})")
    partial.replace(database)


@contextmanager
def _closing_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path)
    try:
        yield conn
    finally:
        conn.close()
