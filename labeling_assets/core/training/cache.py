"""The tensor cache: each split's images decoded ONCE into a memory-mapped uint8 ``.npy`` file.

Per-epoch PNG decoding on the CPU caps training far below what a GPU can do (DESIGN §6), so the
``training_tensors`` asset writes this cache and training reads only it. A folder per dataset version
and size; ``latest.json`` beside them names the one the current dataset version uses.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labeling_assets.core.display import md_table, md_text
from labeling_assets.core.training.decode import DecodeFailure, decode_images
from labeling_assets.core.training.types import AnyArray, IntArray, UInt8Array

CACHE_META = "meta.json"
CACHE_FORMAT = 1
CACHE_POINTER = "latest.json"


@dataclass(frozen=True)
class CacheSplit:
    """One split of a tensor cache: memory-mapped uint8 images, int64 labels ((n,) class indices, or
    (n, K) 0/1 label sets in a multi-label cache) and the item ids."""

    images: UInt8Array
    labels: IntArray
    item_ids: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def _split_files(folder: Path, split: str) -> tuple[Path, Path, Path]:
    return folder / f"{split}.images.npy", folder / f"{split}.labels.npy", folder / f"{split}.items.json"


def _read_json(path: Path) -> Any:
    """The JSON document in ``path``, or None when there is no such file."""
    return json.loads(path.read_text()) if path.is_file() else None


def read_cache_meta(folder: str | Path) -> dict[str, Any] | None:
    """The cache's metadata, or None when the folder holds no complete cache (meta.json is written last)."""
    meta: dict[str, Any] | None = _read_json(Path(folder) / CACHE_META)
    return meta


def write_tensor_cache(
    folder: str | Path,
    splits: Mapping[str, tuple[Sequence[str], Sequence[int] | AnyArray, Sequence[str]]],
    *,
    image_size: int,
    channels: int,
    classes: Sequence[str],
    extra_meta: dict[str, Any] | None = None,
    workers: int | None = None,
) -> tuple[dict[str, Any], dict[str, list[DecodeFailure]]]:
    """Decode each split's images once into ``<folder>/<split>.images.npy`` (uint8 memmap).

    ``splits`` maps a split name to (paths, label indices, item ids); a multi-label cache gives each item
    a row of K 0/1 flags instead of an index (stored (n, K); ``class_counts`` then counts positives). The cache is built in a sibling
    temporary folder and swapped in whole, and ``meta.json`` is written last, so a crash never leaves
    a half cache that looks complete. Rows that fail to decode are dropped (and returned per split).
    """
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    if tmp.exists():
        _remove_tree(tmp)
    tmp.mkdir(parents=True)
    failures: dict[str, list[DecodeFailure]] = {}
    counts: dict[str, int] = {}
    class_counts: dict[str, list[int]] = {}
    for split, (paths, labels, item_ids) in splits.items():
        if not (len(paths) == len(labels) == len(item_ids)):
            raise ValueError(f"split {split!r}: paths, labels and item ids differ in length")
        images_path, labels_path, items_path = _split_files(tmp, split)
        n = len(paths)
        images = np.lib.format.open_memmap(  # type: ignore[no-untyped-call]
            images_path, mode="w+", dtype=np.uint8, shape=(n, channels, image_size, image_size)
        )
        _, bad = decode_images(list(paths), image_size, channels, out=images, workers=workers)
        keep = np.ones(n, dtype=bool)
        keep[[f.index for f in bad]] = False
        # Class indices (n,), or (n, K) 0/1 label sets of a multi-label project.
        label_array = np.asarray(labels, dtype=np.int64)
        kept_ids = [item for item, ok in zip(item_ids, keep, strict=True) if ok]
        if bad:
            compact = np.ascontiguousarray(images[keep])
            del images
            np.save(images_path, compact)
        else:
            images.flush()
            del images
        np.save(labels_path, label_array[keep])
        items_path.write_text(json.dumps(kept_ids))
        failures[split] = bad
        counts[split] = int(keep.sum())
        kept = label_array[keep]
        if label_array.ndim == 2:
            class_counts[split] = kept.sum(axis=0).astype(np.int64).tolist()  # positives per class
        else:
            class_counts[split] = np.bincount(kept, minlength=len(classes)).tolist()
    meta = {
        "format": CACHE_FORMAT,
        "image_size": image_size,
        "channels": channels,
        "classes": list(classes),
        "counts": counts,
        "class_counts": class_counts,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra_meta or {}),
    }
    (tmp / CACHE_META).write_text(json.dumps(meta, indent=2))
    if folder.exists():
        _remove_tree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(folder)
    return meta, failures


def _remove_tree(path: Path) -> None:
    for child in path.iterdir():
        if child.is_dir():
            _remove_tree(child)
        else:
            child.unlink()
    path.rmdir()


def load_cache_split(folder: str | Path, split: str) -> CacheSplit:
    """One split of a cache written by :func:`write_tensor_cache` (images memory-mapped, not read)."""
    folder = Path(folder)
    if read_cache_meta(folder) is None:
        raise FileNotFoundError(f"no complete tensor cache in {folder} (meta.json missing)")
    images_path, labels_path, items_path = _split_files(folder, split)
    if not images_path.is_file():
        raise FileNotFoundError(f"tensor cache {folder} has no split {split!r}")
    return CacheSplit(
        images=np.load(images_path, mmap_mode="r"),
        labels=np.load(labels_path),
        item_ids=json.loads(items_path.read_text()),
    )


def cache_folder(root: str | Path, version: str, image_size: int, channels: int) -> Path:
    """Where the cache of one dataset version at one size lives under ``root`` (``<data>/tensors``)."""
    return Path(root) / f"{version}-{image_size}px-{channels}c"


def write_cache_pointer(root: str | Path, dataset_version: str, folder: Path) -> None:
    """Record ``folder`` as the cache of ``dataset_version`` (what training reads next)."""
    pointer = {"dataset_version": dataset_version, "folder": str(folder)}
    (Path(root) / CACHE_POINTER).write_text(json.dumps(pointer))


def read_cache_pointer(root: str | Path) -> dict[str, str] | None:
    """The ``{"dataset_version", "folder"}`` of the latest cache, or None before the first one."""
    pointer: dict[str, str] | None = _read_json(Path(root) / CACHE_POINTER)
    return pointer


def prune_caches(keep: Path) -> list[str]:
    """Delete every complete cache folder beside ``keep`` (in-progress ``.tmp`` folders are left alone)."""
    removed = []
    for other in keep.parent.iterdir():
        if other == keep or not other.is_dir() or other.name.startswith("."):
            continue
        if read_cache_meta(other) is not None:
            shutil.rmtree(other, ignore_errors=True)
            removed.append(other.name)
    return removed


def cache_bytes(folder: Path) -> int:
    """Bytes of the image arrays of a cache."""
    return sum(p.stat().st_size for p in folder.glob("*.images.npy"))


def class_counts_markdown(meta: dict[str, Any], classes: Sequence[str]) -> str:
    """A Markdown table of images per class in the train and val splits of a cache."""
    counts = meta["class_counts"]
    val = counts.get("val", [0] * len(classes))
    rows = [(md_text(name), counts["train"][k], val[k]) for k, name in enumerate(classes)]
    return md_table(["class", "train", "val"], rows)
