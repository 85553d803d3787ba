"""Ingest: scan an image source, content-hash, decode-verify and store raw images immutably (an audio project's
audio files the same way, decoded by ``core.ingest.audio``; text_edits rows: ``core.ingest.edits``).

Every file the scan finds gets exactly one outcome, recorded in the ``source_files`` manifest:

- ``new``         — first time these bytes are seen: copied into the content-addressed raw store.
- ``unchanged``   — same size, mtime, ctime and inode as last time: not even read (what makes re-ingest
  cheap), unless the run re-hashes it (``rehash``); then read, and still the same bytes.
- ``duplicate``   — these bytes are already an item (under another name): no new item.
- ``changed``     — a known path now holds other bytes: a new item that ``supersedes`` the old one.
- ``quarantined`` — cannot be used (empty, unreadable, not an image, corrupt, too many pixels, several frames;
  not a regular file, a symbolic link the policy does not follow, a name that is not UTF-8 or a file larger
  than ``max_file_bytes``: never opened); the reason is stored and, when the bytes were read, a copy readable
  by its owner only (mode 0600) is kept under the quarantine folder. A file that changed while it was read
  (``changed_while_read``) is stored nowhere and read again on the next scan, like every quarantined file
  that has no item.
- ``missing``     — a path of an earlier run is gone: its item is retired (status ``missing``, never deleted)
  unless ``on_missing="keep"``. Reported once, in the run that finds it gone.
- ``restored``    — the bytes of a missing item (or a gone path's same bytes) are back: active again.

Folders that cannot be listed are reported (``IngestReport.folders_not_scanned``), and the files the manifest
knows under them are left as they were (not missing: they may well be there). A source that is missing, not
a folder or cannot be listed fails with :class:`SourceError`, naming the absolute path.

The source is never modified, and the raw store is append-only (``core.ingest.raw_store``: a store that
cannot be written fails the run with :class:`StoreWriteError`, one line naming the folder).

Memory stays bounded whatever the files: a file is read only when its size is within ``max_file_bytes``
(default 256 MiB, ``source.DEFAULT_MAX_FILE_BYTES``), in 1 MiB pieces, a batch holds at most ``max_file_bytes``
of file bytes, and decoding is bounded by ``max_pixels``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import sqlalchemy as sa

from labeling_assets.core import images as img
from labeling_assets.core.ingest import lifecycle
from labeling_assets.core.ingest.audio import TEXT_EDITS, AudioInfo, AudioOptions, item_measures, verify_audio
from labeling_assets.core.ingest.edits import ingest_edit_rows, split_sidecars
from labeling_assets.core.ingest.gold import apply_gold_labels, load_label_csv
from labeling_assets.core.ingest.outcomes import (
    CHANGED,
    DUPLICATE,
    MISSING,
    NEW,
    OUTCOMES,
    QUARANTINED,
    RESTORED,
    UNCHANGED,
    FileOutcome,
    IngestReport,
    manifest_row,
    pick_rehash,
)
from labeling_assets.core.ingest.raw_store import StoreWriteError, make_private, raw_path, write_once
from labeling_assets.core.ingest.source import (
    CHANGED_WHILE_READ,
    DEFAULT_MAX_FILE_BYTES,
    FOLLOW_INSIDE,
    FolderNotScanned,
    SourceError,
    SourceFile,
    changed_since,
    list_source,
    open_source,
    read_batch,
    source_key,
)
from labeling_assets.core.ingest.text import TEXT_EXTENSIONS, TextOptions
from labeling_assets.core.ingest.text_scan import ingest_text_files
from labeling_assets.core.label_sets import SINGLE_LABEL
from labeling_assets.core.store.bulk import bulk_insert
from labeling_assets.core.store.schema import LabelStore, items_table, source_files_table, utcnow
from labeling_assets.core.tasks import task_kind

# re-exported
__all__ = [
    "CHANGED", "DUPLICATE", "MISSING", "NEW", "OUTCOMES", "QUARANTINED", "RESTORED", "UNCHANGED", "FileOutcome",
    "IngestReport", "SourceError", "SourceFile", "StoreWriteError", "load_label_csv", "open_source", "raw_path",
    "source_key",
]  # fmt: skip

@dataclass(frozen=True)
class IngestOptions:
    max_pixels: int = img.DEFAULT_MAX_PIXELS
    # Larger files are quarantined from their size alone: never read, never copied (the manifest keeps the path).
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    # A file of several frames (animated GIF/WebP/PNG, multi-page TIFF): "refuse" it, or keep its "first_frame".
    multi_frame: str = img.MULTI_FRAME_REFUSE
    # Regex over the relative path with a named group "group" (e.g. r"^(?P<group>[^/]+)/" = first folder):
    # items of one group (patient, scan session) then never straddle splits.
    group_key_regex: str | None = None
    # Relative path -> known class, for the hidden gold set (never sent to Label Studio).
    gold_labels: Mapping[str, str] | None = None
    batch_size: int = 500
    # The project's class list: gold labels outside it are refused (None: not checked).
    classes: Sequence[str] | None = None
    # The project's kind of task (``ProjectSettings.task_type``): how a gold file's entry reads (core.ingest.gold).
    task_type: str = SINGLE_LABEL
    allow_empty_set: bool = True
    follow_symlinks: str = FOLLOW_INSIDE  # inside | never | always
    on_missing: str = lifecycle.ON_MISSING_RETIRE  # retire | keep
    # 0: never re-hash a file whose fingerprint is unchanged; 1: every run; N: the 1/N least recently read
    # files each run, so every file is read at least once every N runs (see parse_rehash).
    rehash_every: int = 0
    # A text project (core.ingest.text_scan): its .txt, .jsonl and .csv files are read as texts; None: images.
    text: TextOptions | None = None
    # Real paths of listed files that are not data (the gold file in the source folder of a text project).
    skip_paths: frozenset[str] = frozenset()
    # An audio project (core.ingest.audio): its audio files are items (text_edits: its sidecar rows, core.ingest.edits).
    audio: AudioOptions | None = None
    # Relative path -> group key, over group_key_regex (an audio source's groups.csv, core.ingest.audio.load_groups).
    groups: Mapping[str, str] | None = None


def parse_rehash(value: str | int) -> int:
    """``never`` -> 0, ``always`` -> 1, ``N`` or ``every N runs`` -> N (a 1/N slice of the files per run)."""
    text = str(value).strip().lower()
    if text == "never":
        return 0
    if text == "always":
        return 1
    match = re.fullmatch(r"(?:every\s+)?(\d+)(?:\s+runs?)?", text)
    if match and int(match.group(1)) > 0:
        return int(match.group(1))
    raise SourceError(f"rehash={value!r}: expected 'never', 'always' or 'every N runs' (N >= 1)")


def _same_fingerprint(known: Any, f: SourceFile) -> bool:
    # A file that could not be read last time has no item: retry it (a chmod changes no mtime); a path that
    # was gone is read again (restored or changed).
    return (
        known is not None
        and known.item_id is not None
        and known.outcome != MISSING
        and f.refused is None
        and f.size is not None
        and (known.size, known.mtime_ns, known.ctime_ns, known.inode) == (f.size, f.mtime_ns, f.ctime_ns, f.inode)
    )


def ingest_source(
    store: LabelStore,
    source_uri: str,
    *,
    raw_dir: Path,
    quarantine_dir: Path,
    options: IngestOptions | None = None,
    progress: Callable[[int, int, IngestReport], None] | None = None,
) -> IngestReport:
    """Ingest every image under ``source_uri`` into ``store`` (see module docstring for outcomes); with
    ``options.text``, every text of its ``.txt``, ``.jsonl`` and ``.csv`` files instead (``core.ingest.text_scan``)."""
    options = options or IngestOptions()
    if options.on_missing not in lifecycle.ON_MISSING_POLICIES:
        raise SourceError(f"on_missing={options.on_missing!r}: expected one of {', '.join(lifecycle.ON_MISSING_POLICIES)}")
    if options.multi_frame not in img.MULTI_FRAME_POLICIES:
        raise SourceError(
            f"multi_frame={options.multi_frame!r}: expected one of {', '.join(img.MULTI_FRAME_POLICIES)}"
        )
    if options.max_file_bytes < 1:
        raise SourceError(f"max_file_bytes={options.max_file_bytes}: expected a positive number of bytes")
    started = time.perf_counter()
    fs, root = open_source(source_uri)
    source = source_key(fs, root)
    group_re = re.compile(options.group_key_regex) if options.group_key_regex else None
    report = IngestReport(source=source)
    make_private(quarantine_dir)

    extensions = TEXT_EXTENSIONS if options.text is not None else img.IMAGE_EXTENSIONS
    if options.audio is not None:
        extensions = options.audio.extensions
    listing = list_source(fs, root, follow_symlinks=options.follow_symlinks, extensions=extensions)
    if options.skip_paths:  # files that are settings (the gold file beside the texts), not data
        listing.files = [f for f in listing.files if os.path.realpath(f.full_path) not in options.skip_paths]
    report.folders_not_scanned = listing.folders_not_scanned
    sf = source_files_table
    with store.engine.connect() as conn:
        manifest = {
            row.path: row
            for row in conn.execute(
                sa.select(
                    sf.c.path, sf.c.size, sf.c.mtime_ns, sf.c.ctime_ns, sf.c.inode, sf.c.item_id, sf.c.outcome,
                    sf.c.first_seen_at, sf.c.last_checked_at,
                ).where(sf.c.source == source)
            )
        }

    everything = _gone(manifest, [], listing.folders_not_scanned)
    if everything and not listing.files and options.on_missing == lifecycle.ON_MISSING_RETIRE:
        # An unmounted disk looks like an empty folder: never retire a whole source on that evidence.
        what = "text" if options.text else "audio" if options.audio else "image"
        raise SourceError(
            f"{what} source {root} holds no {what} "
            f"now, but {len(everything)} files were ingested from it before: not marking them all missing (is a "
            "disk unmounted?). Set on_missing=keep to record them anyway."
        )
    if options.text is not None:
        gone = ingest_text_files(
            store, fs, source, listing, manifest, report, raw_dir=raw_dir, text=options.text,
            max_file_bytes=options.max_file_bytes, batch_size=options.batch_size, rehash_every=options.rehash_every,
            group_re=group_re, progress=progress,
        )  # fmt: skip
    elif options.audio is not None and options.audio.task_type == TEXT_EDITS:
        # The audio first (rows refer to its items), then the rows; the rows' run finds every gone path.
        sidecars, media = split_sidecars(listing)
        _ingest_images(store, fs, source, media, manifest, report, raw_dir, quarantine_dir, options, group_re, progress)
        gone = ingest_edit_rows(store, fs, source, sidecars, manifest, report, raw_dir=raw_dir,
                                max_file_bytes=options.max_file_bytes, batch_size=options.batch_size, group_re=group_re)  # fmt: skip
    else:
        gone = _gone(manifest, listing.files, listing.folders_not_scanned)
        _ingest_images(store, fs, source, listing.files, manifest, report, raw_dir, quarantine_dir, options, group_re,
                       progress)  # fmt: skip

    if gone:
        with store.begin() as conn:
            lifecycle.mark_missing(
                conn, source, gone, retire=options.on_missing == lifecycle.ON_MISSING_RETIRE, now=utcnow()
            )
        report.outcomes.extend(FileOutcome(path, MISSING, item_id) for path, item_id in sorted(gone.items()))

    if options.gold_labels:
        kind = task_kind(options.task_type)
        gold = apply_gold_labels(
            store, source, options.gold_labels, kind, options.classes, allow_empty=options.allow_empty_set
        )
        report.gold_items, report.gold_problems = gold.gold_items, gold.problems
    report.seconds = time.perf_counter() - started
    return report


def _ingest_images(
    store: LabelStore,
    fs: fsspec.AbstractFileSystem,
    source: str,
    files: Sequence[SourceFile],
    manifest: Mapping[str, Any],
    report: IngestReport,
    raw_dir: Path,
    quarantine_dir: Path,
    options: IngestOptions,
    group_re: re.Pattern[str] | None,
    progress: Callable[[int, int, IngestReport], None] | None,
) -> None:
    """Read the image files that changed since their manifest row (and those picked for re-hashing)."""
    todo: list[SourceFile] = []
    unchanged: list[tuple[SourceFile, Any]] = []
    for f in files:
        known = manifest.get(f.rel_path)
        if _same_fingerprint(known, f):
            unchanged.append((f, known))
        else:
            todo.append(f)
    rehash = pick_rehash(unchanged, options.rehash_every)
    report.files_rehashed = len(rehash)
    for f, known in unchanged:
        if f.rel_path in rehash:
            todo.append(f)
        else:
            report.outcomes.append(FileOutcome(f.rel_path, UNCHANGED, known.item_id))
    todo.sort(key=lambda f: f.rel_path)

    done = 0
    for batch in _batches(todo, options):
        _ingest_batch(store, fs, source, batch, manifest, report, raw_dir, quarantine_dir, options, group_re)
        done += len(batch)
        if progress:
            progress(done, len(todo), report)


def _batches(files: Sequence[SourceFile], options: IngestOptions) -> Iterable[list[SourceFile]]:
    """``files`` in batches of at most ``batch_size`` files and ``max_file_bytes`` bytes to read (a batch's
    bytes are all in memory at once; a file over the limit is never read, so it weighs nothing)."""
    batch: list[SourceFile] = []
    weight = 0
    for f in files:
        size = f.size if f.size is not None and f.size <= options.max_file_bytes else 0
        if batch and (len(batch) >= options.batch_size or weight + size > options.max_file_bytes):
            yield batch
            batch, weight = [], 0
        batch.append(f)
        weight += size
    if batch:
        yield batch


def _gone(
    manifest: Mapping[str, Any], files: Iterable[SourceFile], folders: Iterable[FolderNotScanned]
) -> dict[str, str | None]:
    """Manifest paths not listed now (path -> item id), except those under a folder that was not scanned."""
    listed = {f.rel_path for f in files}
    blocked = tuple(f"{folder.rel_path}/" for folder in folders)
    return {
        path: row.item_id
        for path, row in manifest.items()
        if path not in listed and row.outcome != MISSING and not (blocked and path.startswith(blocked))
    }


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
    read = read_batch(fs, batch, options.max_file_bytes)
    report.files_read += sum(data is not None for _, data, _, _ in read)
    report.bytes_read += sum(len(data) for _, data, _, _ in read if data is not None)
    hashes = sorted({digest for _, _, digest, _ in read if digest is not None})
    with store.engine.connect() as conn:
        known_items = {
            row.item_id: row
            for row in conn.execute(
                sa.select(
                    items_table.c.item_id, items_table.c.status, items_table.c.status_reason, items_table.c.status_detail
                ).where(items_table.c.item_id.in_(hashes))
            )
        }

    new_items: dict[str, dict[str, Any]] = {}
    manifest_rows: list[dict[str, Any]] = []
    superseded: dict[str, str] = {}  # old item -> detail, its path now holds other bytes
    unavailable: dict[str, str] = {}  # old item -> detail, its path can no longer be read
    restored: set[str] = set()
    for f, data, item_id, refused in read:
        previous = manifest.get(f.rel_path)
        previous_item = previous.item_id if previous is not None else None
        if data is None or item_id is None:
            assert refused is not None
            outcome = FileOutcome(f.rel_path, QUARANTINED, None, refused[0], refused[1])
        else:
            existing = known_items.get(item_id)
            if existing is not None or item_id in new_items:
                status = existing.status if existing is not None else new_items[item_id]["status"]
                came_back = previous is not None and previous.outcome == MISSING and previous_item == item_id
                if status == QUARANTINED:
                    reason = existing.status_reason if existing is not None else new_items[item_id]["status_reason"]
                    detail = existing.status_detail if existing is not None else new_items[item_id]["status_detail"]
                    outcome = FileOutcome(f.rel_path, QUARANTINED, item_id, reason, detail)
                elif status == lifecycle.MISSING or came_back:
                    restored.add(item_id)
                    outcome = FileOutcome(f.rel_path, RESTORED, item_id, detail="the bytes of a missing item are back")
                elif previous is not None and previous_item == item_id:
                    outcome = FileOutcome(f.rel_path, UNCHANGED, item_id)  # touched, same bytes
                elif previous_item is not None:
                    outcome = FileOutcome(f.rel_path, CHANGED, item_id, detail="now holds bytes of an existing item")
                else:
                    outcome = FileOutcome(f.rel_path, DUPLICATE, item_id, detail="same bytes as an existing item")
            else:
                verdict = (
                    verify_audio(data, options.audio.max_seconds) if options.audio is not None
                    else img.verify_image(data, max_pixels=options.max_pixels, multi_frame=options.multi_frame)
                )  # fmt: skip
                # Checked after the decode: a writer still at work shows here (also when the bytes failed to
                # decode only because they were half written). Nothing is stored; the next scan reads it again.
                # A file refused by a setting (several frames) is no item either: changing the setting ingests it.
                moved = changed_since(fs, f)
                refused = (CHANGED_WHILE_READ, f"{moved}; read again on the next scan") if moved else None
                if isinstance(verdict, img.DecodeFailure) and verdict.reason == img.MULTI_FRAME and not moved:
                    refused = (verdict.reason, verdict.detail)
                if refused is not None:
                    outcome = FileOutcome(f.rel_path, QUARANTINED, None, *refused)
                    report.outcomes.append(outcome)
                    manifest_rows.append(manifest_row(source, f, outcome, previous, now))
                    continue
                row = _new_item(f, data, item_id, verdict, source, previous_item, now, raw_dir, quarantine_dir, group_re)
                if options.audio is not None and options.audio.task_type == TEXT_EDITS and row["status"] == lifecycle.ACTIVE:
                    row["status"] = lifecycle.MEDIA  # shown with its rows, never queued itself
                row["group_key"] = (options.groups or {}).get(f.rel_path, row["group_key"])
                new_items[item_id] = row
                if row["status"] == QUARANTINED:
                    outcome = FileOutcome(f.rel_path, QUARANTINED, item_id, row["status_reason"], row["status_detail"])
                else:
                    outcome = FileOutcome(f.rel_path, CHANGED if previous_item is not None else NEW, item_id)
        if previous_item and previous_item != outcome.item_id and outcome.reason != CHANGED_WHILE_READ:
            where = f"{source}/{f.rel_path}"
            if outcome.item_id is None:
                unavailable.setdefault(previous_item, f"{where} can no longer be read: {outcome.detail}")
            else:
                superseded.setdefault(previous_item, f"{where} now holds {outcome.item_id}")
        report.outcomes.append(outcome)
        manifest_rows.append(manifest_row(source, f, outcome, previous, now))

    with store.begin() as conn:
        if new_items:
            bulk_insert(conn, items_table, [_item_row(r) for r in new_items.values()])  # PostgreSQL: COPY
        existing_paths = [r["path"] for r in manifest_rows if r["path"] in manifest]
        if existing_paths:
            conn.execute(
                source_files_table.delete().where(
                    source_files_table.c.source == source, source_files_table.c.path.in_(existing_paths)
                )
            )
        if manifest_rows:
            bulk_insert(conn, source_files_table, manifest_rows)
        lifecycle.reactivate(conn, restored)
        # An item that no path holds any more is retired (its bytes and labels stay in the store).
        lifecycle.retire_unheld(
            conn, superseded, status=lifecycle.SUPERSEDED, reason=lifecycle.SOURCE_CHANGED
        )
        lifecycle.retire_unheld(
            conn, unavailable, status=lifecycle.MISSING, reason=lifecycle.SOURCE_UNREADABLE
        )


def _new_item(
    f: SourceFile,
    data: bytes,
    item_id: str,
    verdict: img.ImageInfo | AudioInfo | img.DecodeFailure,
    source: str,
    previous_item: str | None,
    now: Any,
    raw_dir: Path,
    quarantine_dir: Path,
    group_re: re.Pattern[str] | None,
) -> dict[str, Any]:
    """The items row of bytes never seen before, after their copy is safely on disk."""
    row: dict[str, Any] = {
        "item_id": item_id,
        "source_path": f"{source}/{f.rel_path}",
        "n_bytes": len(data),
        "ingested_at": now,
        "supersedes": previous_item,
        "group_key": _group_key(group_re, f.rel_path),
    }
    if isinstance(verdict, img.ImageInfo | AudioInfo):
        path = raw_path(raw_dir, item_id, verdict.format)
        write_once(path, data, store=raw_dir)
        measures = item_measures(verdict) if isinstance(verdict, AudioInfo) else {
            "width": verdict.width, "height": verdict.height, "mode": verdict.mode}  # fmt: skip
        return row | measures | {
            "uri": str(path),
            "format": verdict.format,
            "status": lifecycle.ACTIVE,
            "status_reason": None,
            "status_detail": None,
        }
    # Keep the evidence: a private copy of what was rejected, next to the reason.
    path = quarantine_dir / item_id[:2] / item_id
    write_once(path, data, store=quarantine_dir, private=True)
    return row | {
        "uri": str(path),
        "status": QUARANTINED,
        "status_reason": verdict.reason,
        "status_detail": verdict.detail,
    }


_ITEM_COLUMNS = [c.name for c in items_table.columns]


def _item_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in _ITEM_COLUMNS}


def _group_key(pattern: re.Pattern[str] | None, rel_path: str) -> str | None:
    if pattern is None:
        return None
    match = pattern.search(rel_path)
    return match.group("group") if match else None
