"""The stored texts of items: a text item's copy is its normalised text in UTF-8 (``core.ingest.text_scan``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


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
