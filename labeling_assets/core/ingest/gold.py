"""The hidden gold set: a ``filename,label`` file naming source files whose true class is known.

Gold labels score labelers, so a wrong one does harm silently: an entry whose label is not in the class list
is refused (never stored as gold; a gold label it set before is cleared), and an entry that names no usable
image (no such file, a file gone or quarantined) is reported. Both come back as :class:`GoldProblem` rows.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from labeling_assets.core.store.schema import LabelStore, items_table, source_files_table

if TYPE_CHECKING:
    from labeling_assets.core.tasks.kind import TaskKind

UNKNOWN_CLASS = "unknown_class"
NO_IMAGE = "no_image"


@dataclass(frozen=True)
class GoldProblem:
    path: str
    problem: str  # unknown_class | no_image
    detail: str


@dataclass
class GoldResult:
    gold_items: int = 0  # active items with a gold label, after this run
    problems: list[GoldProblem] = field(default_factory=list)


def load_label_csv(path: str | Path) -> dict[str, str]:
    """``filename,label`` CSV (header required) -> {relative path: label}."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"filename", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected a CSV with columns 'filename,label', got {reader.fieldnames}")
        return {row["filename"]: row["label"] for row in reader}


def apply_gold_labels(
    store: LabelStore,
    source: str,
    gold: Mapping[str, str],
    kind: TaskKind,
    classes: Sequence[str] | None = None,
    *,
    allow_empty: bool = True,
) -> GoldResult:
    """Set ``gold_label`` on the active items the gold file names, when the kind reads the label as an answer of
    ``classes`` (``kind.parse_gold``: a class name; a label set as a JSON list, ``[]`` = none of these, refused
    unless ``allow_empty``), stored as the kind stores an annotation.

    ``classes`` None skips the class check (callers without a project). Returns how many active items are gold
    and every entry that was refused or names no usable image.
    """
    result = GoldResult()
    with store.begin() as conn:
        rows = {
            r.path: r
            for r in conn.execute(
                sa.select(
                    source_files_table.c.path,
                    source_files_table.c.item_id,
                    source_files_table.c.outcome,
                    source_files_table.c.reason,
                    items_table.c.status,
                    items_table.c.gold_label,
                )
                .select_from(source_files_table.outerjoin(items_table, items_table.c.item_id == source_files_table.c.item_id))
                .where(source_files_table.c.source == source, source_files_table.c.path.in_(list(gold)))
            )
        }
        for path in sorted(gold):
            row = rows.get(path)
            label, refused = kind.parse_gold(gold[path], classes, allow_empty)
            if refused is not None:
                result.problems.append(GoldProblem(path, UNKNOWN_CLASS, refused))
                if row is not None and row.item_id and row.gold_label == label:
                    # A label refused now must not keep scoring labelers from an earlier run.
                    conn.execute(items_table.update().where(items_table.c.item_id == row.item_id).values(gold_label=None))
                continue
            if row is None or row.item_id is None or row.status != "active":
                result.problems.append(GoldProblem(path, NO_IMAGE, _why_no_image(row)))
                continue
            conn.execute(items_table.update().where(items_table.c.item_id == row.item_id).values(gold_label=label))
        result.gold_items = int(
            conn.execute(
                sa.select(sa.func.count()).select_from(items_table).where(
                    items_table.c.gold_label.is_not(None), items_table.c.status == "active"
                )
            ).scalar()
            or 0
        )
    return result


def _why_no_image(row: Any) -> str:
    if row is None:
        return "no such image file in the source"
    if row.outcome == "missing":
        return "the file is gone from the source"
    if row.item_id is None or row.status == "quarantined":
        return f"the file was quarantined ({row.reason or 'unknown reason'})"
    return f"its item is {row.status}"
