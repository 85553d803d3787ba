"""Dataset exports: JSONL (Hugging Face ``datasets`` "json" loader), CSV, Parquet and an ImageFolder tree.

Pure logic (no Dagster). Every export is written to a temporary name and renamed into place, so a crash
leaves the previous export intact and a reader never sees half a file. The ImageFolder tree is
``<root>/<split>/<class>/<item_id><ext>``, which ``torchvision.datasets.ImageFolder(<root>/<split>)``
loads as is; images are hard links to the content-addressed raw store (no extra disk), or copies when
the export lives on another file system.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet", "imagefolder")
FILE_NAMES: dict[str, str] = {
    "jsonl": "dataset.jsonl",
    "csv": "dataset.csv",
    "parquet": "dataset.parquet",
    "imagefolder": "imagefolder",
}
COLUMNS: tuple[str, ...] = ("image_path", "label", "split", "item_id")


@dataclass
class ExportReport:
    """What an export wrote: format -> path, and how the ImageFolder images got there."""

    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)
    linked: int = 0
    copied: int = 0


def validate_formats(formats: Iterable[str]) -> list[str]:
    """The requested formats, deduplicated in order; a clear error for an unknown one."""
    chosen: list[str] = []
    for name in formats:
        key = name.strip().lower()
        if key not in FORMATS:
            raise ValueError(f"unknown export format {name!r}; choose from {', '.join(FORMATS)}")
        if key not in chosen:
            chosen.append(key)
    if not chosen:
        raise ValueError(f"no export format requested; choose from {', '.join(FORMATS)}")
    return chosen


def export_rows(manifest: pd.DataFrame, uris: Mapping[str, str | None]) -> pd.DataFrame:
    """One row per manifest item: image_path (the stored copy), label, split, item_id; sorted by item.

    Raises ValueError when an item has no stored image: an export that silently drops items would not
    match its dataset version.
    """
    rows = manifest.loc[:, ["item_id", "label", "split"]].sort_values("item_id", kind="stable")
    paths = rows["item_id"].map(lambda i: uris.get(i))
    missing = rows["item_id"][paths.isna()]
    if len(missing):
        raise ValueError(f"{len(missing)} items have no stored image, e.g. {missing.head(5).tolist()}")
    return pd.DataFrame(
        {
            "image_path": paths.astype(str).to_numpy(),
            "label": rows["label"].astype(str).to_numpy(),
            "split": rows["split"].astype(str).to_numpy(),
            "item_id": rows["item_id"].astype(str).to_numpy(),
        }
    )


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def write_jsonl(rows: pd.DataFrame, path: Path) -> Path:
    """One JSON object per line with the keys of :data:`COLUMNS`."""
    tmp = _tmp_sibling(path)
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in rows.loc[:, list(COLUMNS)].to_dict(orient="records"):
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def write_csv(rows: pd.DataFrame, path: Path) -> Path:
    tmp = _tmp_sibling(path)
    rows.loc[:, list(COLUMNS)].to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def write_parquet(rows: pd.DataFrame, path: Path) -> Path:
    """Parquet through pyarrow (a clear error when it is not installed)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:  # pragma: no cover - pyarrow ships with the pinned mlflow
        raise RuntimeError("the parquet export needs pyarrow: pip install pyarrow") from exc
    tmp = _tmp_sibling(path)
    rows.loc[:, list(COLUMNS)].to_parquet(tmp, index=False, engine="pyarrow")
    tmp.replace(path)
    return path


def _safe_dir_name(name: str) -> str:
    """A class name as one directory name: path separators and dot-names cannot escape the tree."""
    cleaned = name.replace("/", "_").replace("\\", "_").replace("\x00", "_").strip()
    if cleaned in {"", ".", ".."}:
        raise ValueError(f"class name {name!r} cannot be a directory name")
    return cleaned


def write_imagefolder(rows: pd.DataFrame, root: Path) -> tuple[int, int]:
    """``root/<split>/<class>/<item_id><ext>``; returns (hard links, copies). Replaces ``root`` whole."""
    tmp = _tmp_sibling(root)
    tmp.mkdir(parents=True)
    linked = copied = 0
    made: set[Path] = set()
    try:
        for image_path, label, split, item_id in rows.loc[:, list(COLUMNS)].itertuples(index=False):
            source = Path(image_path)
            folder = tmp / _safe_dir_name(split) / _safe_dir_name(label)
            if folder not in made:
                folder.mkdir(parents=True, exist_ok=True)
                made.add(folder)
            target = folder / f"{item_id}{source.suffix.lower() or '.png'}"
            try:
                os.link(source, target)
                linked += 1
            except OSError:  # another file system, or links not allowed: copy instead
                shutil.copyfile(source, target)
                copied += 1
        old = _tmp_sibling(root)
        if root.exists():
            root.rename(old)
        tmp.rename(root)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return linked, copied


def export_dataset(rows: pd.DataFrame, out_dir: Path, formats: Iterable[str]) -> ExportReport:
    """Write the requested formats under ``out_dir`` (see :data:`FILE_NAMES`)."""
    chosen = validate_formats(formats)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExportReport(out_dir=out_dir)
    writers = {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}
    for name in chosen:
        path = out_dir / FILE_NAMES[name]
        if name == "imagefolder":
            report.linked, report.copied = write_imagefolder(rows, path)
        else:
            writers[name](rows, path)
        report.paths[name] = path
    return report
