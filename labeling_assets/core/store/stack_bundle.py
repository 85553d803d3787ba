"""A whole-stack backup bundle: a folder of parts and a ``manifest.json`` naming each with its counts and hash.

A part is one thing a team runs, saved whole: the label store (``core/store/backup.py``'s verified backup), a
server's folder (a gzipped tar in which every SQLite database is an online-backup snapshot, so a running server is
copied consistently), a PostgreSQL database (``pg_dump -Fc`` under the snapshot its row counts were taken in), or
a JSON export. The manifest holds, per part, the file, its size and SHA-256, row counts of the tables that matter
and where it came from with any password masked; a part that could not be taken is listed as skipped with the
reason. A restore first reads the manifest and checks every hash and every target (all must be empty), and only
then writes anything: a bad bundle or a live target loses nothing. Each restored part is recounted against the
manifest. Pure file and database work: which parts a deployment has is decided in ``local/stack_backup.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from labeling_assets.core.store.backup import BackupError, _libpq_env, _run, _tool

FORMAT = "labeling-assets-stack-backup/1"
MANIFEST = "manifest.json"
OK = "ok"
SKIPPED = "skipped"
_SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    """One part of a bundle as the manifest lists it (never a secret: ``source`` has its password masked)."""

    name: str
    status: str  # OK or SKIPPED
    kind: str = ""  # label-store, folder, pgdump or json
    file: str = ""  # relative to the bundle
    sha256: str = ""
    bytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    content_sha256: str = ""  # the label store: its annotation log's content hash
    source: str = ""
    reason: str = ""  # SKIPPED: why


@dataclass(frozen=True)
class Manifest:
    created_at: str
    parts: list[Part]

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "created_at": self.created_at, "parts": [asdict(p) for p in self.parts]},
                          indent=2, sort_keys=True)  # fmt: skip


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def private_folder(path: Path) -> None:
    """``path`` made (or kept) owner-only: a bundle holds the whole stack, hidden gold and tokens included."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)


def write_manifest(bundle: Path, manifest: Manifest) -> Path:
    path = bundle / MANIFEST
    partial = bundle / f".{MANIFEST}.partial"
    partial.write_text(manifest.to_json())
    partial.chmod(0o600)
    partial.replace(path)
    return path


def read_manifest(bundle: Path) -> Manifest:
    """The bundle's manifest; BackupError (one line) when it is missing, unreadable or of another format."""
    path = bundle / MANIFEST
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise BackupError(f"{path}: not a stack backup manifest (format {data.get('format')!r}, expected {FORMAT!r})")
        parts = [Part(**{**p, "counts": {str(k): int(v) for k, v in p.get("counts", {}).items()}}) for p in data["parts"]]
        return Manifest(str(data["created_at"]), parts)
    except FileNotFoundError as exc:
        raise BackupError(f"{bundle}: no {MANIFEST} (not a stack backup bundle)") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"{path}: unreadable manifest ({exc})") from exc


def verify_files(bundle: Path, manifest: Manifest) -> list[str]:
    """Every difference between the bundle's files and the manifest (missing file, size or SHA-256); [] if none."""
    problems = []
    for part in manifest.parts:
        if part.status != OK:
            continue
        path = bundle / part.file
        if not path.is_file():
            problems.append(f"{part.name}: {part.file} is missing")
        elif path.stat().st_size != part.bytes or sha256_file(path) != part.sha256:
            problems.append(f"{part.name}: {part.file} does not match the manifest's SHA-256 (changed or damaged)")
    return problems


def made_part(name: str, kind: str, bundle: Path, path: Path, counts: Mapping[str, int], source: str,
              content_sha256: str = "") -> Part:  # fmt: skip
    path.chmod(0o600)
    return Part(name, OK, kind, str(path.relative_to(bundle)), sha256_file(path), path.stat().st_size, dict(counts),
                content_sha256, source)  # fmt: skip


def skipped(name: str, reason: str, source: str = "") -> Part:
    return Part(name, SKIPPED, source=source, reason=reason)


# --- folders -------------------------------------------------------------------------------------


def is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == _SQLITE_HEADER
    except OSError:
        return False


def sqlite_counts(path: Path, tables: Iterable[str]) -> dict[str, int]:
    """Rows of each of ``tables`` that the SQLite file holds (read-only)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables if t in present}
    finally:
        conn.close()


def folder_counts(root: Path, count: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """``{"<db>:<table>": rows}`` for the databases ``count`` names under ``root`` (relative paths)."""
    out: dict[str, int] = {}
    for relative, tables in count.items():
        if (root / relative).is_file():
            out.update({f"{relative}:{t}": n for t, n in sqlite_counts(root / relative, tables).items()})
    return out


def folder_part(name: str, folder: Path, bundle: Path, *, count: Mapping[str, Iterable[str]] = {},
                exclude: Iterable[str] = ()) -> Part:  # fmt: skip
    """``folder`` as ``<name>.tar.gz``: SQLite databases as online-backup snapshots (their -wal/-shm left out),
    links kept as links, the relative paths in ``exclude`` left out (a pid file, a log)."""
    left_out = set(exclude)
    target = bundle / f"{name}.tar.gz"
    files = 0
    with tempfile.TemporaryDirectory(dir=bundle, prefix=f".{name}-") as tmp:
        snapshots = Path(tmp)
        with tarfile.open(target, "w:gz", compresslevel=6) as tar:
            for path in sorted(folder.rglob("*")):
                relative = path.relative_to(folder).as_posix()
                if relative in left_out or relative.split("/", 1)[0] in left_out:
                    continue
                if path.name.endswith(_SQLITE_SIDE_FILES) and not path.is_symlink():
                    continue
                if path.is_file() and not path.is_symlink() and is_sqlite(path):
                    snapshot = snapshots / f"{files}.db"
                    _sqlite_snapshot(path, snapshot)
                    info = tar.gettarinfo(str(snapshot), arcname=relative)
                    info.mode = 0o600
                    with snapshot.open("rb") as fh:
                        tar.addfile(info, fh)
                    snapshot.unlink()
                else:
                    tar.add(str(path), arcname=relative, recursive=False)
                files += path.is_file() and not path.is_symlink()
        # The counts come from the archive's own snapshots, so they describe what was saved.
        counts = {"files": files, **_counts_in_archive(target, count, snapshots)}
    return made_part(name, "folder", bundle, target, counts, str(folder))


def _sqlite_snapshot(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # consistent while the server writes
    finally:
        src.close()
        dst.close()


def _counts_in_archive(archive: Path, count: Mapping[str, Iterable[str]], scratch: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for relative, tables in count.items():
            try:
                member = tar.getmember(relative)
            except KeyError:
                continue
            extracted = tar.extractfile(member)
            if extracted is None:
                continue
            copy = scratch / "count.db"
            with extracted, copy.open("wb") as fh:
                shutil.copyfileobj(extracted, fh, _CHUNK)
            out.update({f"{relative}:{t}": n for t, n in sqlite_counts(copy, tables).items()})
            copy.unlink()
    return out


def refuse_non_empty_folder(name: str, folder: Path) -> str | None:
    """Why ``folder`` cannot take a restore (it holds files), or None."""
    if folder.is_symlink() or folder.is_file():
        return f"{name}: {folder} exists and is not a folder"
    if folder.is_dir() and any(folder.iterdir()):
        return f"{name}: {folder} is not empty"
    return None


def restore_folder(part: Part, bundle: Path, folder: Path, *, count: Mapping[str, Iterable[str]] = {}) -> None:
    """Unpack ``part`` into the empty or absent ``folder`` (atomically: a sibling first, then renamed) and recount."""
    if (why := refuse_non_empty_folder(part.name, folder)) is not None:
        raise BackupError(why)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".restore-{folder.name}-"))
    try:
        with tarfile.open(bundle / part.file, "r:gz") as tar:
            tar.extractall(staging, filter="data")  # no absolute paths, no escaping links
        counts = {"files": sum(1 for p in staging.rglob("*") if p.is_file() and not p.is_symlink()),
                  **folder_counts(staging, count)}  # fmt: skip
        _same_counts(part, counts)
        staging.chmod(0o700)
        if folder.is_dir():
            folder.rmdir()  # empty: checked above
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _same_counts(part: Part, counts: Mapping[str, int]) -> None:
    diff = [f"{k}: {part.counts.get(k)} in the manifest, {counts.get(k)} restored"
            for k in sorted(set(part.counts) | set(counts)) if part.counts.get(k) != counts.get(k)]  # fmt: skip
    if diff:
        raise BackupError(f"{part.name}: the restored copy differs from the manifest: {'; '.join(diff)}")


# --- PostgreSQL ----------------------------------------------------------------------------------


def postgres_counts(conn: sa.Connection, tables: Iterable[str]) -> dict[str, int]:
    present = set(sa.inspect(conn).get_table_names())
    return {t: int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(t))).scalar() or 0)
            for t in tables if t in present}  # fmt: skip


def postgres_part(name: str, url: str, bundle: Path, *, tables: Iterable[str], source: str) -> Part:
    """``pg_dump -Fc`` of ``url`` as ``<name>.pgdump``, its counts taken in the snapshot the dump reads."""
    target = bundle / f"{name}.pgdump"
    engine = sa.create_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar())
            counts = postgres_counts(conn, tables)
            _run([_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--no-owner", f"--file={target}"],
                 _libpq_env(url), f"pg_dump of {source}")  # fmt: skip
    finally:
        engine.dispose()
    return made_part(name, "pgdump", bundle, target, counts, source)


def postgres_is_empty(name: str, url: str, source: str) -> str | None:
    """Why the database at ``url`` cannot take a restore (unreachable, or it holds tables), or None."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
    except sa.exc.SQLAlchemyError as exc:
        return f"{name}: {source} does not answer ({type(getattr(exc, 'orig', None) or exc).__name__}): create the empty database first"
    finally:
        engine.dispose()
    return f"{name}: {source} already holds tables ({', '.join(sorted(tables)[:3])}, ...)" if tables else None


def restore_postgres(part: Part, bundle: Path, url: str, *, tables: Iterable[str], source: str) -> None:
    if (why := postgres_is_empty(part.name, url, source)) is not None:
        raise BackupError(why)
    database = sa.make_url(url).database
    _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={database}",
          str(bundle / part.file)], _libpq_env(url), f"pg_restore of {part.file} into {source}")  # fmt: skip
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            _same_counts(part, postgres_counts(conn, tables))
    finally:
        engine.dispose()


# --- JSON ----------------------------------------------------------------------------------------


def json_part(name: str, filename: str, data: bytes, bundle: Path, counts: Mapping[str, int], source: str) -> Part:
    target = bundle / filename
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return made_part(name, "json", bundle, target, counts, source)


def export_counts(tasks: Any) -> dict[str, int]:
    """Tasks, annotations (cancelled ones included) and predictions of a Label Studio JSON export."""
    if not isinstance(tasks, list):
        raise BackupError("the Label Studio export is not a list of tasks")
    return {
        "tasks": len(tasks),
        "annotations": sum(len(t.get("annotations") or []) for t in tasks),
        "predictions": sum(len(t.get("predictions") or []) for t in tasks),
    }
