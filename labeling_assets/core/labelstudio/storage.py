"""Where Label Studio must look for the task images: path arithmetic, and the one folder it may serve.

Label Studio 1.23 answers ``/data/local-files/?d=<path>`` with 404 unless ``<document root>/<path>`` lies
in the folder of a local-files storage of a project the user may open. The pipeline writes task URLs
relative to the project's data folder (``raw/<item>.png``), and the server reads them relative to its
``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``: ``<data>/served``, which holds only the link ``raw -> ../raw``
(``/label-studio/files``, with the raw store mounted at ``raw``, in the docker stack).

Why a folder of its own: Community has no roles, so any account may register a local-files storage on any
folder under the document root and read every file there. The root therefore holds the raw image store and
nothing else: never the label store, a backup, Label Studio's own database or token, the quarantine or a gold
file (docs/security.md).
"""

import os
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from labeling_assets.core.errors import ConfigurationError

IMAGE_STORAGE_TITLE = "labeling-assets images (serves task images; do not sync)"
# A Sync pressed in the UI would import every raw image as a task, gold items among them, outside the
# queue: a filter no file name matches keeps the storage a way to serve files, never to create tasks.
MATCHES_NO_FILE = "^$"


SERVED_FOLDER = "served"  # <data>/served: Label Studio's local-files document root
RAW_FOLDER = "raw"  # <data>/raw: the raw image store, the only thing served


class StorageFolderError(ConfigurationError, ValueError):
    """The image folder cannot be served: it is not a subfolder of the data folder, or the served root holds
    something other than the link to the raw store."""


def served_root(data_root: Path) -> Path:
    """Label Studio's local-files document root for the data folder ``data_root``: ``<data>/served``."""
    return data_root / SERVED_FOLDER


def link_raw_store(data_root: Path) -> Path:
    """Make ``<data>/served`` hold the link ``raw -> ../raw`` and nothing else (idempotent); returns it.

    A relative link: the data folder can move or be copied whole. Label Studio normalises ``d`` lexically
    before it opens the file, so ``raw/../..`` never climbs out through the link.

    Raises:
        StorageFolderError: the served root holds anything else (it would be served to every account).
    """
    root = served_root(data_root)
    root.mkdir(parents=True, exist_ok=True)
    (data_root / RAW_FOLDER).mkdir(parents=True, exist_ok=True)
    link, target = root / RAW_FOLDER, Path("..") / RAW_FOLDER
    if not link.is_symlink() and not link.exists():
        link.symlink_to(target, target_is_directory=True)
    stray = sorted(p.name for p in root.iterdir() if p.name != RAW_FOLDER)
    if not link.is_symlink() or Path(os.readlink(link)) != target or stray:
        found = ", ".join(stray) or f"{RAW_FOLDER} (not a link to {target})"
        raise StorageFolderError(
            f"{root} is Label Studio's local-files root and every account can read all of it; it must hold only "
            f"the link {RAW_FOLDER} -> {target}: move {found} out"
        )
    return root


def server_folder(images_dir: Path, data_root: Path, document_root: str | None = None) -> str:
    """The image folder as the Label Studio server sees it.

    Args:
        images_dir: the folder holding the images, as this process sees it.
        data_root: the folder task URLs are relative to (the project's data folder).
        document_root: the server's ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``, where it sees the data folder's
            ``raw`` (docker: ``/label-studio/files``); None: the local server's, ``<data_root>/served``.
    """
    try:
        relative = images_dir.resolve().relative_to(data_root.resolve())
    except ValueError:
        raise StorageFolderError(f"{images_dir} is not inside the data folder {data_root}") from None
    if relative == Path("."):
        # Label Studio refuses a storage equal to its document root (it would expose every file there).
        raise StorageFolderError(f"the image folder must be a subfolder of the data folder {data_root}")
    root = PurePosixPath(document_root) if document_root else PurePosixPath(served_root(data_root))
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
