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
from labeling_assets.core.dataset import iterative_stratification as multi_core
from labeling_assets.core.dataset.diff import schema_changes_section
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
from labeling_assets.core.display import md_code, md_text
from labeling_assets.core.images import markdown_image
from labeling_assets.core.label_sets import SINGLE_LABEL
from labeling_assets.core.reporting.plots import bar_png, heatmap_png
from labeling_assets.core.tasks.registry import task_kind


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
    # Recorded class renames, merges and splits (class_changes.schema_change_report), oldest first.
    class_schema_changes: Sequence[Mapping[str, Any]] = ()
    # The newest consensus_choices row: the method consensus_labels used, why, its bake-off on gold (or None).
    consensus_choice: Mapping[str, Any] | None = None
    # Near-duplicate groups (perceptual hash within a Hamming distance): item_id -> group key; -1 = off.
    near_duplicates: Mapping[str, str] = field(default_factory=dict)
    near_duplicate_distance: int = -1
    held_out: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # item_id -> reason, frozen neighbours
    # A multi-label version: the manifest's labels are sets; the card shows per-label prevalence and co-occurrence,
    # and ``class_weights`` holds the per-class pos_weight.
    task_type: str = SINGLE_LABEL


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _table(frame: pd.DataFrame, index_name: str) -> str:
    header = [index_name, *map(md_text, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():  # class names: any text a person chose
        lines.append("| " + " | ".join([md_text(index), *(str(v) for v in row.tolist())]) + " |")
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
    """The card as Markdown (with the distribution plot inline as a data-URI image), as the project's kind of task
    writes it (:func:`render_class_card`, :func:`render_label_set_card`)."""
    card: str = task_kind(inputs.task_type).dataset_card(inputs, with_plot=with_plot)
    return card


def render_class_card(inputs: CardInputs, *, with_plot: bool = True) -> str:
    """The card of a single-label version: sizes, class distribution per split, weights, limitations."""
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
        *sizes_section(sizes, total),
    ]
    lines += ["", "## Class distribution per split", ""]
    shown = table.copy()
    shown["share"] = (shown["total"] / max(total, 1)).map(lambda v: f"{v:.1%}")
    shown["class weight"] = [_fmt(inputs.class_weights.get(str(c))) for c in shown.index]
    lines.append(_table(shown, "class"))
    if with_plot and total:
        lines += ["", markdown_image(distribution_plot(manifest), alt="items per class and split")]
    ratio = imbalance_ratio(manifest["label"]) if total else float("nan")
    imbalance = [
        f"- **Imbalance ratio** (largest / smallest class): {_fmt(ratio, 2)}",
        "- **Class weights** (`total / (n_classes * count)` over the train split) are stored with this "
        "version, together with per-item sampler weights; the data itself is not rebalanced.",
    ]
    agreement = (
        f"Fleiss' kappa {_fmt(inputs.fleiss_kappa)}, mean per-item agreement {_fmt(inputs.mean_agreement)}, "
        f"mean consensus confidence {_fmt(inputs.mean_confidence)}"
    )
    closing = closing_sections(inputs, imbalance, agreement, limitations(inputs))
    return "\n".join([*lines, "", *closing]) + "\n"


def sizes_section(sizes: dict[str, int], total: int) -> list[str]:
    """The items and share of each split (a blank line first), whatever the kind."""
    lines = ["", "## Sizes per split", "", "| split | items | share |", "|---|---|---|"]
    for split in SPLITS:
        lines.append(f"| {split} | {sizes[split]} | {sizes[split] / total:.1%} |" if total else f"| {split} | 0 | - |")
    return lines


def closing_sections(
    inputs: CardInputs, imbalance: list[str], agreement: str, known_limitations: list[str]
) -> list[str]:
    """A card's last sections, whatever the kind: how imbalance is handled, who labeled (``agreement``: how well
    they agreed), the class list, near duplicates, the known limitations."""
    lines = [
        "## Imbalance",
        "",
        *imbalance,
        "",
        "## Labels",
        "",
        f"- **Annotators**: {inputs.n_annotators} ({inputs.n_annotations} current annotations on these items)",
        f"- **Agreement**: {agreement}",
        "- **Label sources** (consensus method: items): "
        + (", ".join(f"{k}: {v}" for k, v in sorted(inputs.label_sources.items())) or "none"),
        *consensus_choice_lines(inputs.consensus_choice),
        "",
    ]
    lines += class_list_section(inputs)
    lines += near_duplicate_section(inputs)
    lines += ["## Known limitations", ""]
    lines += [f"- {text}" for text in known_limitations]
    return lines


def class_list_section(inputs: CardInputs) -> list[str]:
    """The class list this version was built under, its recorded changes, and the items that left."""
    lines = ["", "## Class list", ""]
    history = list(inputs.class_list_history)
    if history:
        newest = history[-1]
        lines.append(f"- **Class list version** {newest['version']}: {', '.join(map(md_text, newest['classes']))}")
    else:
        named = ", ".join(map(md_text, inputs.expected_classes)) or "n/a"
        lines.append(f"- **Classes**: {named} (no recorded version)")
    changes = history[1:]  # the first version is where the list started, not a change
    if changes:
        lines += ["", "| version | changed | added | removed | votes retracted | reason |", "|---|---|---|---|---|---|"]
        for row in changes:
            when = row["changed_at"].strftime("%Y-%m-%d %H:%M") if hasattr(row["changed_at"], "strftime") else ""
            reason = md_text(str(row["reason"]), 300)
            lines.append(
                f"| {row['version']} | {when} | {', '.join(map(md_text, row['added'])) or '-'} | "
                f"{', '.join(map(md_text, row['removed'])) or '-'} | {row.get('votes_retracted', 0)} | {reason} |"
            )
        lines += ["", "Votes for a removed class no longer count (their annotations stay in the log; a renamed or "
                  "merged class's votes read as the class it became); items left with too few live votes lose their "
                  "consensus and this dataset."]
    if inputs.class_schema_changes:
        lines += ["", *schema_changes_section(inputs.class_schema_changes)]
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
            lines.append(f"| {md_code(key)} | {n} | {', '.join(splits)} |")
    if inputs.held_out:
        lines += ["", f"Held out of this version ({len(inputs.held_out)} items, kept in the store; each is placed once "
                  "it can be, for instance when one of its frozen near-duplicates leaves the dataset):", ""]
        for item, why in sorted(inputs.held_out.items())[:10]:
            near = ", ".join(f"`{n['item_id'][:12]}` ({n['split']})" for n in why.get("frozen_near_duplicates", []))
            lines.append(f"- `{item[:12]}`: {why.get('reason', '')}: {near}")
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


# --- multi-label -----------------------------------------------------------------------------------


def _pct(count: int, size: int) -> str:
    return f"{count} ({count / size:.1%})" if size else f"{count} (-)"


def prevalence_plot(manifest: pd.DataFrame, classes: Sequence[str]) -> bytes:
    """Grouped bars: each label's prevalence (share of the split's items) in each split (PNG)."""
    table = multi_core.prevalence_table(manifest, classes)
    sizes = manifest["split"].astype(str).value_counts()
    series = {
        split: {str(label): float(n) / max(int(sizes.get(split, 0)), 1) for label, n in table[split].items()}
        for split in SPLITS
    }
    return bar_png(series, title="Label prevalence per split", ylabel="share of items", size=(7.0, 3.2))


def cooccurrence_plot(manifest: pd.DataFrame, classes: Sequence[str]) -> bytes:
    """Heat map of the whole set's co-occurrence counts (diagonal: positives per label)."""
    matrix = multi_core.cooccurrence(manifest, classes).to_numpy()
    return heatmap_png(matrix, list(classes), list(classes), title="Items with both labels (all splits)")


def label_set_limitations(inputs: CardInputs) -> list[str]:
    """Known limitations of a multi-label version: imbalance, absent/rare labels, labels missing from
    val or test, exclusions, split notes, gold items."""
    out: list[str] = []
    classes = list(inputs.expected_classes)
    table = multi_core.prevalence_table(inputs.manifest, classes).drop(index=multi_core.EMPTY_SET_ROW)
    positives = table["total"]
    present = positives[positives > 0].sort_values(ascending=False)
    if len(present) > 1 and present.iloc[0] / present.iloc[-1] > 1.5:
        out.append(
            f"Labels are imbalanced (most/least frequent = {present.iloc[0] / present.iloc[-1]:.1f}: "
            f"{present.index[0]} has {int(present.iloc[0])} positives, {present.index[-1]} has "
            f"{int(present.iloc[-1])}). Nothing is resampled; train with the per-class pos_weight and report "
            "macro-averaged metrics."
        )
    absent = [str(c) for c in positives.index if positives[c] == 0]
    if absent:
        out.append(f"Labels with no positive item: {', '.join(absent)}.")
    rare = present[present < multi_core.MIN_POSITIVES_FOR_ALL_SPLITS]
    if len(rare):
        out.append(
            f"Labels with fewer than {multi_core.MIN_POSITIVES_FOR_ALL_SPLITS} positives cannot appear in every "
            "split: " + ", ".join(f"{c} ({int(n)})" for c, n in rare.items()) + "."
        )
    missing = multi_core.labels_missing_from_splits(inputs.manifest, classes)
    if len(missing):
        out.append(
            "Labels without a positive in val or test (no threshold can be chosen on val, no per-label test "
            "metric): " + ", ".join(f"{r['label']} not in {r['split']}" for _, r in missing.iterrows()) + "."
        )
    for reason, n in inputs.excluded.items():
        if n:
            out.append(f"{n} items with a consensus label are left out: {reason}.")
    out.extend(note[0].upper() + note[1:] + ("" if note.endswith(".") else ".") for note in inputs.notes if note)
    if inputs.n_gold_items:
        out.append(f"{inputs.n_gold_items} items are gold (expert) items; their labels here are the consensus.")
    return out or ["None detected."]


def render_label_set_card(inputs: CardInputs, *, with_plot: bool = True) -> str:
    """The card of a multi-label version: sizes, per-label prevalence and co-occurrence per split, the
    per-class pos_weight, labels, class list, near-duplicates, limitations."""
    manifest = inputs.manifest
    classes = list(inputs.expected_classes)
    split_of = manifest["split"].astype(str)
    sizes = {split: int((split_of == split).sum()) for split in SPLITS}
    total = len(manifest)
    table = multi_core.prevalence_table(manifest, classes)
    cardinality = float(multi_core.indicator_of(manifest, classes).sum(axis=1).mean()) if total else float("nan")
    lines = [f"# Dataset card: {inputs.name}", ""]
    lines += [
        f"- **Version**: `{inputs.version}` (sha256 of the sorted item, label set, split manifest)",
        f"- **Previous version**: `{inputs.previous_version}`" if inputs.previous_version else "- **Previous version**: none",
        f"- **Task**: multi-label ({len(classes)} classes; a label is a set of classes, the empty set = none "
        f"of these); {_fmt(cardinality, 2)} labels per item on average",
        f"- **Items**: {total} ({inputs.n_new_items} newly assigned in this version)",
        "- **Split targets**: "
        + ", ".join(f"{s} {inputs.ratios.get(s, 0.0):.0%}" for s in SPLITS)
        + f" (seed {inputs.seed}); iterative stratification over the labels (Sechidis et al. 2011), groups kept "
        "whole; assignments are frozen once made",
        *sizes_section(sizes, total),
    ]
    lines += ["", "## Label prevalence per split", "", "Positive items (share of the split's items).", ""]
    lines += ["| label | " + " | ".join([*SPLITS, "total"]) + " | pos_weight |", "|---|" + "---|" * (len(SPLITS) + 2)]
    counts = {column: table[column].astype(int).tolist() for column in [*SPLITS, "total"]}
    for k, label in enumerate(map(str, table.index)):
        cells = [_pct(counts[s][k], sizes[s]) for s in SPLITS] + [_pct(counts["total"][k], total)]
        weight = _fmt(inputs.class_weights.get(label), 2) if label != multi_core.EMPTY_SET_ROW else "-"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {weight} |")
    if with_plot and total:
        lines += ["", markdown_image(prevalence_plot(manifest, classes), alt="label prevalence per split")]
    lines += ["", "## Co-occurrence", "", "Items carrying both labels; the diagonal counts the label's positives.", ""]
    for scope in [*SPLITS, None]:
        matrix = multi_core.cooccurrence(manifest, classes, scope)
        lines += [f"### {scope or 'all splits'}", "", _table(matrix, "label"), ""]
    if with_plot and total:
        lines += [markdown_image(cooccurrence_plot(manifest, classes), alt="label co-occurrence"), ""]
    imbalance = [
        "- **pos_weight** per class = negatives / positives over the train split (a class without a positive "
        "in train counts one), for `BCEWithLogitsLoss(pos_weight=...)`; stored with this version. The data "
        "itself is not rebalanced, and no per-item sampler weights are stored (one item carries several labels).",
    ]
    agreement = (
        f"mean per-item agreement {_fmt(inputs.mean_agreement)}, mean consensus confidence "
        f"{_fmt(inputs.mean_confidence)} (per-class agreement: see consensus_labels)"
    )
    return "\n".join(lines + closing_sections(inputs, imbalance, agreement, label_set_limitations(inputs))) + "\n"


def label_set_annotation_summary(annotations: pd.DataFrame) -> tuple[int, int]:
    """(labelers, annotations) over current multi-label annotations that are lists (label sets)."""
    if annotations.empty:
        return 0, 0
    sets = annotations.loc[annotations["label"].map(lambda v: isinstance(v, list | tuple)).astype(bool)]
    return int(sets["labeler_id"].nunique()), len(sets)
