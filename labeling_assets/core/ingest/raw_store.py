"""The raw store and the quarantine folder: content-addressed copies written once, atomically.

The raw store is append-only: a file is written under its hash with an atomic rename before the database
commit, so a crash at any point loses nothing and a rerun finishes the job. A store that cannot be written
(a full disk, a read-only one) raises :class:`StoreWriteError`: one line naming the folder, and no half copy.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from labeling_assets.core.errors import ConfigurationError

_EXTENSION_BY_FORMAT = {
    "PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp",
    "TXT": ".txt",  # a text item's copy: its normalised text, UTF-8 (core.ingest.text)
    "WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3",  # audio (core.ingest.audio): the player needs it
    "EDIT": ".edit.json",  # a text_edits item's canonical JSON document (core.ingest.edits)
}  # fmt: skip


class StoreWriteError(ConfigurationError):
    """The raw store or the quarantine folder cannot be written (full, read-only): one line naming the folder."""


def raw_path(raw_dir: Path, item_id: str, fmt: str) -> Path:
    """Where the content-addressed copy of an item lives."""
    return raw_dir / item_id[:2] / f"{item_id}{_EXTENSION_BY_FORMAT.get(fmt.upper(), '.img')}"


def write_once(path: Path, data: bytes, *, store: Path, private: bool = False) -> None:
    """Write ``data`` at ``path`` unless it is already there (same name = same bytes), atomically.

    ``private``: the file is readable by its owner only (0600), and so are the folders made for it; raw
    copies are not private, because Label Studio (another user, in the docker stack) serves them to labelers.
    Raises :class:`StoreWriteError` naming ``store`` when it cannot be written (a full disk, a read-only one).
    """
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_atomically(path, tmp, data, private)
    except OSError as exc:
        tmp.unlink(missing_ok=True)  # no half copy left behind
        what = "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "not writable"
        raise StoreWriteError(
            f"{'quarantine folder' if private else 'raw store'} {store} is {what} ({exc.strerror or exc}) "
            f"writing {path.name}: free space there (or move the project's data folder, $LABELING_ASSETS_HOME, "
            "to a larger disk), then rerun: nothing of this batch was recorded"
        ) from exc


def _write_atomically(path: Path, tmp: Path, data: bytes, private: bool) -> None:
    for folder in (path.parent.parent, path.parent):
        if not folder.exists():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    with os.fdopen(fd, "wb") as fh:
        if private:
            os.fchmod(fd, 0o600)  # a stale temporary file keeps its old mode otherwise
        fh.write(data)
    os.replace(tmp, path)


def make_private(folder: Path) -> None:
    """A quarantine folder left readable by others (made before copies were private) becomes owner-only."""
    try:
        if not folder.is_dir() or not folder.stat().st_mode & 0o077:
            return
        folder.chmod(0o700)
        for path in folder.rglob("*"):
            path.chmod(0o700 if path.is_dir() else 0o600)
    except OSError:  # not ours to change (another user's folder): new copies are still written 0600
        pass
