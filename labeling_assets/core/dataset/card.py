"""The dataset card: a Markdown page that says what a dataset version holds and what it does not.

Pure logic (no Dagster). The card documents the class imbalance (counts, ratio, the class weights a
trainer may use); it never corrects it: nothing is resampled or dropped here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from labeling_assets.core.consensus.agreement import fleiss_kappa_from_annotations
from labeling_assets.core.dataset.split_checks import (
    classes_missing_from_splits,
    distribution,
    imbalance_ratio,
)
from labeling_assets.core.dataset.splits import (
    MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS,
    SPLITS,
    is_single_label,
    normalize_label,
)
from labeling_assets.core.images import markdown_image
from labeling_assets.core.reporting.plots import bar_png


@dataclass
class CardInputs:
    """Everything the card reports. ``manifest`` has item_id, label, split (one row per item)."""

    name: str
    version: str
    manifest: pd.DataFrame
    class_weights: Mapping[str, float]
    ratios: Mapping[str, float]
    seed: int
    previous_version: str | None = None
    n_new_items: int = 0
    n_annotators: int = 0
    n_annotations: int = 0
    fleiss_kappa: float | None = None
    mean_agreement: float | None = None
    mean_confidence: float | None = None
    label_sources: Mapping[str, int] = field(default_factory=dict)
    n_gold_items: int = 0
    expected_classes: Sequence[str] = ()
    excluded: Mapping[str, int] = field(default_factory=dict)  # reason -> items left out
    notes: Sequence[str] = ()  # known limitations from the split assignment
    # class_list_versions rows, oldest first (version, classes, added, removed, reason, changed_at, votes_retracted)
    class_list_history: Sequence[Mapping[str, Any]] = ()
    departures: Mapping[str, int] = field(default_factory=dict)  # why items of the previous version left
    # The newest consensus_choices row: the method consensus_labels used, why, its bake-off on gold (or None).
    consensus_choice: Mapping[str, Any] | None = None
    # Near-duplicate groups (perceptual hash within a Hamming distance): item_id -> group key; -1 = off.
    near_duplicates: Mapping[str, str] = field(default_factory=dict)
    near_duplicate_distance: int = -1


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _table(frame: pd.DataFrame, index_name: str) -> str:
    header = [index_name, *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():
        lines.append("| " + " | ".join([str(index), *(str(v) for v in row.tolist())]) + " |")
    return "\n".join(lines)


def distribution_plot(manifest: pd.DataFrame) -> bytes:
    """Grouped bars: items per class in each split (PNG)."""
    table = distribution(manifest)
    series = {split: {str(c): float(n) for c, n in table[split].items()} for split in SPLITS}
    return bar_png(series, title="Items per class and split", ylabel="items")


def limitations(inputs: CardInputs) -> list[str]:
    """Known limitations in plain words: imbalance, rare or missing classes, exclusions, split notes."""
    out: list[str] = []
    manifest = inputs.manifest
    counts = manifest["label"].astype(str).value_counts()
    if len(counts) > 1:
        ratio = imbalance_ratio(manifest["label"])
        if ratio > 1.5:
            out.append(
                f"Classes are imbalanced (largest/smallest = {ratio:.1f}: {counts.index[0]} has "
                f"{int(counts.iloc[0])} items, {counts.index[-1]} has {int(counts.iloc[-1])}). This dataset "
                "is not resampled; use the class weights or a weighted sampler when training, and "
                "macro-averaged metrics when evaluating."
            )
    absent = [c for c in inputs.expected_classes if c not in counts.index]
    if absent:
        out.append(f"Classes of the project with no labeled item: {', '.join(absent)}.")
    unexpected = [c for c in counts.index if inputs.expected_classes and c not in inputs.expected_classes]
    if unexpected:
        out.append(f"Labels outside the project class list: {', '.join(unexpected)}.")
    rare = counts[counts < MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS]
    if len(rare):
        out.append(
            f"Classes with fewer than {MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS} items cannot appear in every "
            "split: " + ", ".join(f"{c} ({n})" for c, n in rare.items()) + "."
        )
    missing = classes_missing_from_splits(manifest)
    if len(missing):
        out.append(
            "Classes absent from a split although they have enough items: "
            + ", ".join(f"{r['class']} not in {r['split']}" for _, r in missing.iterrows())
            + ". ImageFolder exports of that split then number the classes differently; map by name."
        )
    for reason, n in inputs.excluded.items():
        if n:
            out.append(f"{n} items with a consensus label are left out: {reason}.")
    out.extend(
        note[0].upper() + note[1:] + ("" if note.endswith(".") else ".") for note in inputs.notes if note
    )
    if inputs.n_gold_items:
        out.append(
            f"{inputs.n_gold_items} items are gold (expert) items; their labels here are the consensus: "
            "the Dawid-Skene methods clamp a gold item to its gold answer, majority and CROWDLAB do not."
        )
    if not out:
        out.append("None detected.")
    return out


def consensus_choice_lines(choice: Mapping[str, Any] | None) -> list[str]:
    """The consensus method behind the newest labels and the bake-off on gold that chose it (if one ran)."""
    if choice is None:
        return []
    lines = [f"- **Consensus method** (newest consensus run): {choice['method']}; {choice['reason']}"]
    for row in choice.get("scoreboard") or []:
        lines.append(
            f"  - {row['method']}: {row['accuracy']:.1%} on {row['n_gold']} gold items, cross-fitted "
            f"(95% CI {row['ci_low']:.1%}-{row['ci_high']:.1%}){' (used)' if row['chosen'] else ''}"
        )
    return lines


def render_card(inputs: CardInputs, *, with_plot: bool = True) -> str:
    """The card as Markdown (with the distribution plot inline as a data-URI image)."""
    manifest = inputs.manifest
    table = distribution(manifest)
    sizes = {split: int(table[split].sum()) for split in SPLITS}
    total = int(table["total"].sum())
    lines = [f"# Dataset card: {inputs.name}", ""]
    lines += [
        f"- **Version**: `{inputs.version}` (sha256 of the sorted item, label, split manifest)",
        f"- **Previous version**: `{inputs.previous_version}`"
        if inputs.previous_version
        else "- **Previous version**: none",
        f"- **Items**: {total} ({inputs.n_new_items} newly assigned in this version)",
        "- **Split targets**: "
        + ", ".join(f"{s} {inputs.ratios.get(s, 0.0):.0%}" for s in SPLITS)
        + f" (seed {inputs.seed}); assignments are frozen once made",
        "",
        "## Sizes per split",
        "",
        "| split | items | share |",
        "|---|---|---|",
    ]
    for split in SPLITS:
        lines.append(
            f"| {split} | {sizes[split]} | {sizes[split] / total:.1%} |" if total else f"| {split} | 0 | - |"
        )
    lines += ["", "## Class distribution per split", ""]
    shown = table.copy()
    shown["share"] = (shown["total"] / max(total, 1)).map(lambda v: f"{v:.1%}")
    shown["class weight"] = [_fmt(inputs.class_weights.get(str(c))) for c in shown.index]
    lines.append(_table(shown, "class"))
    if with_plot and total:
        lines += ["", markdown_image(distribution_plot(manifest), alt="items per class and split")]
    ratio = imbalance_ratio(manifest["label"]) if total else float("nan")
    lines += [
        "",
        "## Imbalance",
        "",
        f"- **Imbalance ratio** (largest / smallest class): {_fmt(ratio, 2)}",
        "- **Class weights** (`total / (n_classes * count)` over the train split) are stored with this "
        "version, together with per-item sampler weights; the data itself is not rebalanced.",
        "",
        "## Labels",
        "",
        f"- **Annotators**: {inputs.n_annotators} ({inputs.n_annotations} current annotations on these items)",
        f"- **Agreement**: Fleiss' kappa {_fmt(inputs.fleiss_kappa)}, mean per-item agreement "
        f"{_fmt(inputs.mean_agreement)}, mean consensus confidence {_fmt(inputs.mean_confidence)}",
        "- **Label sources** (consensus method: items): "
        + (", ".join(f"{k}: {v}" for k, v in sorted(inputs.label_sources.items())) or "none"),
        *consensus_choice_lines(inputs.consensus_choice),
        "",
    ]
    lines += class_list_section(inputs)
    lines += near_duplicate_section(inputs)
    lines += ["## Known limitations", ""]
    lines += [f"- {text}" for text in limitations(inputs)]
    return "\n".join(lines) + "\n"


def class_list_section(inputs: CardInputs) -> list[str]:
    """The class list this version was built under, its recorded changes, and the items that left."""
    lines = ["", "## Class list", ""]
    history = list(inputs.class_list_history)
    if history:
        newest = history[-1]
        lines.append(f"- **Class list version** {newest['version']}: {', '.join(map(str, newest['classes']))}")
    else:
        lines.append(f"- **Classes**: {', '.join(map(str, inputs.expected_classes)) or 'n/a'} (no recorded version)")
    changes = history[1:]  # the first version is where the list started, not a change
    if changes:
        lines += ["", "| version | changed | added | removed | votes retracted | reason |", "|---|---|---|---|---|---|"]
        for row in changes:
            when = row["changed_at"].strftime("%Y-%m-%d %H:%M") if hasattr(row["changed_at"], "strftime") else ""
            reason = str(row["reason"]).replace("|", "/")
            lines.append(
                f"| {row['version']} | {when} | {', '.join(map(str, row['added'])) or '-'} | "
                f"{', '.join(map(str, row['removed'])) or '-'} | {row.get('votes_retracted', 0)} | {reason} |"
            )
        lines += ["", "Votes for a removed class no longer count (their annotations stay in the log); items "
                  "left with too few live votes lose their consensus and this dataset."]
    if inputs.departures:
        lines += ["", "- **Left since the previous version**: "
                  + ", ".join(f"{n} ({reason})" for reason, n in inputs.departures.items())]
    return [*lines, ""]


def near_duplicate_section(inputs: CardInputs) -> list[str]:
    """How many near-duplicate groups the splits kept together, and the largest ones."""
    if inputs.near_duplicate_distance < 0:
        return ["## Near-duplicate groups", "", "- Off (no perceptual-hash grouping for this version).", ""]
    sizes = pd.Series(list(inputs.near_duplicates.values()), dtype=object).value_counts()
    lines = [
        "## Near-duplicate groups",
        "",
        f"- **Groups**: {len(sizes)} ({int(sizes.sum()) if len(sizes) else 0} items), perceptual hashes within "
        f"{inputs.near_duplicate_distance} bits of 64; each group sits in one split (with the path-pattern groups)",
    ]
    if len(sizes):
        split_of = inputs.manifest.set_index("item_id")["split"]
        lines += ["", "| group | items | split |", "|---|---|---|"]
        for key, n in sizes.head(10).items():
            members = [i for i, g in inputs.near_duplicates.items() if g == key]
            splits = sorted(set(split_of.reindex(members).dropna().astype(str)))
            lines.append(f"| `{key}` | {n} | {', '.join(splits)} |")
    return [*lines, ""]


def annotation_summary(annotations: pd.DataFrame) -> tuple[int, int, float | None]:
    """(labelers, annotations, Fleiss' kappa) over current annotations (``item_id, labeler_id, label``).

    Answers that are not exactly one class do not enter a single-label kappa.
    """
    if annotations.empty:
        return 0, 0, None
    labels = [normalize_label(v) if is_single_label(v) else None for v in annotations["label"]]
    frame = annotations.assign(label=pd.Series(labels, index=annotations.index, dtype=object)).dropna(subset=["label"])
    kappa = fleiss_kappa_from_annotations(frame).kappa if not frame.empty else float("nan")
    return int(frame["labeler_id"].nunique()), len(frame), (None if pd.isna(kappa) else float(kappa))
