"""Ingest: scan an image source, content-hash, decode-verify and store raw images immutably.

Every file the scan finds gets exactly one outcome, recorded in the ``source_files`` manifest:

- ``new``         — first time these bytes are seen: copied into the content-addressed raw store.
- ``unchanged``   — same size and mtime as last time: not even read (this is what makes re-ingest cheap).
- ``duplicate``   — these bytes are already an item (under another name): no new item.
- ``changed``     — a known path now holds other bytes: a new item that ``supersedes`` the old one.
- ``quarantined`` — cannot be used (empty, unreadable, not an image, corrupt, too many pixels); the reason
  is stored and, when the bytes were readable, a copy is kept under the quarantine folder.

The source is never modified, and the raw store is append-only: a file is written under its hash with an
atomic rename before the database commit, so a crash at any point loses nothing and a rerun finishes the job.
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import sqlalchemy as sa
from fsspec.implementations.local import LocalFileSystem

from labeling_assets.core import images as img
from labeling_assets.core.store.schema import LabelStore, items_table, source_files_table, utcnow

NEW = "new"
UNCHANGED = "unchanged"
DUPLICATE = "duplicate"
CHANGED = "changed"
QUARANTINED = "quarantined"
OUTCOMES = (NEW, UNCHANGED, DUPLICATE, CHANGED, QUARANTINED)

_EXTENSION_BY_FORMAT = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}


@dataclass(frozen=True)
class SourceFile:
    """One file of the scan: its path relative to the source root and its cheap fingerprint."""

    rel_path: str
    full_path: str
    size: int | None
    mtime_ns: int | None


@dataclass(frozen=True)
class FileOutcome:
    rel_path: str
    outcome: str
    item_id: str | None = None
    reason: str | None = None
    detail: str | None = None


@dataclass
class IngestReport:
    """What one ingest run did, file by file."""

    source: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    files_read: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    gold_items: int = 0

    @property
    def counts(self) -> dict[str, int]:
        counter = Counter(o.outcome for o in self.outcomes)
        return {name: counter.get(name, 0) for name in OUTCOMES}

    @property
    def quarantined_by_reason(self) -> dict[str, int]:
        return dict(Counter(o.reason or "unknown" for o in self.outcomes if o.outcome == QUARANTINED))

    @property
    def new_item_ids(self) -> list[str]:
        return [o.item_id for o in self.outcomes if o.outcome in (NEW, CHANGED) and o.item_id]

    def of(self, outcome: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]


@dataclass(frozen=True)
class IngestOptions:
    max_pixels: int = img.DEFAULT_MAX_PIXELS
    # Regex over the relative path with a named group "group" (e.g. r"^(?P<group>[^/]+)/" = first folder):
    # items of one group (patient, scan session) then never straddle splits.
    group_key_regex: str | None = None
    # Relative path -> known class, for the hidden gold set (never sent to Label Studio).
    gold_labels: Mapping[str, str] | None = None
    batch_size: int = 500


def open_source(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and root path of a local folder or any fsspec URI (``s3://bucket/prefix``...)."""
    fs, root = fsspec.core.url_to_fs(uri)
    return fs, root.rstrip("/")


def source_key(fs: fsspec.AbstractFileSystem, root: str) -> str:
    """A stable name for a source in the manifest."""
    return str(fs.unstrip_protocol(root))


def scan(fs: fsspec.AbstractFileSystem, root: str) -> list[SourceFile]:
    """Every file under ``root`` with an image extension, sorted by path, with size and mtime.

    Stat failures do not stop the scan: the file is listed without a fingerprint and quarantined later.
    """
    if isinstance(fs, LocalFileSystem):
        return _scan_local(Path(root))
    found = fs.find(root, detail=True)
    files = []
    for path, info in sorted(found.items()):
        if Path(path).suffix.lower() not in img.IMAGE_EXTENSIONS:
            continue
        mtime = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("ETag")
        files.append(
            SourceFile(
                rel_path=path[len(root) :].lstrip("/"),
                full_path=path,
                size=info.get("size"),
                mtime_ns=_mtime_ns(mtime),
            )
        )
    return files


def _scan_local(root: Path) -> list[SourceFile]:
    # os.walk + lstat is several times faster than fsspec's per-file info() on large folders.
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        entries = filenames + [d for d in dirnames if Path(d).suffix.lower() in img.IMAGE_EXTENSIONS]
        for name in entries:
            if Path(name).suffix.lower() not in img.IMAGE_EXTENSIONS:
                continue
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
                size, mtime_ns = st.st_size, st.st_mtime_ns
            except OSError:
                size, mtime_ns = None, None  # dangling link etc.: quarantined as unreadable
            files.append(SourceFile(os.path.relpath(full, root), full, size, mtime_ns))
    files.sort(key=lambda f: f.rel_path)
    return files


def _mtime_ns(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value * 1_000_000_000)
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1_000_000_000)
    # An ETag or other opaque version string: any stable integer works as a fingerprint.
    return int(img.sha256_hex(str(value).encode())[:15], 16)


def raw_path(raw_dir: Path, item_id: str, fmt: str) -> Path:
    """Where the content-addressed copy of an item lives."""
    return raw_dir / item_id[:2] / f"{item_id}{_EXTENSION_BY_FORMAT.get(fmt.upper(), '.img')}"


def _write_once(path: Path, data: bytes) -> None:
    """Write ``data`` at ``path`` unless it is already there (same name = same bytes), atomically."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def load_label_csv(path: str | Path) -> dict[str, str]:
    """``filename,label`` CSV (header required) -> {relative path: label}."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"filename", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected a CSV with columns 'filename,label', got {reader.fieldnames}")
        return {row["filename"]: row["label"] for row in reader}


def ingest_source(
    store: LabelStore,
    source_uri: str,
    *,
    raw_dir: Path,
    quarantine_dir: Path,
    options: IngestOptions | None = None,
    progress: Callable[[int, int, IngestReport], None] | None = None,
) -> IngestReport:
    """Ingest every image under ``source_uri`` into ``store`` (see module docstring for outcomes)."""
    options = options or IngestOptions()
    started = time.perf_counter()
    fs, root = open_source(source_uri)
    source = source_key(fs, root)
    group_re = re.compile(options.group_key_regex) if options.group_key_regex else None
    report = IngestReport(source=source)

    files = scan(fs, root)
    with store.engine.connect() as conn:
        manifest = {
            row.path: row
            for row in conn.execute(
                sa.select(
                    source_files_table.c.path,
                    source_files_table.c.size,
                    source_files_table.c.mtime_ns,
                    source_files_table.c.item_id,
                    source_files_table.c.first_seen_at,
                ).where(source_files_table.c.source == source)
            )
        }

    todo: list[SourceFile] = []
    for f in files:
        known = manifest.get(f.rel_path)
        # A file that could not be read last time has no item: retry it (a chmod changes no mtime).
        if (
            known is not None
            and known.item_id is not None
            and f.size is not None
            and (known.size, known.mtime_ns) == (f.size, f.mtime_ns)
        ):
            report.outcomes.append(FileOutcome(f.rel_path, UNCHANGED, known.item_id))
        else:
            todo.append(f)

    for start in range(0, len(todo), options.batch_size):
        batch = todo[start : start + options.batch_size]
        _ingest_batch(store, fs, source, batch, manifest, report, raw_dir, quarantine_dir, options, group_re)
        if progress:
            progress(min(start + options.batch_size, len(todo)), len(todo), report)

    if options.gold_labels:
        report.gold_items = apply_gold_labels(store, source, options.gold_labels)
    report.seconds = time.perf_counter() - started
    return report


def _ingest_batch(
    store: LabelStore,
    fs: fsspec.AbstractFileSystem,
    source: str,
    batch: Iterable[SourceFile],
    manifest: Mapping[str, Any],
    report: IngestReport,
    raw_dir: Path,
    quarantine_dir: Path,
    options: IngestOptions,
    group_re: re.Pattern[str] | None,
) -> None:
    now = utcnow()
    read: list[tuple[SourceFile, bytes | None, str | None]] = []
    for f in batch:
        try:
            if f.size is None:
                raise OSError("cannot stat file (dangling link or vanished)")
            data = fs.cat_file(f.full_path)
            report.files_read += 1
            report.bytes_read += len(data)
            read.append((f, data, None))
        except (OSError, IsADirectoryError) as exc:
            read.append((f, None, f"{type(exc).__name__}: {exc}"))

    hashes = sorted({img.sha256_hex(data) for _, data, _ in read if data is not None})
    with store.engine.connect() as conn:
        known_items = {
            row.item_id: row
            for row in conn.execute(
                sa.select(items_table.c.item_id, items_table.c.status, items_table.c.status_reason, items_table.c.status_detail).where(
                    items_table.c.item_id.in_(hashes)
                )
            )
        }

    new_items: dict[str, dict[str, Any]] = {}
    manifest_rows: list[dict[str, Any]] = []
    replaced: list[str] = []
    for f, data, error in read:
        previous = manifest.get(f.rel_path)
        previous_item = previous.item_id if previous is not None else None
        if data is None:
            outcome = FileOutcome(f.rel_path, QUARANTINED, None, img.UNREADABLE, error)
        else:
            item_id = img.sha256_hex(data)
            existing = known_items.get(item_id)
            if existing is not None or item_id in new_items:
                status = existing.status if existing is not None else new_items[item_id]["status"]
                if status == QUARANTINED:
                    reason = existing.status_reason if existing is not None else new_items[item_id]["status_reason"]
                    detail = existing.status_detail if existing is not None else new_items[item_id]["status_detail"]
                    outcome = FileOutcome(f.rel_path, QUARANTINED, item_id, reason, detail)
                elif previous is not None and previous_item == item_id:
                    outcome = FileOutcome(f.rel_path, UNCHANGED, item_id)  # touched, same bytes
                elif previous_item is not None:
                    outcome = FileOutcome(f.rel_path, CHANGED, item_id, detail="now holds bytes of an existing item")
                else:
                    outcome = FileOutcome(f.rel_path, DUPLICATE, item_id, detail="same bytes as an existing item")
            else:
                verdict = img.verify_image(data, max_pixels=options.max_pixels)
                row: dict[str, Any] = {
                    "item_id": item_id,
                    "source_path": f"{source}/{f.rel_path}",
                    "n_bytes": len(data),
                    "ingested_at": now,
                    "supersedes": previous_item,
                    "group_key": _group_key(group_re, f.rel_path),
                }
                if isinstance(verdict, img.ImageInfo):
                    path = raw_path(raw_dir, item_id, verdict.format)
                    _write_once(path, data)
                    row |= {
                        "uri": str(path),
                        "width": verdict.width,
                        "height": verdict.height,
                        "mode": verdict.mode,
                        "format": verdict.format,
                        "status": "active",
                        "status_reason": None,
                        "status_detail": None,
                    }
                    outcome = FileOutcome(f.rel_path, CHANGED if previous_item is not None else NEW, item_id)
                else:
                    # Keep the evidence: a copy of what was rejected, next to the reason.
                    path = quarantine_dir / item_id[:2] / item_id
                    _write_once(path, data)
                    row |= {
                        "uri": str(path),
                        "status": QUARANTINED,
                        "status_reason": verdict.reason,
                        "status_detail": verdict.detail,
                    }
                    outcome = FileOutcome(f.rel_path, QUARANTINED, item_id, verdict.reason, verdict.detail)
                new_items[item_id] = row
        if previous_item and previous_item != outcome.item_id:
            replaced.append(previous_item)
        report.outcomes.append(outcome)
        manifest_rows.append(
            {
                "source": source,
                "path": f.rel_path,
                "size": f.size,
                "mtime_ns": f.mtime_ns,
                "item_id": outcome.item_id,
                "outcome": outcome.outcome,
                "reason": outcome.reason,
                "detail": outcome.detail,
                "first_seen_at": previous.first_seen_at if previous is not None else now,
                "last_checked_at": now,
            }
        )

    with store.begin() as conn:
        if new_items:
            conn.execute(items_table.insert(), [_item_row(r) for r in new_items.values()])
        existing_paths = [r["path"] for r in manifest_rows if r["path"] in manifest]
        if existing_paths:
            conn.execute(
                source_files_table.delete().where(source_files_table.c.source == source, source_files_table.c.path.in_(existing_paths))
            )
        if manifest_rows:
            conn.execute(source_files_table.insert(), manifest_rows)
        for old in set(replaced):
            # An item that no path holds any more is superseded (its bytes and labels stay in the store).
            still_held = conn.execute(
                sa.select(sa.func.count()).select_from(source_files_table).where(source_files_table.c.item_id == old)
            ).scalar()
            if not still_held:
                conn.execute(
                    items_table.update()
                    .where(items_table.c.item_id == old, items_table.c.status == "active")
                    .values(status="superseded", status_reason="source_changed")
                )


_ITEM_COLUMNS = [c.name for c in items_table.columns]


def _item_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in _ITEM_COLUMNS}


def _group_key(pattern: re.Pattern[str] | None, rel_path: str) -> str | None:
    if pattern is None:
        return None
    match = pattern.search(rel_path)
    return match.group("group") if match else None


def apply_gold_labels(store: LabelStore, source: str, gold: Mapping[str, str]) -> int:
    """Set ``gold_label`` on the items the gold file names; returns how many active items are gold."""
    with store.begin() as conn:
        rows = conn.execute(
            sa.select(source_files_table.c.path, source_files_table.c.item_id).where(
                source_files_table.c.source == source, source_files_table.c.path.in_(list(gold))
            )
        ).all()
        for path, item_id in rows:
            if item_id:
                conn.execute(
                    items_table.update()
                    .where(items_table.c.item_id == item_id, items_table.c.status == "active")
                    .values(gold_label=gold[path])
                )
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(items_table).where(
                    items_table.c.gold_label.is_not(None), items_table.c.status == "active"
                )
            ).scalar()
            or 0
        )
