"""The dataset card of a box version: sizes, boxes and images per class and split, box sizes, then the sections
every card closes with. No plot yet (``with_plot`` is not read)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labeling_assets.core.dataset import iterative_stratification as multi_core
from labeling_assets.core.dataset.card import CardInputs, closing_sections, sizes_section
from labeling_assets.core.dataset.splits import SPLITS
from labeling_assets.core.tasks.boxes.votes import answer_boxes

NO_OBJECT_ROW = "(no object)"
SMALL, LARGE = 32.0**2, 96.0**2  # COCO's area buckets, in square pixels


def box_rows(manifest: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """One row per box of the manifest's answers: ``item_id, split, label, width, height`` (pixels)."""
    rows = [
        (item, split, label, x1 - x0, y1 - y0)
        for item, split, answer in zip(manifest["item_id"], manifest["split"].astype(str), manifest["label"], strict=True)
        for label, x0, y0, x1, y1 in answer_boxes(answer, classes)[0]
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["item_id", "split", "label", "width", "height"])


def _cell(boxes: int, images: int) -> str:
    return f"{boxes} ({images})"


def render_box_card(inputs: CardInputs, *, with_plot: bool = True) -> str:
    manifest = inputs.manifest
    classes = [str(c) for c in inputs.expected_classes]
    split_of = manifest["split"].astype(str)
    sizes = {split: int((split_of == split).sum()) for split in SPLITS}
    total = len(manifest)
    boxes = box_rows(manifest, classes)
    per_item = boxes.groupby("item_id").size().reindex(manifest["item_id"], fill_value=0)
    lines = [f"# Dataset card: {inputs.name}", ""]
    lines += [
        f"- **Version**: `{inputs.version}` (sha256 of the sorted item, answer, split manifest)",
        f"- **Previous version**: `{inputs.previous_version}`" if inputs.previous_version else "- **Previous version**: none",
        f"- **Task**: boxes ({len(classes)} classes; an item holds any number of boxes, none = no object); "
        f"{len(boxes)} boxes, {float(per_item.mean()) if total else 0.0:.2f} per item on average",
        f"- **Items**: {total} ({inputs.n_new_items} newly assigned in this version)",
        "- **Split targets**: " + ", ".join(f"{s} {inputs.ratios.get(s, 0.0):.0%}" for s in SPLITS)
        + f" (seed {inputs.seed}); iterative stratification over the classes present on each item, groups kept "
        "whole; assignments are frozen once made",
        *sizes_section(sizes, total),
    ]  # fmt: skip
    lines += ["", "## Boxes per class and split", "", "Boxes (items with at least one); the last row counts items without any box.", ""]
    lines += ["| class | " + " | ".join([*SPLITS, "total"]) + " |", "|---|" + "---|" * (len(SPLITS) + 1)]
    for name in classes:
        mine = boxes[boxes["label"] == name]
        cells = [_cell(int((mine["split"] == s).sum()), mine.loc[mine["split"] == s, "item_id"].nunique()) for s in SPLITS]
        lines.append(f"| {name} | " + " | ".join([*cells, _cell(len(mine), mine["item_id"].nunique())]) + " |")
    empty = per_item.to_numpy() == 0
    cells = [str(int((empty & (split_of == s).to_numpy()).sum())) for s in SPLITS]
    lines.append(f"| {NO_OBJECT_ROW} | " + " | ".join([*cells, str(int(empty.sum()))]) + " |")
    area = (boxes["width"] * boxes["height"]).to_numpy()
    lines += ["", "## Box sizes", "", "| split | boxes | small (< 32²) | medium | large (> 96²) | median w × h (px) |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for split in [*SPLITS, None]:
        keep = np.ones(len(boxes), dtype=bool) if split is None else (boxes["split"] == split).to_numpy()
        a, mine = area[keep], boxes[keep]
        median = f"{mine['width'].median():.1f} × {mine['height'].median():.1f}" if len(mine) else "-"
        lines.append(f"| {split or 'all'} | {len(mine)} | {int((a < SMALL).sum())} | "
                     f"{int(((a >= SMALL) & (a <= LARGE)).sum())} | {int((a > LARGE).sum())} | {median} |")  # fmt: skip
    imbalance = [
        "- No class weights are stored: nothing is resampled, and the detector weighs each image's loss by its "
        "boxes' consensus confidence. Report per-class AP beside mAP.",
    ]
    agreement = (f"mean consensus confidence {inputs.mean_confidence:.3f} (the chance that every box decision on an "
                 "item is right; pairwise box F1: see consensus_labels)" if inputs.mean_confidence is not None
                 else "see consensus_labels (pairwise box F1)")  # fmt: skip
    return "\n".join(lines + [""] + closing_sections(inputs, imbalance, agreement, box_limitations(inputs, boxes))) + "\n"


def box_limitations(inputs: CardInputs, boxes: pd.DataFrame) -> list[str]:
    """Classes without a box or on too few items for every split, classes missing from a split, exclusions,
    split notes, gold items."""
    out: list[str] = []
    classes = [str(c) for c in inputs.expected_classes]
    items = boxes.groupby("label")["item_id"].nunique().reindex(classes, fill_value=0)
    absent = [c for c in classes if items[c] == 0]
    if absent:
        out.append(f"Classes of the project with no box: {', '.join(absent)}.")
    rare = items[(items > 0) & (items < multi_core.MIN_POSITIVES_FOR_ALL_SPLITS)]
    if len(rare):
        out.append(f"Classes on fewer than {multi_core.MIN_POSITIVES_FOR_ALL_SPLITS} items cannot appear in every "
                   "split: " + ", ".join(f"{c} ({int(n)})" for c, n in rare.items()) + ".")  # fmt: skip
    held = boxes.groupby("item_id")["label"].agg(lambda labels: sorted(set(labels)))
    present = pd.Series([held.get(i, []) for i in inputs.manifest["item_id"]], index=inputs.manifest.index, dtype=object)
    missing = multi_core.labels_missing_from_splits(inputs.manifest.assign(label=present), classes, SPLITS)
    missing = missing[missing["positives"] >= multi_core.MIN_POSITIVES_FOR_ALL_SPLITS]
    if len(missing):
        out.append("Classes on no item of a split although they have enough items (no test AP for them there): "
                   + ", ".join(f"{r['label']} not in {r['split']}" for _, r in missing.iterrows()) + ".")  # fmt: skip
    out.extend(f"{n} items with a consensus label are left out: {reason}." for reason, n in inputs.excluded.items() if n)
    out.extend(note[0].upper() + note[1:] + ("" if note.endswith(".") else ".") for note in inputs.notes if note)
    if inputs.n_gold_items:
        out.append(f"{inputs.n_gold_items} items are gold (expert) items; their boxes here are the consensus "
                   "(box_em lets gold decide its items' clusters, majority and wbf do not).")  # fmt: skip
    return out or ["None detected."]
