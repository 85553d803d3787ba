"""Ingest of a text project's source: ``.txt`` files and the rows of ``.jsonl`` and ``.csv`` files as items.

What ``core.ingest.scan`` does for images, for texts (it calls :func:`ingest_text_files` when the options name a
text project). A text is read by ``core.ingest.text`` (normalised once: NFC, ``\\n`` line ends); its item id is
the SHA-256 of the normalised text, and its stored copy (``items.uri``, format ``TXT``) is that text in UTF-8
under the raw store, so what Label Studio shows and spans count in is the stored file.

Each text gets a manifest entry (``source_files.path``) of its own, so every outcome of image ingest holds per
text: ``notes/a.txt`` for a ``.txt`` file, ``batch.jsonl#<id>`` for the row of that id in a JSONL or CSV file.
A row whose text changed under the same id is ``changed``: a new item that supersedes the old one (retired when
no other entry holds it), as an edited image is; the same text under another id or file is a ``duplicate``; a
row gone from its file is ``missing``. Every entry carries its file's fingerprint, so an unchanged file is not
read again.

Refused, with the reason of ``core.ingest.text`` and nothing stored but the manifest entry (the source keeps
the text; the entry names the file and row): a file (``batch.csv``: not UTF-8, a column missing, too large),
a row with an id of its own (``batch.jsonl#7``: empty, binary, too large; its earlier item is retired as
unreadable, as an image that stopped decoding is) and a row without a usable id (``batch.jsonl@12``, the row
number: no id, or an id an earlier row of the file has). Refused entries hold no item, so they are read again on
the next scan (after a fix of the settings, say).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import fsspec
import sqlalchemy as sa

from labeling_assets.core.ingest import lifecycle
from labeling_assets.core.ingest.outcomes import (
    CHANGED,
    DUPLICATE,
    MISSING,
    NEW,
    QUARANTINED,
    RESTORED,
    UNCHANGED,
    FileOutcome,
    IngestReport,
    manifest_row,
    pick_rehash,
)
from labeling_assets.core.ingest.raw_store import raw_path, write_once
from labeling_assets.core.ingest.source import Listing, SourceFile, read_batch
from labeling_assets.core.ingest.text import (
    Refused,
    TextItem,
    TextOptions,
    read_csv,
    read_jsonl,
    read_text_file,
)
from labeling_assets.core.store.bulk import bulk_insert
from labeling_assets.core.store.schema import LabelStore, items_table, source_files_table, utcnow

TEXT_FORMAT = "TXT"  # items.format of a text item
ROW_ID = "#"  # batch.jsonl#<id>: the row of that id
ROW_NUMBER = "@"  # batch.jsonl@<n>: a row refused for its id (none, or a duplicate), by its number


class Row(Protocol):
    """What a reader takes from a file: a content-hashed text (or document) stored as the item's copy."""

    @property
    def item_id(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def source_id(self) -> str: ...


# A file's bytes -> its rows (every row taken, repeats too) and what was refused; the default reads texts.
RowReader = Callable[[SourceFile, bytes], tuple[Sequence[Row], Sequence[Refused]]]


def entry_file(path: str, files: set[str]) -> str | None:
    """The listed file a manifest entry belongs to (the entry itself, or the file its ``#id``/``@n`` names)."""
    if path in files:
        return path
    for i, ch in enumerate(path):
        if ch in (ROW_ID, ROW_NUMBER) and path[:i] in files:
            return path[:i]
    return None


def ingest_text_files(
    store: LabelStore,
    fs: fsspec.AbstractFileSystem,
    source: str,
    listing: Listing,
    manifest: Mapping[str, Any],
    report: IngestReport,
    *,
    raw_dir: Path,
    text: TextOptions,
    max_file_bytes: int,
    batch_size: int,
    rehash_every: int,
    group_re: re.Pattern[str] | None,
    progress: Callable[[int, int, IngestReport], None] | None = None,
    read: RowReader | None = None,
    fmt: str = TEXT_FORMAT,
) -> dict[str, str | None]:
    """Ingest the texts of ``listing`` (see the module docstring; the settings as ``scan.IngestOptions`` has
    them); returns the manifest entries gone now (entry -> item id), for the caller to record as missing.
    ``read`` and ``fmt``: rows of another reader, stored in that format (core.ingest.edits: text_edits rows); a
    row with a ``group`` attribute takes it as its group key."""
    reader: RowReader = read or (lambda f, data: _read_texts(f, data, text))
    listed = {f.rel_path for f in listing.files}
    entries: dict[str, list[str]] = {}
    for path, row in manifest.items():
        owner = entry_file(path, listed)
        if owner is not None and row.outcome != MISSING:
            entries.setdefault(owner, []).append(path)

    todo: list[SourceFile] = []
    unchanged: list[tuple[SourceFile, Any]] = []
    for f in listing.files:
        # Unchanged: every entry of the file has an item and the file's fingerprint (a refused row is read again).
        rows = [manifest[p] for p in entries.get(f.rel_path, [])]
        fingerprint = (f.size, f.mtime_ns, f.ctime_ns, f.inode)
        if rows and f.refused is None and f.size is not None and all(
            r.item_id is not None and (r.size, r.mtime_ns, r.ctime_ns, r.inode) == fingerprint for r in rows
        ):
            unchanged.append((f, rows[0]))
        else:
            todo.append(f)
    rehash = pick_rehash(unchanged, rehash_every)
    report.files_rehashed = len(rehash)
    for f, _ in unchanged:
        if f.rel_path in rehash:
            todo.append(f)
        else:
            report.outcomes.extend(FileOutcome(p, UNCHANGED, manifest[p].item_id) for p in sorted(entries[f.rel_path]))
    todo.sort(key=lambda f: f.rel_path)

    done = 0
    for batch in _batches(todo, batch_size):
        _ingest_batch(store, fs, source, batch, manifest, report, raw_dir, reader, fmt, max_file_bytes, group_re)
        done += len(batch)
        if progress:
            progress(done, len(todo), report)

    seen = {o.rel_path for o in report.outcomes}
    blocked = tuple(f"{folder.rel_path}/" for folder in listing.folders_not_scanned)
    return {
        path: row.item_id
        for path, row in manifest.items()
        if path not in seen and row.outcome != MISSING and not (blocked and path.startswith(blocked))
    }


def _batches(files: Sequence[SourceFile], size: int) -> Iterable[list[SourceFile]]:
    for start in range(0, len(files), max(size, 1)):
        yield list(files[start : start + max(size, 1)])


def _read_texts(f: SourceFile, data: bytes, text: TextOptions) -> tuple[list[TextItem], list[Refused]]:
    """The texts of one file's bytes (every row taken, repeats too) and what was refused."""
    suffix = Path(f.rel_path).suffix.lower()
    if suffix == ".txt":
        read = read_text_file(f.rel_path, data, text.max_bytes)
        return ([read], []) if isinstance(read, TextItem) else ([], [read])
    reader = read_jsonl if suffix == ".jsonl" else read_csv
    batch = reader(f.rel_path, data, text.id_field, text.text_field, text.max_bytes)
    return batch.rows, batch.refused


def _entry(f: SourceFile, item: Row | Refused) -> str:
    if Path(f.rel_path).suffix.lower() == ".txt":
        return f.rel_path
    if not isinstance(item, Refused):
        return f"{f.rel_path}{ROW_ID}{item.source_id}"
    if item.row == 0:
        return f.rel_path
    return f"{f.rel_path}{ROW_ID}{item.source_id}" if item.source_id else f"{f.rel_path}{ROW_NUMBER}{item.row}"


def _ingest_batch(
    store: LabelStore,
    fs: fsspec.AbstractFileSystem,
    source: str,
    batch: Sequence[SourceFile],
    manifest: Mapping[str, Any],
    report: IngestReport,
    raw_dir: Path,
    reader: RowReader,
    fmt: str,
    max_file_bytes: int,
    group_re: re.Pattern[str] | None,
) -> None:
    now = utcnow()
    read = read_batch(fs, batch, max_file_bytes)
    report.files_read += sum(data is not None for _, data, _, _ in read)
    report.bytes_read += sum(len(data) for _, data, _, _ in read if data is not None)
    found: list[tuple[SourceFile, str, Row | Refused]] = []  # (file, entry, text or refusal)
    for f, data, _, refused in read:
        if data is None:
            assert refused is not None
            found.append((f, f.rel_path, Refused(f.rel_path, 0, *refused)))
            continue
        items, refusals = reader(f, data)
        taken: list[Row | Refused] = [*items, *refusals]
        found += [(f, _entry(f, x), x) for x in taken]
    ids = sorted({x.item_id for _, _, x in found if not isinstance(x, Refused)})
    with store.engine.connect() as conn:
        known = dict(conn.execute(sa.select(items_table.c.item_id, items_table.c.status).where(items_table.c.item_id.in_(ids))).tuples().all())  # fmt: skip

    new_items: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    superseded: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    restored: set[str] = set()
    for f, entry, x in found:
        previous = manifest.get(entry)
        previous_item = previous.item_id if previous is not None else None
        if isinstance(x, Refused):
            where = f"row {x.row}: " if x.row else ""
            outcome = FileOutcome(entry, QUARANTINED, None, x.reason, f"{where}{x.detail}")
        elif x.item_id in known or x.item_id in new_items:
            status = known.get(x.item_id) or new_items[x.item_id]["status"]
            came_back = previous is not None and previous.outcome == MISSING and previous_item == x.item_id
            if status == lifecycle.MISSING or came_back:
                restored.add(x.item_id)
                outcome = FileOutcome(entry, RESTORED, x.item_id, detail="the text of a missing item is back")
            elif previous_item == x.item_id:
                outcome = FileOutcome(entry, UNCHANGED, x.item_id)
            elif previous_item is not None:
                outcome = FileOutcome(entry, CHANGED, x.item_id, detail="now holds the text of an existing item")
            else:
                outcome = FileOutcome(entry, DUPLICATE, x.item_id, detail="same text as an existing item")
        else:
            new_items[x.item_id] = _new_item(x, entry, source, previous_item, now, raw_dir, group_re, f.rel_path, fmt)
            outcome = FileOutcome(entry, CHANGED if previous_item is not None else NEW, x.item_id)
        if previous_item and previous_item != outcome.item_id:
            if outcome.item_id is None:
                unavailable.setdefault(previous_item, f"{source}/{entry} can no longer be read: {outcome.detail}")
            else:
                superseded.setdefault(previous_item, f"{source}/{entry} now holds {outcome.item_id}")
        report.outcomes.append(outcome)
        rows.append(manifest_row(source, f, outcome, previous, now))

    with store.begin() as conn:
        if new_items:
            bulk_insert(conn, items_table, list(new_items.values()))
        existing = [r["path"] for r in rows if r["path"] in manifest]
        for start in range(0, len(existing), 500):
            conn.execute(
                source_files_table.delete().where(
                    source_files_table.c.source == source, source_files_table.c.path.in_(existing[start : start + 500])
                )
            )
        if rows:
            bulk_insert(conn, source_files_table, rows)
        lifecycle.reactivate(conn, restored)
        lifecycle.retire_unheld(conn, superseded, status=lifecycle.SUPERSEDED, reason=lifecycle.SOURCE_CHANGED)
        lifecycle.retire_unheld(conn, unavailable, status=lifecycle.MISSING, reason=lifecycle.SOURCE_UNREADABLE)


def _new_item(
    x: Row, entry: str, source: str, previous_item: str | None, now: Any, raw_dir: Path,
    group_re: re.Pattern[str] | None, file: str, fmt: str = TEXT_FORMAT,
) -> dict[str, Any]:  # fmt: skip
    """The items row of a text never seen before, after its copy (the normalised text) is safely on disk."""
    data = x.text.encode("utf-8")
    path = raw_path(raw_dir, x.item_id, fmt)
    write_once(path, data, store=raw_dir)
    match = group_re.search(file) if group_re is not None else None
    group = getattr(x, "group", None) or (match.group("group") if match else None)
    row: dict[str, Any] = {name: None for name in (c.name for c in items_table.columns)}
    return row | {
        "item_id": x.item_id, "uri": str(path), "source_path": f"{source}/{entry}", "format": fmt,
        "n_bytes": len(data), "ingested_at": now, "status": lifecycle.ACTIVE, "supersedes": previous_item,
        "group_key": group,
    }  # fmt: skip
