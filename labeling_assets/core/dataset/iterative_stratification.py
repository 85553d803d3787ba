"""Multi-label splits: iterative stratification (Sechidis, Tsoumakas & Vlahavas 2011), group-aware and frozen.

Pure logic (numpy/pandas, no Dagster). The same rules as the single-label :mod:`.splits`, with a label set
per item instead of one class:

- The unit of assignment is a connected component of items and group keys (path pattern or near-duplicate
  group, as :func:`.build.build_dataset` forms them); a unit's label counts are the sums over its items.
- Frozen: an item that already has a split keeps it, new members of its unit follow it. The targets count
  the frozen items, so new units fill what the frozen ones left.
- Free units are placed by the iterative algorithm: take the label with the fewest positives still
  unplaced (rare labels first, while every split still has room for them); put each unit carrying it
  (largest first, then in seeded random order) into the split that most lacks that label, ties to the split
  that most lacks items, then at random; update every label's remaining demand by the unit's counts.
  The empty set ("none of these") counts as one more label, so its share is stratified too.
- Afterwards every label with at least :data:`MIN_POSITIVES_FOR_ALL_SPLITS` positive items is put in every
  split (positive ratio) by moving a small new unit over when that takes no such label out of the donor;
  where frozen items or groups make that impossible the result says so in ``notes``.

The ``iterative-stratification`` package implements the same algorithm for single items; it knows neither
groups nor frozen assignments, hence this implementation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.dataset.placement import Bools, Floats, Ints
from labeling_assets.core.dataset.splits import (
    MANIFEST_FORMAT,
    SPLITS,
    SplitAssignment,
    SplitRatios,
    follow_frozen_units,
    frozen_split_codes,
    group_codes,
    group_names_of,
    unit_components,
)
from labeling_assets.core.dataset.splits import manifest_version as _hash_rows
from labeling_assets.core.label_sets import MULTI_LABEL, label_set, to_indicator

# A label needs this many positive items before it can be asked to sit in each of train, val and test.
MIN_POSITIVES_FOR_ALL_SPLITS = 3
# Row name of the empty set in prevalence tables (the Label Studio "None of these" choice).
EMPTY_SET_ROW = "(none of these)"


# --- the algorithm on unit count matrices ---------------------------------------------------------


def iterative_stratification(
    unit_counts: Ints,
    unit_sizes: Ints,
    fixed: Ints,
    ratios: Floats,
    rng: np.random.Generator,
) -> Ints:
    """Split code per unit by iterative stratification.

    Args:
        unit_counts: ``(U, L)`` positive items per unit and label (include a column for the empty set to
            stratify it too).
        unit_sizes: ``(U,)`` items per unit.
        fixed: ``(U,)`` split code of units already placed (frozen), -1 for free units.
        ratios: ``(S,)`` target fractions; a zero-ratio split receives nothing.
        rng: tie-breaks and the order of equal-sized units.

    Returns:
        ``(U,)`` split codes; fixed units keep theirs.
    """
    counts = np.asarray(unit_counts, dtype=np.int64)
    sizes = np.asarray(unit_sizes, dtype=np.int64)
    split_of = np.asarray(fixed, dtype=np.int64).copy()
    n_units, n_labels = counts.shape
    n_splits = len(ratios)
    active = np.asarray(ratios) > 0
    placed = split_of >= 0
    # Demand left per split: the targets over the whole set (frozen items included) minus what is placed.
    label_demand = ratios[:, None] * counts.sum(axis=0)[None, :]
    size_demand = ratios * float(sizes.sum())
    for s in range(n_splits):
        in_s = split_of == s
        label_demand[s] -= counts[in_s].sum(axis=0)
        size_demand[s] -= float(sizes[in_s].sum())
    free = ~placed
    # One seeded permutation fixes the order among equal-sized units (independent of the input row order,
    # which the caller already made canonical by sorting item ids).
    tiebreak = rng.permutation(n_units)
    # Plain Python lists in the per-unit loop: a handful of scalar operations per unit, where numpy's per-call
    # overhead would dominate (as in placement.py). A unit's counts as its nonzero (label, count) pairs.
    demand_rows: list[list[float]] = label_demand.tolist()
    size_left: list[float] = size_demand.tolist()
    active_splits = [s for s in range(n_splits) if active[s]]
    unit_rows, unit_labels = np.nonzero(counts)
    pair_labels, pair_counts = unit_labels.tolist(), counts[unit_rows, unit_labels].tolist()
    pair_start = np.searchsorted(unit_rows, np.arange(n_units + 1)).tolist()
    sizes_list = sizes.tolist()
    while free.any():
        remaining = counts[free].sum(axis=0)
        wanted = np.flatnonzero(remaining > 0)
        if not len(wanted):
            # Units with no positive at all (only possible without an empty-set column): fill by size.
            for u in np.flatnonzero(free)[np.lexsort((tiebreak[free], -sizes[free]))].tolist():
                best = _best_split(size_left, size_left, active_splits, rng)
                split_of[u] = best
                size_left[best] -= sizes_list[u]
            break
        fewest = remaining[wanted].min()
        label = int(rng.choice(wanted[remaining[wanted] == fewest]))
        carriers = np.flatnonzero(free & (counts[:, label] > 0))
        order = carriers[np.lexsort((tiebreak[carriers], -sizes[carriers]))]  # largest units first
        chosen = []
        for u in order.tolist():
            best = _best_split([row[label] for row in demand_rows], size_left, active_splits, rng)
            chosen.append(best)
            row = demand_rows[best]
            for j in range(pair_start[u], pair_start[u + 1]):
                row[pair_labels[j]] -= pair_counts[j]
            size_left[best] -= sizes_list[u]
        split_of[order] = chosen
        free[carriers] = False
    return split_of


def _best_split(
    demand: list[float], size_demand: list[float], active: list[int], rng: np.random.Generator
) -> int:
    """The active split with the largest demand; ties to the largest size demand, then at random."""
    top_value = max(demand[s] for s in active)
    top = [s for s in active if demand[s] >= top_value - 1e-9]
    if len(top) > 1:
        second = max(size_demand[s] for s in top)
        top = [s for s in top if size_demand[s] >= second - 1e-9]
    return top[0] if len(top) == 1 else top[int(rng.integers(len(top)))]


def ensure_every_label_everywhere(
    unit_of: Ints,
    indicator: Ints,
    is_new: Bools,
    split_codes: Ints,
    ratios: Floats,
    classes: Sequence[str],
    *,
    min_positives: int = MIN_POSITIVES_FOR_ALL_SPLITS,
) -> list[str]:
    """Move the smallest new unit carrying a label into each split that lacks it (labels with at least
    ``min_positives`` positive items), when the donor keeps a positive of every label that must be
    everywhere; in place on ``split_codes``. Returns notes on what frozen items or groups made impossible."""
    n_splits = len(ratios)
    counts = np.zeros((n_splits, indicator.shape[1]), dtype=np.int64)
    np.add.at(counts, split_codes, indicator)
    totals = counts.sum(axis=0)
    active = np.flatnonzero(ratios > 0)
    must = totals >= max(min_positives, len(active))
    unit_counts = np.zeros((int(unit_of.max()) + 1, indicator.shape[1]), dtype=np.int64)
    np.add.at(unit_counts, unit_of, indicator)
    unit_size = np.bincount(unit_of)
    frozen_units = np.zeros(len(unit_size), dtype=bool)
    frozen_units[unit_of[~is_new]] = True
    unit_split = np.full(len(unit_size), -1, dtype=np.int64)
    unit_split[unit_of] = split_codes
    impossible: list[str] = []
    for label in np.flatnonzero(must):
        for s in active:
            if counts[s, label] > 0:
                continue
            # Donors keep at least one positive of the label themselves.
            candidates = np.flatnonzero(
                (unit_counts[:, label] > 0)
                & ~frozen_units
                & (unit_split >= 0)
                & (counts[np.maximum(unit_split, 0), label] >= unit_counts[:, label] + 1)
            )
            moved = False
            for u in candidates[np.lexsort((candidates, unit_size[candidates]))]:
                donor = int(unit_split[u])
                left = counts[donor] - unit_counts[u]
                if np.any((left == 0) & (unit_counts[u] > 0) & must):
                    continue
                counts[donor] -= unit_counts[u]
                counts[s] += unit_counts[u]
                unit_split[u] = s
                moved = True
                break
            if not moved:
                impossible.append(f"{classes[label]} not in {SPLITS[s]}")
    split_codes[:] = unit_split[unit_of]
    notes = []
    if impossible:
        notes.append(
            "frozen assignments or group sizes keep these labels out of a split although they have "
            f"≥ {min_positives} positive items: " + ", ".join(impossible)
        )
    return notes


# --- on a frame of items ---------------------------------------------------------------------------


def assign_label_set_splits(
    items: pd.DataFrame,
    classes: Sequence[str],
    *,
    existing: Mapping[str, str] | pd.Series | None = None,
    ratios: SplitRatios | None = None,
    seed: int = 0,
) -> SplitAssignment:
    """Assign each item of a multi-label dataset to train/val/test.

    Args:
        items: columns ``item_id``, ``label`` (a list of class names; [] = none of these) and optionally
            ``group_key``. The same item_id may appear more than once (same label set); it is one item.
        classes: the project's classes (a label outside them is an error: filter before).
        existing: item_id → split already assigned (frozen).
        ratios: target fractions (default 70/15/15).
        seed: makes the placement reproducible (independent of the input row order).

    Returns:
        A :class:`.splits.SplitAssignment` whose frame's ``label`` is the sorted list of each item.
    """
    ratios = ratios or SplitRatios()
    rng = np.random.default_rng(seed)
    missing = {"item_id", "label"} - set(items.columns)
    if missing:
        raise ValueError(f"items frame lacks columns {sorted(missing)}")
    if items["item_id"].isna().any():
        raise ValueError(f"{int(items['item_id'].isna().sum())} rows have no item_id")
    row_items, item_ids = pd.factorize(items["item_id"].astype(str), sort=True)
    n = len(item_ids)
    texts = [tuple(label_set(v, classes)) for v in items["label"]]
    first = np.full(n, -1, dtype=np.int64)
    first[row_items[::-1]] = np.arange(len(row_items))[::-1]
    item_text = [texts[i] for i in first.tolist()]
    conflicts = sorted(
        {str(item_ids[r]) for i, r in enumerate(row_items.tolist()) if texts[i] != item_text[r]}
    )
    if conflicts:
        raise ValueError(
            f"{len(conflicts)} content hashes appear with different label sets, e.g. {conflicts[:5]}; "
            "resolve the consensus before splitting"
        )
    sets: list[list[str]] = [list(t) for t in item_text]
    indicator = to_indicator(sets, classes).astype(np.int64)
    empty = (indicator.sum(axis=1) == 0).astype(np.int64)
    row_groups, groups, item_groups = group_codes(items, row_items, n)
    unit_of = unit_components(n, row_items, row_groups, len(groups))
    n_units = int(unit_of.max()) + 1 if n else 0

    split_codes = frozen_split_codes(existing, item_ids)
    is_new = split_codes < 0
    notes = follow_frozen_units(unit_of, split_codes, n_units)
    if n:
        # The empty set is one more column: its share is stratified like a label's.
        columns = np.column_stack([indicator, empty])
        unit_counts = np.zeros((n_units, columns.shape[1]), dtype=np.int64)
        np.add.at(unit_counts, unit_of, columns)
        unit_fixed = np.full(n_units, -1, dtype=np.int64)
        unit_fixed[unit_of[split_codes >= 0]] = split_codes[split_codes >= 0]
        unit_split = iterative_stratification(
            unit_counts, np.bincount(unit_of, minlength=n_units), unit_fixed, ratios.as_array(), rng
        )
        split_codes = unit_split[unit_of]
        notes.extend(
            ensure_every_label_everywhere(unit_of, indicator, is_new, split_codes, ratios.as_array(), classes)
        )
    totals = indicator.sum(axis=0)
    rare = [
        f"{c} ({int(t)})"
        for c, t in zip(classes, totals, strict=True)
        if 0 < t < MIN_POSITIVES_FOR_ALL_SPLITS
    ]
    if rare:
        notes.append(
            f"labels with fewer than {MIN_POSITIVES_FOR_ALL_SPLITS} positive items cannot be in every split: "
            + ", ".join(rare)
        )
    frame = pd.DataFrame(
        {
            "item_id": np.asarray(item_ids, dtype=object),
            "label": pd.Series(sets, dtype=object).to_numpy(),
            "group_key": group_names_of(item_groups, np.asarray(groups, dtype=object)),
            "split": np.asarray(SPLITS, dtype=object)[split_codes] if n else np.array([], dtype=object),
            "is_new": is_new,
        }
    )
    return SplitAssignment(frame=frame, notes=notes)


# --- measures: prevalence, co-occurrence, deviation ------------------------------------------------


def label_text(value: Any) -> str:
    """A label set as canonical JSON text (``["a", "b"]``): what the version hash and diffs compare."""
    return json.dumps(sorted(str(v) for v in value), ensure_ascii=False)


def indicator_of(manifest: pd.DataFrame, classes: Sequence[str]) -> Ints:
    """The manifest's label sets as an ``(n, K)`` 0/1 matrix in ``classes`` order."""
    matrix: Ints = to_indicator(manifest["label"].tolist(), classes).astype(np.int64)
    return matrix


def max_proportion_deviation(indicator: Ints, split_codes: Ints, n_splits: int = len(SPLITS)) -> float:
    """The benchmark's measure: the largest ``|prevalence of label k in split s - prevalence in the whole
    set|`` over labels with a positive and non-empty splits (absolute, in proportion points)."""
    y = np.asarray(indicator, dtype=float)
    codes = np.asarray(split_codes)
    if not len(y):
        return 0.0
    present = y.sum(axis=0) > 0
    overall = y.mean(axis=0)
    worst = 0.0
    for s in range(n_splits):
        rows = codes == s
        if not rows.any():
            continue
        worst = max(worst, float(np.abs(y[rows].mean(axis=0) - overall)[present].max(initial=0.0)))
    return worst


def prevalence_table(manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Positive items per label (rows: classes, then the empty set) and split (columns train/val/test/total)."""
    y = indicator_of(manifest, classes)
    rows = np.column_stack([y, (y.sum(axis=1) == 0).astype(np.int64)])
    split = manifest["split"].astype(str).to_numpy()
    table = pd.DataFrame(
        {s: rows[split == s].sum(axis=0) for s in SPLITS},
        index=pd.Index([*classes, EMPTY_SET_ROW], name="label"),
    )
    table["total"] = table.sum(axis=1)
    return table


def cooccurrence(manifest: pd.DataFrame, classes: Sequence[str], split: str | None = None) -> pd.DataFrame:
    """Items carrying both labels (diagonal: items carrying the label), over one split or all."""
    rows = manifest if split is None else manifest[manifest["split"].astype(str) == split]
    y = indicator_of(rows, classes)
    return pd.DataFrame(y.T @ y, index=list(classes), columns=list(classes))


def prevalence_deviations(manifest: pd.DataFrame, classes: Sequence[str], tolerance: float) -> pd.DataFrame:
    """Per (split, label with a positive): its prevalence in the split vs overall, and whether the gap is
    within ``tolerance + 1 / split size`` (one item's worth, as the single-label class check allows)."""
    table = prevalence_table(manifest, classes)
    total = len(manifest)
    out = []
    for split in SPLITS:
        size = int((manifest["split"].astype(str) == split).sum())
        if size == 0:
            continue
        allowed = tolerance + 1.0 / size
        totals = table["total"].to_numpy(dtype=float)
        for k, count in enumerate(table[split].to_numpy(dtype=float)):
            if totals[k] == 0:
                continue
            label = table.index[k]
            overall = totals[k] / total
            deviation = abs(count / size - overall)
            out.append(
                {
                    "split": split,
                    "label": str(label),
                    "prevalence": count / size,
                    "overall": float(overall),
                    "deviation": float(deviation),
                    "allowed": allowed,
                    "ok": bool(deviation <= allowed + 1e-12),
                }
            )
    return pd.DataFrame(
        out, columns=["split", "label", "prevalence", "overall", "deviation", "allowed", "ok"]
    )


def labels_missing_from_splits(
    manifest: pd.DataFrame, classes: Sequence[str], splits: Sequence[str] = ("val", "test")
) -> pd.DataFrame:
    """Labels with at least one positive that have no positive in one of ``splits``: label, split, positives."""
    table = prevalence_table(manifest, classes).drop(index=EMPTY_SET_ROW)
    totals = table["total"].to_numpy()
    rows = [
        {"label": str(label), "split": split, "positives": int(totals[k])}
        for k, label in enumerate(table.index)
        if totals[k] > 0
        for split in splits
        if table[split].to_numpy()[k] == 0
    ]
    return pd.DataFrame(rows, columns=["label", "split", "positives"])


def label_imbalance_ratio(manifest: pd.DataFrame, classes: Sequence[str]) -> float:
    """Positives of the most frequent label / of the least frequent label with a positive (NaN: none)."""
    positives = indicator_of(manifest, classes).sum(axis=0)
    positives = positives[positives > 0]
    return float(positives.max() / positives.min()) if len(positives) else float("nan")


def pos_weights(train: pd.DataFrame, classes: Sequence[str]) -> dict[str, float]:
    """``negatives / positives`` per class over the train split (``BCEWithLogitsLoss(pos_weight=...)``); a
    class with no positive in train counts as one positive, so the weight stays finite."""
    y = indicator_of(train, classes)
    positives = y.sum(axis=0)
    negatives = len(y) - positives
    return {str(c): float(negatives[k] / max(int(positives[k]), 1)) for k, c in enumerate(classes)}


# --- manifest ---------------------------------------------------------------------------------------


def manifest_version(manifest: pd.DataFrame) -> str:
    """The version hash of a multi-label manifest: the single-label hash over canonical label-set text."""
    return _hash_rows(manifest.assign(label=manifest["label"].map(label_text)))


def manifest_to_json(
    manifest: pd.DataFrame,
    *,
    classes: Sequence[str],
    previous_version: str | None,
    extra: Mapping[str, Any],
    weights: Mapping[str, float],
) -> dict[str, Any]:
    """The stored manifest of a multi-label version: ``label`` holds sorted lists, ``classes`` the column
    order of indicator matrices, ``pos_weight`` the train split's per-class weights (no per-item sampler
    weights: a weighted sampler does not balance several labels at once)."""
    rows = manifest.sort_values("item_id", kind="stable")
    return {
        "format": MANIFEST_FORMAT,
        "previous_version": previous_version,
        **extra,
        "task_type": MULTI_LABEL,
        "classes": [str(c) for c in classes],
        "pos_weight": dict(weights),
        "item_id": rows["item_id"].astype(str).tolist(),
        "label": [sorted(str(v) for v in value) for value in rows["label"]],
        "split": rows["split"].astype(str).tolist(),
    }


def is_label_set_manifest(manifest: pd.DataFrame) -> bool:
    """Whether a stored manifest holds label sets (lists) rather than class names."""
    return bool(len(manifest)) and bool(manifest["label"].map(lambda v: isinstance(v, list | tuple)).all())
