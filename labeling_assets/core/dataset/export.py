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
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from labeling_assets.core.label_sets import MULTI_LABEL, SINGLE_LABEL, to_indicator
from labeling_assets.core.tasks.registry import task_kind

# The box formats (one folder each, per split) are written by the box kind (``core/tasks/boxes/export.py``); a
# Hugging Face DatasetDict, CoNLL and spaCy's DocBin by the text kinds (``core/tasks/text_classes/export.py``,
# ``core/tasks/text_spans/export.py``).
FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet", "imagefolder", "coco", "yolo", "voc", "hf_datasets", "conll",
                            "spacy", "rttm")  # fmt: skip
FILE_NAMES: dict[str, str] = {
    "jsonl": "dataset.jsonl",
    "csv": "dataset.csv",
    "parquet": "dataset.parquet",
    "imagefolder": "imagefolder",
}
COLUMNS: tuple[str, ...] = ("image_path", "label", "split", "item_id")
# A multi-label project: JSONL keeps ``label`` as a list of class names; CSV and Parquet replace it with one
# 0/1 column per class (see :func:`indicator_columns`); an ImageFolder tree cannot hold a set of classes.
LABEL_SET_FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet")
INDICATOR_PREFIX = "label_"
COLUMN_MAP_NAME = "label_columns.json"


@dataclass
class ExportReport:
    """What an export wrote: format -> path, how the ImageFolder images got there, and one line per way a format
    adapted the labels to what it can hold (``notes``: text spans that overlap)."""

    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)
    linked: int = 0
    copied: int = 0
    notes: list[str] = field(default_factory=list)


def validate_formats(formats: Iterable[str], *, task_type: str = SINGLE_LABEL) -> list[str]:
    """The requested formats, deduplicated in order; a clear error for an unknown one, and for ImageFolder
    in a multi-label project."""
    chosen: list[str] = []
    for name in formats:
        key = name.strip().lower()
        if key not in FORMATS:
            raise ValueError(f"unknown export format {name!r}; choose from {', '.join(FORMATS)}")
        if key not in chosen:
            chosen.append(key)
    if not chosen:
        raise ValueError(f"no export format requested; choose from {', '.join(FORMATS)}")
    kind = task_kind(task_type)
    refused = [name for name in chosen if name not in kind.export_formats]
    if refused:
        raise ValueError(f"the {refused[0]} export is refused for a {kind.name} project: {kind.export_note}")
    return chosen


def indicator_columns(classes: Sequence[str]) -> dict[str, str]:
    """Class name -> its 0/1 column in CSV/Parquet exports: ``label_`` + the name lower-cased with every run
    of characters other than a-z and 0-9 replaced by ``_`` (e.g. "Pleural Thickening" ->
    ``label_pleural_thickening``); a name that collides with an earlier one gets ``_2``, ``_3``, ..."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in classes:
        slug = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "class"
        column, k = INDICATOR_PREFIX + slug, 2
        while column in taken:
            column, k = f"{INDICATOR_PREFIX}{slug}_{k}", k + 1
        taken.add(column)
        out[str(name)] = column
    return out


def indicator_frame(rows: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """``rows`` with ``label`` (lists) replaced by one uint8 0/1 column per class, in ``classes`` order."""
    matrix = to_indicator(rows["label"].tolist(), classes)
    columns = indicator_columns(classes)
    base = rows.loc[:, [c for c in columns_of(rows) if c != "label"]].reset_index(drop=True)
    flags = pd.DataFrame(matrix.astype(np.uint8), columns=[columns[str(c)] for c in classes])
    return pd.concat([base, flags], axis=1)


def export_rows(manifest: pd.DataFrame, uris: Mapping[str, str | None]) -> pd.DataFrame:
    """One row per manifest item: image_path (the stored copy), label, split, item_id; sorted by item. A label set
    stays a sorted list of names, and a box answer (a dict), a span answer (a list of ``[start, end, type]``) and an
    audio segment answer (a list of ``{start, end, label}``) stay as they are, for the kind's export to read; any
    other label becomes its text.

    Raises ValueError when an item has no stored image: an export that silently drops items would not
    match its dataset version.
    """
    rows = manifest.loc[:, ["item_id", "label", "split"]].sort_values("item_id", kind="stable")
    paths = rows["item_id"].map(lambda i: uris.get(i))
    missing = rows["item_id"][paths.isna()]
    if len(missing):
        raise ValueError(f"{len(missing)} items have no stored image, e.g. {missing.head(5).tolist()}")
    sets = rows["label"].map(lambda v: isinstance(v, list | tuple))
    answers = rows["label"].map(lambda v: isinstance(v, Mapping))
    # Label sets stay lists (sorted names), for the JSONL list field and the 0/1 columns.
    if len(rows) and sets.all():
        labels = rows["label"].map(lambda v: list(v) if any(isinstance(x, list | tuple | Mapping) for x in v) else sorted(map(str, v)))
    elif len(rows) and answers.all():
        labels = rows["label"]
    else:
        labels = rows["label"].astype(str)
    return pd.DataFrame(
        {
            "image_path": paths.astype(str).to_numpy(),
            "label": labels.to_numpy(),
            "split": rows["split"].astype(str).to_numpy(),
            "item_id": rows["item_id"].astype(str).to_numpy(),
        }
    )


def columns_of(rows: pd.DataFrame) -> list[str]:
    """The :data:`COLUMNS`, then any column added to ``export_rows``' rows (the extra answer fields' consensus:
    ``core/fields/consensus.with_field_columns``)."""
    return [*COLUMNS, *(c for c in rows.columns if c not in COLUMNS)]


def csv_ready(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every list value as JSON text (a field of several options: ``["blurry", "cropped"]``), which
    ``json.loads`` reads back; CSV has no list type (pandas would write Python's repr)."""
    lists = [c for c in table.columns if table[c].map(lambda v: isinstance(v, list)).any()]
    out = table.copy() if lists else table
    for c in lists:
        out[c] = out[c].map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v)
    return out


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def write_jsonl(rows: pd.DataFrame, path: Path) -> Path:
    """One JSON object per line with the keys of :data:`COLUMNS`."""
    tmp = _tmp_sibling(path)
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in rows.loc[:, columns_of(rows)].to_dict(orient="records"):
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def write_csv(rows: pd.DataFrame, path: Path, classes: Sequence[str] | None = None) -> Path:
    """The :data:`COLUMNS`; with ``classes`` (multi-label) one 0/1 column per class instead of ``label``."""
    tmp = _tmp_sibling(path)
    table = rows.loc[:, columns_of(rows)] if classes is None else indicator_frame(rows, classes)
    csv_ready(table).to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def write_parquet(rows: pd.DataFrame, path: Path, classes: Sequence[str] | None = None) -> Path:
    """Parquet through pyarrow (a clear error when it is not installed); columns as :func:`write_csv`."""
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:  # pragma: no cover - pyarrow ships with the pinned mlflow
        raise RuntimeError("the parquet export needs pyarrow: pip install pyarrow") from exc
    tmp = _tmp_sibling(path)
    table = rows.loc[:, columns_of(rows)] if classes is None else indicator_frame(rows, classes)
    table.to_parquet(tmp, index=False, engine="pyarrow")
    tmp.replace(path)
    return path


def _safe_dir_name(name: str) -> str:
    """A class name as one directory name: path separators and dot-names cannot escape the tree."""
    cleaned = name.replace("/", "_").replace("\\", "_").replace("\x00", "_").strip()
    if cleaned in {"", ".", ".."}:
        raise ValueError(f"class name {name!r} cannot be a directory name")
    return cleaned


def imagefolder_names(labels: Iterable[str]) -> dict[str, str]:
    """Class name -> its ImageFolder folder name (:func:`_safe_dir_name`), refusing two classes that would
    share a folder (``a/b`` and ``a_b``, ``cat`` and ``cat ``): ImageFolder would merge them into one class.

    Raises ValueError naming both classes and the folder.
    """
    names: dict[str, str] = {}
    owner: dict[str, str] = {}
    for label in sorted({str(v) for v in labels}):
        folder = _safe_dir_name(label)
        if folder in owner:
            raise ValueError(
                f"classes {owner[folder]!r} and {label!r} would share the ImageFolder folder {folder!r} "
                "(ImageFolder would merge them): rename one of the two classes, or export jsonl, csv or parquet"
            )
        owner[folder], names[label] = label, folder
    return names


def write_imagefolder(rows: pd.DataFrame, root: Path) -> tuple[int, int]:
    """``root/<split>/<class>/<item_id><ext>``; returns (hard links, copies). Replaces ``root`` whole.

    Raises ValueError, before anything is written, when two classes would share a folder
    (:func:`imagefolder_names`).
    """
    folders = imagefolder_names(rows["label"].astype(str))
    tmp = _tmp_sibling(root)
    tmp.mkdir(parents=True)
    linked = copied = 0
    made: set[Path] = set()
    try:
        for image_path, label, split, item_id in rows.loc[:, list(COLUMNS)].itertuples(index=False):
            source = Path(image_path)
            folder = tmp / _safe_dir_name(split) / folders[str(label)]
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


def export_dataset(
    rows: pd.DataFrame, out_dir: Path, formats: Iterable[str], *, classes: Sequence[str] | None = None
) -> ExportReport:
    """Write the requested formats under ``out_dir`` (see :data:`FILE_NAMES`).

    ``classes`` marks a multi-label export (``rows.label`` holds lists): JSONL keeps the list, CSV and
    Parquet get one 0/1 column per class (named by :func:`indicator_columns`, the mapping written to
    :data:`COLUMN_MAP_NAME`), and ImageFolder is refused.
    """
    chosen = validate_formats(formats, task_type=SINGLE_LABEL if classes is None else MULTI_LABEL)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExportReport(out_dir=out_dir)
    for name in chosen:
        path = out_dir / FILE_NAMES[name]
        if name == "imagefolder":
            report.linked, report.copied = write_imagefolder(rows, path)
        elif name == "jsonl":
            write_jsonl(rows, path)
        else:
            (write_csv if name == "csv" else write_parquet)(rows, path, classes)
        report.paths[name] = path
    if classes is not None and {"csv", "parquet"} & set(chosen):
        mapping = out_dir / COLUMN_MAP_NAME
        tmp = _tmp_sibling(mapping)
        tmp.write_text(json.dumps(indicator_columns(classes), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        tmp.replace(mapping)
        report.paths["label_columns"] = mapping
    return report
