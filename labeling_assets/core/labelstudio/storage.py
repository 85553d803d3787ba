"""Where Label Studio must look for the task images, as pure path arithmetic (no Label Studio call).

Label Studio 1.23 answers ``/data/local-files/?d=<path>`` with 404 unless ``<document root>/<path>`` lies
in the folder of a local-files storage of a project the user may open. The pipeline writes task URLs
relative to the project's data folder (``raw/<item>.png``), and the server reads them relative to its
``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``: the same folder seen from two places (the same path on one
machine; ``/opt/dagster/data`` and ``/label-studio/files`` in the docker stack).
"""

import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

IMAGE_STORAGE_TITLE = "labeling-assets images (serves task images; do not sync)"
# A Sync pressed in the UI would import every raw image as a task, gold items among them, outside the
# queue: a filter no file name matches keeps the storage a way to serve files, never to create tasks.
MATCHES_NO_FILE = "^$"


class StorageFolderError(ValueError):
    """The image folder cannot be served: it is not a subfolder of the data folder."""


def server_folder(images_dir: Path, data_root: Path, document_root: str | None = None) -> str:
    """The image folder as the Label Studio server sees it.

    Args:
        images_dir: the folder holding the images, as this process sees it.
        data_root: the folder task URLs are relative to (the project's data folder).
        document_root: the server's ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` when it sees ``data_root``
            under another path (docker); None when both share one filesystem path.
    """
    try:
        relative = images_dir.resolve().relative_to(data_root.resolve())
    except ValueError:
        raise StorageFolderError(f"{images_dir} is not inside the data folder {data_root}") from None
    if relative == Path("."):
        # Label Studio refuses a storage equal to its document root (it would expose every file there).
        raise StorageFolderError(f"the image folder must be a subfolder of the data folder {data_root}")
    root = PurePosixPath(document_root) if document_root else PurePosixPath(data_root)
    return posixpath.normpath(str(root / PurePosixPath(relative.as_posix())))


def covers(storage_path: str, folder: str) -> bool:
    """Whether a storage at ``storage_path`` serves the files of ``folder`` (Label Studio's own rule)."""
    root = posixpath.normpath(storage_path).rstrip("/")
    target = posixpath.normpath(folder)
    return target == root or target.startswith(root + "/")


def covering_storage(storages: Iterable[Mapping[str, Any]], folder: str) -> int | None:
    """The id of the first storage that serves ``folder``, or None."""
    for storage in storages:
        path = storage.get("path")
        if path and covers(str(path), folder):
            return int(storage["id"])
    return None
