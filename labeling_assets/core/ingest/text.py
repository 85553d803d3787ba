"""Texts as items: bytes of a ``.txt`` file, or rows of a JSONL or CSV file, read into normalised texts with a
content hash, and everything that cannot be an item refused with a reason (nothing is dropped unseen).

The stored text is the normalised one: Unicode NFC, and ``\\r\\n`` / ``\\r`` line ends as ``\\n`` (a UTF-8 byte
order mark is dropped). Spans are character offsets of this text, so it is normalised once, before anyone labels
it; the item id is the SHA-256 of its UTF-8 bytes, so the same text twice (from two files, or a Windows and a
Unix copy) is one item. Which file or row a text came from (``source``, ``source_id``) is kept beside it.
The caller reads the source's bytes (``core.ingest.source`` lists and reads files safely); the stored copy of a
text item is read back by :func:`read_stored_text`, what every later stage reads a text from.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_TEXT_BYTES = 100_000  # one text; Label Studio's text view slows down long before a megabyte

# Why a text (or a row, or a whole file) is refused.
NOT_UTF8 = "not_utf8"
BINARY = "binary_content"
EMPTY_TEXT = "empty_text"
TEXT_TOO_LARGE = "text_too_large"
NOT_JSON = "row_not_json"  # a JSONL line that is not a JSON object
NO_ID = "row_without_id"
DUPLICATE_ID = "duplicate_id"  # an id seen earlier in the same file (the first row stays)
NO_TEXT = "row_without_text"  # the text field missing or not a string
MISSING_COLUMN = "missing_column"  # a CSV without the id or text column named in the settings
CSV_ERROR = "csv_unreadable"  # the csv module stopped on the file (the rows before it are read)
REASONS = (NOT_UTF8, BINARY, EMPTY_TEXT, TEXT_TOO_LARGE, NOT_JSON, NO_ID, DUPLICATE_ID, NO_TEXT, MISSING_COLUMN,
           CSV_ERROR)  # fmt: skip
# The task types whose items are texts, and the files a text source lists.
TEXT_TASK_TYPES = ("text_classes", "text_class_sets", "text_spans")
TEXT_EXTENSIONS = frozenset({".txt", ".jsonl", ".csv"})
_CONTROL_SHARE = 0.1  # more control characters than this (tab and line ends aside) reads as binary


@dataclass(frozen=True)
class TextOptions:
    """How a text project's files read (``ProjectSettings``): the id and text fields of its JSONL and CSV rows,
    and the largest text in bytes (a ``.txt`` file is refused from its size alone past it)."""

    id_field: str = "id"
    text_field: str = "text"
    max_bytes: int = DEFAULT_MAX_TEXT_BYTES


@dataclass(frozen=True)
class TextItem:
    """One text read: its content hash, the normalised text, and where it came from."""

    item_id: str
    text: str
    source: str  # the file, relative to the source root
    source_id: str  # the row's id (JSONL/CSV), or the file name (.txt)


@dataclass(frozen=True)
class Refused:
    """Something that is not an item: the file, the line or row (0: the whole file), why, and a short detail."""

    source: str
    row: int
    reason: str
    detail: str
    source_id: str = ""  # the row's id when it has one of its own (not for a missing or duplicate id)


@dataclass
class TextBatch:
    """Items in the order read (one per distinct text: a text read again is counted in ``repeats``) and the
    refusals."""

    items: list[TextItem] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    repeats: int = 0
    rows: list[TextItem] = field(default_factory=list)  # every row taken, repeats too (each keeps its id)

    def add(self, item: TextItem, seen: set[str]) -> None:
        self.rows.append(item)
        if item.item_id in seen:
            self.repeats += 1
        else:
            seen.add(item.item_id)
            self.items.append(item)


def normalize_text(text: str) -> str:
    """NFC, ``\\n`` line ends, no byte order mark."""
    return unicodedata.normalize("NFC", text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n"))


def text_item_id(text: str) -> str:
    """The content hash of a normalised text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_text(text: str, max_bytes: int = DEFAULT_MAX_TEXT_BYTES) -> tuple[str, str] | None:
    """Why a normalised text cannot be an item (``(reason, detail)``), or None."""
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        return TEXT_TOO_LARGE, f"{size} bytes, over the limit of {max_bytes} bytes per text"
    if not text.strip():
        return EMPTY_TEXT, "no text (empty or only whitespace)"
    control = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\n")
    if "\x00" in text or control > _CONTROL_SHARE * len(text):
        return BINARY, f"{control} control characters in {len(text)}: binary content, not text"
    return None


def _decode(data: bytes) -> tuple[str | None, str]:
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 at byte {exc.start}"


def read_text_file(source: str, data: bytes, max_bytes: int = DEFAULT_MAX_TEXT_BYTES) -> TextItem | Refused:
    """A ``.txt`` file as one item (its file name is its ``source_id``), or why not."""
    if len(data) > max_bytes:  # refused from its size alone, before decoding a large file
        return Refused(source, 0, TEXT_TOO_LARGE, f"{len(data)} bytes, over the limit of {max_bytes} bytes per text")
    raw, why = _decode(data)
    if raw is None:
        return Refused(source, 0, BINARY if b"\x00" in data else NOT_UTF8, why or "binary content")
    text = normalize_text(raw)
    problem = check_text(text, max_bytes)
    if problem:
        return Refused(source, 0, *problem)
    return TextItem(text_item_id(text), text, source, source.rsplit("/", 1)[-1])


def _row(batch: TextBatch, seen_ids: set[str], seen: set[str], source: str, n: int, row: Mapping[str, Any],
         id_field: str, text_field: str, max_bytes: int) -> None:  # fmt: skip
    raw_id, raw_text = row.get(id_field), row.get(text_field)
    row_id = "" if raw_id is None else str(raw_id).strip()
    if not row_id:
        batch.refused.append(Refused(source, n, NO_ID, f"no {id_field!r}"))
    elif row_id in seen_ids:
        batch.refused.append(Refused(source, n, DUPLICATE_ID, f"{id_field} {row_id[:60]!r} seen on an earlier row"))
    elif not isinstance(raw_text, str):
        batch.refused.append(Refused(source, n, NO_TEXT, f"{text_field!r} is {type(raw_text).__name__}, not text"))
    else:
        seen_ids.add(row_id)
        text = normalize_text(raw_text)
        problem = check_text(text, max_bytes)
        if problem:
            batch.refused.append(Refused(source, n, *problem, source_id=row_id))
        else:
            batch.add(TextItem(text_item_id(text), text, source, row_id), seen)


def read_jsonl(source: str, data: bytes, id_field: str, text_field: str,
               max_bytes: int = DEFAULT_MAX_TEXT_BYTES) -> TextBatch:  # fmt: skip
    """The texts of a JSONL file (one object a line; blank lines skipped), row numbers counted from 1."""
    batch, seen_ids, seen = TextBatch(), set[str](), set[str]()
    raw, why = _decode(data)
    if raw is None:
        batch.refused.append(Refused(source, 0, NOT_UTF8, why))
        return batch
    for n, line in enumerate(raw.removeprefix("\ufeff").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            batch.refused.append(Refused(source, n, NOT_JSON, f"not JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(row, dict):
            batch.refused.append(Refused(source, n, NOT_JSON, f"a JSON {type(row).__name__}, not an object"))
            continue
        _row(batch, seen_ids, seen, source, n, row, id_field, text_field, max_bytes)
    return batch


def read_csv(source: str, data: bytes, id_column: str, text_column: str,
             max_bytes: int = DEFAULT_MAX_TEXT_BYTES) -> TextBatch:  # fmt: skip
    """The texts of a CSV file with a header row; rows numbered from 1 after the header. A text may span lines
    (quoted, as CSV allows)."""
    batch, seen_ids, seen = TextBatch(), set[str](), set[str]()
    raw, why = _decode(data)
    if raw is None:
        batch.refused.append(Refused(source, 0, NOT_UTF8, why))
        return batch
    reader = csv.DictReader(io.StringIO(raw.removeprefix("\ufeff"), newline=""))
    missing = [c for c in (id_column, text_column) if c not in (reader.fieldnames or [])]
    if missing:
        batch.refused.append(Refused(source, 0, MISSING_COLUMN, f"no column {missing}; columns: {reader.fieldnames}"))
        return batch
    # The csv module refuses a field over its (process-wide) limit and stops there; lifted to the file's length
    # for this read, a long text reaches the size check of its own row and the rows after it are read.
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(raw) + 1))
    try:
        for n, row in enumerate(reader, start=1):
            _row(batch, seen_ids, seen, source, n, row, id_column, text_column, max_bytes)
    except csv.Error as exc:  # what the csv module cannot parse on: the rest of the file is refused, said where
        batch.refused.append(Refused(source, reader.line_num, CSV_ERROR, f"unreadable from line {reader.line_num}: {exc}"[:200]))
    finally:
        csv.field_size_limit(limit)
    return batch


# The stored copy of a text item (core.ingest.text_scan writes it): what every stage reads a text from.
def read_stored_text(uri: str) -> str:
    """The text of a stored copy; raises ``OSError`` or ``UnicodeDecodeError`` (``ValueError``) for a file that is
    not one (missing, not UTF-8, holding a NUL: not what ingest stores)."""
    text = Path(uri.removeprefix("file://")).read_bytes().decode("utf-8")
    if "\x00" in text:
        raise ValueError(f"{uri} holds a NUL byte: not a stored text")
    return text


def read_texts(uris: Sequence[str]) -> tuple[list[str | None], list[int]]:
    """(per uri its text or None, the indices of those that could not be read)."""
    texts: list[str | None] = []
    failed: list[int] = []
    for n, uri in enumerate(uris):
        try:
            texts.append(read_stored_text(str(uri)))
        except (OSError, ValueError):
            texts.append(None)
            failed.append(n)
    return texts, failed
