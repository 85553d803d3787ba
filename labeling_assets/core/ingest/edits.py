"""text_edits items: the rows of a sidecar JSONL, each a machine transcript or translation a person corrects.

A row: ``{"id": ..., "machine": "<machine output>", "audio": "<an audio file of the source, optional>",
"source": "<source sentence, optional>", "group": "<recording or speaker, optional>"}``. Its stored copy (format
``EDIT``, ``<hash>.edit.json``) is a canonical JSON document ``{"audio_item_id", "audio_path", "id", "machine",
"source"}`` (``audio_path``: the audio copy inside the raw store, no absolute path) (keys sorted, texts NFC with ``\\n`` line ends) and its item id the SHA-256 of that document's bytes:
the same row over other audio bytes is another item, as an edited text is. Its group key is the row's ``group``,
else the audio file's stem, so one recording never spans two splits.

``audio`` is a path relative to the source root (else to the sidecar's own folder). The audio file is ingested
first as an item of its own (``core.ingest.audio``, status ``media``: shown with its rows, never queued itself),
by the rules of every audio item; a row whose audio is missing or quarantined is refused with that reason.

Refused rows, one line each and nothing else lost (``core.ingest.text_scan`` records them in the manifest as
``rows.jsonl#<id>`` or ``rows.jsonl@<row number>``): ``row_not_json``, ``row_without_id``, ``duplicate_id``,
``row_without_machine`` (no ``machine`` text), ``row_bad_field`` (``source``/``audio``/``group`` not a text),
``audio_missing``, ``audio_quarantined``. A sidecar is read on every scan (its rows depend on the audio files too).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import sqlalchemy as sa

from labeling_assets.core.ingest import lifecycle
from labeling_assets.core.ingest.audio import SIDECAR_EXTENSIONS
from labeling_assets.core.ingest.outcomes import QUARANTINED, IngestReport
from labeling_assets.core.ingest.source import Listing, SourceFile
from labeling_assets.core.ingest.text import (
    DUPLICATE_ID,
    NO_ID,
    NOT_JSON,
    NOT_UTF8,
    Refused,
    TextOptions,
    normalize_text,
)
from labeling_assets.core.ingest.text_scan import ingest_text_files
from labeling_assets.core.store.schema import LabelStore, items_table

EDIT_FORMAT = "EDIT"  # items.format of a text_edits item
EDIT_SUFFIX = ".edit.json"  # its stored copy's name ends so (core.ingest.raw_store)
NO_MACHINE = "row_without_machine"
BAD_FIELD = "row_bad_field"
AUDIO_MISSING = "audio_missing"
AUDIO_QUARANTINED = "audio_quarantined"
REASONS = (NOT_UTF8, NOT_JSON, NO_ID, DUPLICATE_ID, NO_MACHINE, BAD_FIELD, AUDIO_MISSING, AUDIO_QUARANTINED)


@dataclass(frozen=True)
class EditRow:
    """A row taken: its item id, the canonical document (``text``, what is stored), where it came from."""

    item_id: str
    text: str
    source: str  # the sidecar, relative to the source root
    source_id: str  # the row's id
    group: str | None


@dataclass(frozen=True)
class EditItem:
    """A text_edits item read back from its stored copy (:func:`read_edit_item`)."""

    item_id: str
    source_id: str  # the row's id
    machine: str
    source: str | None  # the source sentence (a translation's), if any
    audio_uri: str | None  # the stored copy of its audio item (core.ingest.audio.read_audio reads it), if any
    audio_item_id: str | None = None


# A path relative to the source root -> (audio item id, its stored copy), or (reason, detail) when it is none.
AudioLookup = Callable[[str], tuple[str, str] | tuple[None, tuple[str, str]]]


def edit_document(row_id: str, machine: str, source: str | None, audio: tuple[str, str] | None) -> str:
    """The canonical document of a row (what is stored and hashed)."""
    doc = {"id": row_id, "machine": machine, "source": source,
           "audio_item_id": audio[0] if audio else None, "audio_path": _in_store(audio[1]) if audio else None}  # fmt: skip
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _in_store(uri: str) -> str:
    """The audio copy's path inside the raw store (``<2 hex>/<hash>.<ext>``, beside the document's own folder):
    the document, and so the item id, holds no absolute path, so the same row is the same item wherever the data
    folder lives (moved, restored, another clone)."""
    path = Path(uri.removeprefix("file://"))
    return f"{path.parent.name}/{path.name}"


def read_edit_item(uri: str) -> EditItem:
    """A stored text_edits item; raises ``OSError`` or ``ValueError`` for a file that is not one."""
    data = Path(uri.removeprefix("file://")).read_bytes()
    doc = json.loads(data.decode("utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("machine"), str):
        raise ValueError(f"{uri} is not a text_edits document")
    audio = doc.get("audio_path")  # inside the raw store that holds this document: <raw>/<2 hex>/<name>
    audio_uri = str(Path(uri.removeprefix("file://")).parent.parent / audio) if isinstance(audio, str) else None
    if audio_uri is None and isinstance(doc.get("audio_uri"), str):  # a document written before audio_path
        audio_uri = doc["audio_uri"]
    return EditItem(hashlib.sha256(data).hexdigest(), str(doc.get("id", "")), doc["machine"], doc.get("source"),
                    audio_uri, doc.get("audio_item_id"))  # fmt: skip


def _text(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name!r} is {type(value).__name__}, not text")
    return value


def read_edit_rows(sidecar: str, data: bytes, audio_of: AudioLookup) -> tuple[list[EditRow], list[Refused]]:
    """The rows of one sidecar (every row taken, in order) and the refusals; rows numbered from 1."""
    rows: list[EditRow] = []
    refused: list[Refused] = []
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [Refused(sidecar, 0, NOT_UTF8, f"invalid UTF-8 at byte {exc.start}")]
    seen: set[str] = set()
    for n, line in enumerate(raw.removeprefix("\ufeff").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            refused.append(Refused(sidecar, n, NOT_JSON, f"not JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(row, dict):
            refused.append(Refused(sidecar, n, NOT_JSON, f"a JSON {type(row).__name__}, not an object"))
            continue
        row_id = "" if row.get("id") is None else str(row["id"]).strip()
        if not row_id:
            refused.append(Refused(sidecar, n, NO_ID, "no 'id'"))
            continue
        if row_id in seen:
            refused.append(Refused(sidecar, n, DUPLICATE_ID, f"id {row_id[:60]!r} seen on an earlier row"))
            continue
        seen.add(row_id)
        taken = _row(sidecar, n, row_id, row, audio_of)
        (rows if isinstance(taken, EditRow) else refused).append(taken)  # type: ignore[arg-type]
    return rows, refused


def _row(sidecar: str, n: int, row_id: str, row: Mapping[str, Any], audio_of: AudioLookup) -> EditRow | Refused:
    if not isinstance(row.get("machine"), str):
        return Refused(sidecar, n, NO_MACHINE, f"'machine' is {type(row.get('machine')).__name__}, not text", row_id)
    try:
        source, audio_path, group = _text(row, "source"), _text(row, "audio"), _text(row, "group")
    except TypeError as exc:
        return Refused(sidecar, n, BAD_FIELD, str(exc), row_id)
    audio: tuple[str, str] | None = None
    if audio_path is not None:
        found = _find_audio(sidecar, audio_path, audio_of)
        if found[0] is None:
            return Refused(sidecar, n, *found[1], source_id=row_id)
        audio = (found[0], found[1])
    doc = edit_document(row_id, normalize_text(row["machine"]), None if source is None else normalize_text(source), audio)
    stem = posixpath.splitext(posixpath.basename(audio_path))[0] if audio_path else None
    return EditRow(hashlib.sha256(doc.encode("utf-8")).hexdigest(), doc, sidecar, row_id, (group or "").strip() or stem)


def _find_audio(sidecar: str, path: str, audio_of: AudioLookup) -> tuple[str, str] | tuple[None, tuple[str, str]]:
    """The row's audio: relative to the source root, else to the sidecar's folder (the first that is listed)."""
    here = posixpath.dirname(sidecar)
    tries = [posixpath.normpath(path)] + ([posixpath.normpath(posixpath.join(here, path))] if here else [])
    if any(p.startswith("../") or p == ".." or posixpath.isabs(p) for p in tries):
        return None, (AUDIO_MISSING, f"audio {path!r} is outside the source")
    first: tuple[str, str] | tuple[None, tuple[str, str]] | None = None
    for candidate in tries:
        found = audio_of(candidate)
        if found[0] is not None:
            return found
        if first is None or found[1][0] != AUDIO_MISSING:  # a quarantine says more than a miss
            first = found
    assert first is not None
    return first


def split_sidecars(listing: Listing) -> tuple[Listing, list[SourceFile]]:
    """(the sidecar files as a listing of their own, the audio files) of a text_edits source's listing."""
    sidecars = [f for f in listing.files if Path(f.rel_path).suffix.lower() in SIDECAR_EXTENSIONS]
    audio = [f for f in listing.files if Path(f.rel_path).suffix.lower() not in SIDECAR_EXTENSIONS]
    return Listing(sidecars, listing.folders_not_scanned), audio


def _audio_lookup(store: LabelStore, report: IngestReport) -> AudioLookup:
    """What each audio path holds after this run's audio ingest (its outcome in ``report``; a path without one is
    not there now, whatever the manifest said before)."""
    heard = {o.rel_path: o for o in report.outcomes if Path(o.rel_path).suffix.lower() not in SIDECAR_EXTENSIONS}
    ids = sorted({o.item_id for o in heard.values() if o.item_id})
    uris = {r["item_id"]: r["uri"] for r in store.fetch(sa.select(items_table.c.item_id, items_table.c.uri)
                                                        .where(items_table.c.item_id.in_(ids)))}  # fmt: skip

    def audio_of(path: str) -> tuple[str, str] | tuple[None, tuple[str, str]]:
        o = heard.get(path)
        if o is None or o.outcome == lifecycle.MISSING:
            return None, (AUDIO_MISSING, f"audio {path!r} is not an audio file of the source (.wav .flac .ogg .mp3)")
        if o.outcome == QUARANTINED or not o.item_id or not uris.get(o.item_id):
            why = f"{o.reason}: {o.detail or ''}".rstrip(": ")
            return None, (AUDIO_QUARANTINED, f"audio {path!r} is quarantined ({why})"[:300])
        return o.item_id, str(uris[o.item_id])

    return audio_of


def ingest_edit_rows(
    store: LabelStore,
    fs: fsspec.AbstractFileSystem,
    source: str,
    sidecars: Listing,
    manifest: Mapping[str, Any],
    report: IngestReport,
    *,
    raw_dir: Path,
    max_file_bytes: int,
    batch_size: int,
    group_re: re.Pattern[str] | None,
) -> dict[str, str | None]:
    """Ingest the rows of a text_edits source's sidecars (after its audio); returns the manifest entries gone
    now (every kind of entry: the rows' run is the last), as ``text_scan.ingest_text_files`` does."""
    audio_of = _audio_lookup(store, report)
    rehashed = report.files_rehashed

    def read(f: SourceFile, data: bytes) -> tuple[Sequence[EditRow], Sequence[Refused]]:
        return read_edit_rows(f.rel_path, data, audio_of)

    gone = ingest_text_files(
        store, fs, source, sidecars, manifest, report, raw_dir=raw_dir, text=TextOptions(), max_file_bytes=max_file_bytes,
        batch_size=batch_size, rehash_every=1, group_re=group_re, read=read, fmt=EDIT_FORMAT,
    )  # fmt: skip
    report.files_rehashed += rehashed
    return gone
