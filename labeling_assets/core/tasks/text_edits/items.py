"""How this kind reads an item: its machine output, source sentence and audio, from the stored edit document.

Ingest (``core.ingest.edits``) stores each sidecar row as a canonical JSON document ``<hash>.edit.json``
``{"id", "machine", "source", "audio_item_id", "audio_path"}``; :func:`read_item` reads it through
``core.ingest.edits.read_edit_item``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from labeling_assets.core.ingest.edits import read_edit_item


@dataclass(frozen=True)
class EditText:
    """What a labeler sees of an item: the machine output to correct, the source sentence, the audio's stored copy."""

    machine: str
    source: str | None = None
    audio_uri: str | None = None


def read_item(uri: str) -> EditText:
    """The item stored at ``uri`` (``core.ingest.edits.read_edit_item``); raises ``ValueError`` or ``OSError`` for a
    file that is no edit document."""
    try:
        item = read_edit_item(uri)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{uri} is not UTF-8 ({exc.reason})") from None
    return EditText(str(item.machine), item.source or None, item.audio_uri or None)


def read_items(uris: Sequence[str]) -> tuple[list[EditText | None], list[int]]:
    """Each uri's item (None where it cannot be read) and the indices that failed."""
    found: list[EditText | None] = []
    for uri in uris:
        item = None
        with contextlib.suppress(OSError, ValueError, TypeError):
            item = read_item(str(uri))
        found.append(item)
    return found, [n for n, item in enumerate(found) if item is None]


def machine_texts(pairs: Iterable[tuple[str, object]]) -> dict[str, str]:
    """item -> its machine output, for ``(item_id, uri)`` pairs whose stored document reads (others left out)."""
    out: dict[str, str] = {}
    for item, uri in pairs:
        if item in out or not isinstance(uri, str) or not uri:
            continue
        with contextlib.suppress(OSError, ValueError, TypeError):
            out[item] = read_item(uri).machine
    return out
