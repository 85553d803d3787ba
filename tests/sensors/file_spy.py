"""Which files a block of code opens, from Python's audit events (``open`` fires for every file opened,
by ``open()``, ``io``, ``os.open`` and the C libraries Python wraps), without patching anything."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_WATCHES: list[tuple[str, list[str]]] = []


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not _WATCHES or not args:
        return
    path = args[0]
    if isinstance(path, str | bytes | os.PathLike):
        text = os.path.abspath(os.fsdecode(path))
        for root, found in _WATCHES:
            if text == root or text.startswith(root + os.sep):
                found.append(text)


sys.addaudithook(_hook)  # an audit hook cannot be removed: it records only inside opened_under()


@contextmanager
def opened_under(root: Path) -> Iterator[list[str]]:
    """The files under ``root`` opened inside the block."""
    found: list[str] = []
    watch = (os.path.abspath(root), found)
    _WATCHES.append(watch)
    try:
        yield found
    finally:
        _WATCHES.remove(watch)
