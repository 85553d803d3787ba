"""Dataset splits: stratified, group-aware, frozen train/val/test assignment and the dataset version.

Pure logic (pandas/numpy/scipy, no Dagster). The rules:

- The unit of assignment is a connected component of items and group keys: all items of a group
  (patient, scan, ...) land in one split, and a content hash that appears twice in the input, even
  under two group keys, joins those groups into one unit.
- Frozen: an item that already has a split keeps it; new items of a unit that already has a split follow
  it. Only units with no assigned item are placed freely.
- Free units are placed per class greedily toward the deficit against the targets
  ``ratio[split] * total[class]`` (totals include the frozen items), so the proportions stay close to the
  targets as items arrive over time. Multi-item groups go first (largest first), then single items are
  allocated per class by largest remainder.
- Every class with at least ``MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS`` items is put in every split (with a
  positive ratio) by moving the smallest new unit over; where frozen items or groups make that
  impossible the result says so in ``notes`` rather than breaking a rule.
- Nothing corrects the imbalance: class weights are computed and reported, not resampled in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SPLITS: tuple[str, ...] = ("train", "val", "test")
MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS = 3
# A split's class proportion may differ from the overall one by this much plus one item's worth
# (1 / split size): integer rounding alone moves a rare class by one item.
DEFAULT_PROPORTION_TOLERANCE = 0.05
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class SplitRatios:
    """Target fractions of train / val / test; must be non-negative and sum to 1."""

    train: float = 0.70
    val: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        values = self.as_array()
        if np.any(values < 0) or not np.isfinite(values).all():
            raise ValueError(f"split ratios must be non-negative numbers, got {self.as_dict()}")
        if abs(values.sum() - 1.0) > 1e-6:
            raise ValueError(f"split ratios must sum to 1, got {self.as_dict()} (sum {values.sum():.6f})")
        if self.train <= 0:
            raise ValueError("the train ratio must be positive")

    def as_array(self) -> np.ndarray:
        return np.array([self.train, self.val, self.test], dtype=float)

    def as_dict(self) -> dict[str, float]:
        return {"train": self.train, "val": self.val, "test": self.test}


@dataclass
class SplitAssignment:
    """The result of :func:`assign_splits`.

    ``frame`` has one row per distinct item: item_id, label, group_key, split, is_new, sorted by item_id.
    ``notes`` are the known limitations of this assignment in plain words (for the dataset card).
    """

    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def n_new(self) -> int:
        return int(self.frame["is_new"].sum())


def normalize_label(value: Any) -> str:
    """A consensus label as a class name: a string or number as is, a one-element list unwrapped.

    Raises ValueError for empty or multi-class labels: the dataset is single-label classification.
    """
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise ValueError(f"single-label dataset: label {value!r} must name exactly one class")
        value = value[0]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise ValueError("label is missing")
    if isinstance(value, bool):
        raise ValueError(f"label {value!r} is not a class name")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    if not text.strip():
        raise ValueError("label is an empty string")
    return text


@dataclass
class _Items:
    """The input reduced to distinct items (code i = i-th item_id in sorted order)."""

    item_ids: pd.Index  # sorted distinct content hashes
    row_items: np.ndarray  # item code of each input row
    label_codes: np.ndarray  # class code of each distinct item
    classes: pd.Index  # sorted class names
    row_groups: np.ndarray  # group code of each input row, -1 when none
    groups: pd.Index  # distinct group keys
    item_groups: np.ndarray  # a group code of each distinct item, -1 when none


def _prepare(items: pd.DataFrame) -> _Items:
    """Validate the input and reduce it to distinct items; the same content twice is one item.

    Works on integer codes (one factorize per column) so 10^6 rows stay fast.
    """
    missing = {"item_id", "label"} - set(items.columns)
    if missing:
        raise ValueError(f"items frame lacks columns {sorted(missing)}")
    ids = items["item_id"]
    if ids.isna().any():
        raise ValueError(f"{int(ids.isna().sum())} rows have no item_id")
    row_items, item_ids = pd.factorize(ids.astype(str), sort=True)
    n = len(item_ids)
    labels = items["label"]
    if labels.isna().any():
        bad = ids[labels.isna()].head(5).tolist()
        raise ValueError(f"{int(labels.isna().sum())} items have no label, e.g. {bad}")
    try:
        row_raw, raw_classes = pd.factorize(labels)
    except TypeError:  # unhashable labels (lists): normalize row by row
        row_raw, raw_classes = pd.factorize(labels.map(normalize_label))
    # Normalize the few distinct raw labels, then map rows through them (e.g. 3 and "3" are one class).
    names = pd.Index([normalize_label(v) for v in raw_classes], dtype=object)
    classes = pd.Index(sorted(set(names)), dtype=object)
    row_labels = classes.get_indexer(names)[row_raw]
    first = np.full(n, -1, dtype=np.int64)
    # First row of each item: reversed assignment leaves the smallest row index.
    first[row_items[::-1]] = np.arange(len(row_items))[::-1]
    label_codes = row_labels[first]
    if len(row_items) > n:
        # Two different labels for one content hash cannot both be true.
        conflict = row_labels != label_codes[row_items]
        if conflict.any():
            bad_items = item_ids[np.unique(row_items[conflict])]
            raise ValueError(
                f"{len(bad_items)} content hashes appear with different labels, e.g. "
                f"{bad_items[:5].tolist()}; resolve the consensus before splitting"
            )
    row_groups = np.full(len(row_items), -1, dtype=np.int64)
    groups = pd.Index([], dtype=object)
    if "group_key" in items.columns:
        keys = items["group_key"]
        present = (keys.notna() & keys.astype(str).ne("")).to_numpy()
        if present.any():
            codes, groups = pd.factorize(keys[present].astype(str))
            row_groups[present] = codes
    item_groups = np.full(n, -1, dtype=np.int64)
    with_group = row_groups >= 0
    item_groups[row_items[with_group][::-1]] = row_groups[with_group][::-1]
    return _Items(item_ids, row_items, label_codes, classes, row_groups, groups, item_groups)


def _units(prepared: _Items) -> np.ndarray:
    """Unit id per distinct item: connected components of the item ↔ group_key graph."""
    n_items = len(prepared.item_ids)
    has_group = prepared.row_groups >= 0
    if not has_group.any():
        return np.arange(n_items)
    rows = prepared.row_items[has_group]
    cols = prepared.row_groups[has_group] + n_items
    size = n_items + len(prepared.groups)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    _, units = np.unique(labels[:n_items], return_inverse=True)
    return units


def assign_splits(
    items: pd.DataFrame,
    *,
    existing: Mapping[str, str] | pd.Series | None = None,
    ratios: SplitRatios | None = None,
    seed: int = 0,
) -> SplitAssignment:
    """Assign each item to train/val/test.

    Args:
        items: columns ``item_id`` (content hash), ``label`` and optionally ``group_key`` (null = own group).
            The same item_id may appear more than once (same label); it is one item.
        existing: item_id → split already assigned (frozen); items not in ``items`` are ignored.
        ratios: target fractions (default 70/15/15).
        seed: makes the placement of new items reproducible (independent of the input row order).

    Returns:
        A :class:`SplitAssignment`; frozen items keep their split, see the module docstring for the rules.
    """
    ratios = ratios or SplitRatios()
    rng = np.random.default_rng(seed)
    prepared = _prepare(items)
    n = len(prepared.item_ids)
    unit_of = _units(prepared)
    label_codes, classes = prepared.label_codes, prepared.classes
    n_classes = len(classes)
    n_units = int(unit_of.max()) + 1 if n else 0
    notes: list[str] = []

    split_codes = np.full(n, -1, dtype=np.int64)
    if existing is not None and n:
        existing_series = (
            existing if isinstance(existing, pd.Series) else pd.Series(dict(existing), dtype=object)
        )
        existing_series = existing_series[~existing_series.index.duplicated()]
        known = pd.Index(list(SPLITS)).get_indexer(existing_series.reindex(prepared.item_ids).fillna("-"))
        unknown = set(existing_series.unique()) - set(SPLITS)
        if unknown:
            raise ValueError(f"existing assignments use unknown splits {sorted(map(str, unknown))}")
        split_codes[:] = known
    is_new = split_codes < 0

    # Units that hold a frozen item: new members follow the unit's (majority) split.
    if (~is_new).any():
        votes = np.zeros((n_units, len(SPLITS)), dtype=np.int64)
        np.add.at(votes, (unit_of[~is_new], split_codes[~is_new]), 1)
        spanning = int(((votes > 0).sum(axis=1) > 1).sum())
        if spanning:
            notes.append(
                f"{spanning} groups already span more than one split from earlier assignments; "
                "those items stay frozen, so these groups leak across splits"
            )
        unit_split = np.where(votes.sum(axis=1) > 0, votes.argmax(axis=1), -1)
        follow = is_new & (unit_split[unit_of] >= 0)
        split_codes[follow] = unit_split[unit_of[follow]]

    ratio = ratios.as_array()
    totals = np.bincount(label_codes, minlength=n_classes).astype(float)
    targets = ratio[:, None] * totals[None, :]
    counts = np.zeros((len(SPLITS), n_classes), dtype=np.int64)
    placed = split_codes >= 0
    np.add.at(counts, (split_codes[placed], label_codes[placed]), 1)

    free = split_codes < 0
    if free.any():
        # A unit is "mixed" when its items carry more than one class; those need the greedy search.
        lo = np.full(n_units, n_classes, dtype=np.int64)
        hi = np.full(n_units, -1, dtype=np.int64)
        np.minimum.at(lo, unit_of, label_codes)
        np.maximum.at(hi, unit_of, label_codes)
        mixed = free & (lo != hi)[unit_of]
        if mixed.any():
            _place_mixed_groups(unit_of, label_codes, mixed, split_codes, counts, targets, ratio, rng)
        pure = split_codes < 0
        if pure.any():
            _place_pure_units(unit_of, label_codes, pure, split_codes, counts, targets, ratio, rng)

    notes.extend(
        _ensure_every_class_everywhere(unit_of, label_codes, is_new, split_codes, counts, ratio, classes)
    )
    rare = [
        f"{classes[c]} ({int(totals[c])})"
        for c in range(n_classes)
        if totals[c] < MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS
    ]
    if rare:
        notes.append(
            f"classes with fewer than {MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS} items cannot be in every split: "
            + ", ".join(rare)
        )

    group_names = np.asarray(prepared.groups, dtype=object)
    out = pd.DataFrame(
        {
            "item_id": np.asarray(prepared.item_ids, dtype=object),
            "label": np.asarray(classes, dtype=object)[label_codes],
            "group_key": np.where(prepared.item_groups >= 0, group_names[prepared.item_groups], None)
            if len(group_names)
            else np.full(n, None, dtype=object),
            "split": np.asarray(SPLITS, dtype=object)[split_codes],
            "is_new": is_new,
        }
    )
    return SplitAssignment(frame=out, notes=notes)


def _relative_deficit(counts: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """How far each split is behind its overall target, as a fraction of that target."""
    overall = targets.sum(axis=1)
    return (overall - counts.sum(axis=1)) / np.maximum(overall, 1e-9)


def _place_mixed_groups(
    unit_of: np.ndarray,
    label_codes: np.ndarray,
    mask: np.ndarray,
    split_codes: np.ndarray,
    counts: np.ndarray,
    targets: np.ndarray,
    ratio: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Greedy placement of units with several classes, largest first, each into the split whose per-class
    deficit it fills best (gain minus overflow); ties go to the split furthest behind overall."""
    n_classes = targets.shape[1]
    idx = np.flatnonzero(mask)
    # Per-unit class counts as (unit, class, count) runs, computed once outside the loop.
    pairs, pair_counts = np.unique(unit_of[idx] * n_classes + label_codes[idx], return_counts=True)
    pair_units, pair_classes = pairs // n_classes, pairs % n_classes
    starts = np.flatnonzero(np.r_[True, pair_units[1:] != pair_units[:-1]])
    ends = np.r_[starts[1:], len(pairs)]
    sizes = np.add.reduceat(pair_counts, starts)
    # Largest groups first (bin packing), random order among equal sizes so no class is favoured.
    visit = np.lexsort((rng.random(len(starts)), -sizes))
    # Plain Python lists: per unit the work is a handful of scalar operations, where numpy's per-call
    # overhead would dominate (about 5x slower at 10^5 groups).
    active = [s for s in range(len(ratio)) if ratio[s] > 0]
    overall = targets.sum(axis=1).tolist()
    target_rows = targets.tolist()
    count_rows = counts.tolist()
    split_totals = [float(sum(row)) for row in count_rows]
    classes_l, counts_l, starts_l, ends_l = (
        pair_classes.tolist(),
        pair_counts.tolist(),
        starts.tolist(),
        ends.tolist(),
    )
    sizes_l, units_l = sizes.tolist(), pair_units.tolist()
    unit_split = np.full(int(unit_of.max()) + 1, -1, dtype=np.int64)
    for u in visit.tolist():
        a, b = starts_l[u], ends_l[u]
        best, best_score = active[0], -np.inf
        for s in active:
            t_row, c_row = target_rows[s], count_rows[s]
            gain = 0.0
            for j in range(a, b):
                c = classes_l[j]
                room = t_row[c] - c_row[c]
                if room > 0:
                    gain += min(counts_l[j], room)
            behind = (overall[s] - split_totals[s]) / max(overall[s], 1e-9)
            score = 2.0 * gain - sizes_l[u] + 1e-6 * behind
            if score > best_score:
                best, best_score = s, score
        c_row = count_rows[best]
        for j in range(a, b):
            c_row[classes_l[j]] += counts_l[j]
        split_totals[best] += sizes_l[u]
        unit_split[units_l[a]] = best
    counts[:] = np.asarray(count_rows, dtype=counts.dtype)
    split_codes[idx] = unit_split[unit_of[idx]]


def _quotas(k: int, deficit: np.ndarray, ratio: np.ndarray, behind: np.ndarray) -> np.ndarray:
    """Split ``k`` items over the splits in proportion to their deficits, largest remainder; remainder
    ties go to the split furthest behind overall."""
    deficit = np.where(ratio > 0, deficit, 0.0)
    share = k * deficit / deficit.sum() if deficit.sum() > 0 else k * ratio
    alloc = np.floor(share + 1e-9).astype(np.int64)
    remainder = k - int(alloc.sum())
    if remainder > 0:
        frac = np.where(ratio > 0, share - alloc, -np.inf)
        alloc[np.lexsort((-behind, -frac))[:remainder]] += 1
    return alloc


def _place_pure_units(
    unit_of: np.ndarray,
    label_codes: np.ndarray,
    mask: np.ndarray,
    split_codes: np.ndarray,
    counts: np.ndarray,
    targets: np.ndarray,
    ratio: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Per class, toward the deficit: single-class groups first, cut in random order at quotas (a group goes
    where its midpoint falls), then single items by exact largest-remainder quotas, shuffled (seeded)."""
    idx = np.flatnonzero(mask)
    units, first, sizes = np.unique(unit_of[idx], return_index=True, return_counts=True)
    unit_class = label_codes[idx[first]]
    # Within a class: groups before singles, random order inside each kind.
    order = np.lexsort((rng.random(len(units)), sizes == 1, unit_class))
    units, sizes, unit_class = units[order], sizes[order], unit_class[order]
    starts = np.flatnonzero(np.r_[True, unit_class[1:] != unit_class[:-1]])
    ends = np.r_[starts[1:], len(units)]
    unit_split = np.full(int(unit_of.max()) + 1, -1, dtype=np.int64)
    block_items = np.add.reduceat(sizes, starts)
    # Larger classes first: their rounding matters least, and the smaller classes' ties then go toward
    # the splits that are behind overall.
    for b in np.argsort(-block_items, kind="stable"):
        c = int(unit_class[starts[b]])
        block = slice(int(starts[b]), int(ends[b]))
        b_units, b_sizes = units[block], sizes[block]
        n_groups = int(np.count_nonzero(b_sizes > 1))
        for kind in (slice(0, n_groups), slice(n_groups, len(b_units))):
            k_units, k_sizes = b_units[kind], b_sizes[kind]
            if not len(k_units):
                continue
            deficit = np.maximum(targets[:, c] - counts[:, c], 0.0)
            alloc = _quotas(int(k_sizes.sum()), deficit, ratio, _relative_deficit(counts, targets))
            midpoints = np.cumsum(k_sizes) - k_sizes / 2.0
            chosen = np.searchsorted(np.cumsum(alloc)[:-1], midpoints, side="right")
            # A zero-ratio split may still get a group whose midpoint lands on its empty range: push it on.
            chosen = np.where(ratio[chosen] > 0, chosen, np.argmax(ratio))
            unit_split[k_units] = chosen
            np.add.at(counts[:, c], chosen, k_sizes)
    split_codes[idx] = unit_split[unit_of[idx]]


def _ensure_every_class_everywhere(
    unit_of: np.ndarray,
    label_codes: np.ndarray,
    is_new: np.ndarray,
    split_codes: np.ndarray,
    counts: np.ndarray,
    ratio: np.ndarray,
    classes: pd.Index,
) -> list[str]:
    """Move the smallest new unit of a class into each split that lacks the class, when the class has
    enough items and the move takes no class out of the donor split; return notes on what is impossible."""
    notes: list[str] = []
    totals = counts.sum(axis=0)
    active = np.flatnonzero(ratio > 0)
    needs = [
        (c, s)
        for c in np.flatnonzero(totals >= max(MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS, len(active)))
        for s in active
        if counts[s, c] == 0
    ]
    if not needs:
        return notes
    unit_size = np.bincount(unit_of)
    frozen_units = np.zeros(len(unit_size), dtype=bool)
    frozen_units[unit_of[~is_new]] = True
    impossible: list[str] = []
    for c, s in needs:
        if counts[s, c] > 0:  # an earlier move already brought the class here
            continue
        # Donors must keep at least one item of the class themselves.
        rich = np.flatnonzero(counts[:, c] >= 2)
        candidates = np.unique(unit_of[(label_codes == c) & is_new & np.isin(split_codes, rich)])
        candidates = candidates[~frozen_units[candidates]]
        moved = False
        for u in candidates[np.argsort(unit_size[candidates], kind="stable")]:
            members = np.flatnonzero(unit_of == u)
            donor = int(split_codes[members[0]])
            cls, u_counts = np.unique(label_codes[members], return_counts=True)
            left = counts[donor, cls] - u_counts
            # Never empty the donor of a class that itself must be everywhere.
            if np.any((left == 0) & (totals[cls] >= MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS)):
                continue
            split_codes[members] = s
            counts[donor, cls] -= u_counts
            counts[s, cls] += u_counts
            moved = True
            break
        if not moved:
            impossible.append(f"{classes[c]} not in {SPLITS[s]}")
    if impossible:
        notes.append(
            "frozen assignments or group sizes keep these classes out of a split although they have "
            f"≥ {MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS} items: " + ", ".join(impossible)
        )
    return notes


# --- manifest, version, weights -----------------------------------------------------------------


def manifest_version(manifest: pd.DataFrame) -> str:
    """The dataset version: sha256 (first 16 hex digits) of the sorted (item_id, label, split) rows.

    The same items with the same labels and splits always give the same version, whatever the row order.
    """
    rows = manifest.loc[:, ["item_id", "label", "split"]].sort_values("item_id", kind="stable")
    text = (
        rows["item_id"].astype(str) + "\t" + rows["label"].astype(str) + "\t" + rows["split"].astype(str)
    ).str.cat(sep="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def manifest_to_json(
    manifest: pd.DataFrame,
    *,
    previous_version: str | None,
    extra: Mapping[str, Any],
    weights: Mapping[str, float] | None = None,
) -> dict:
    """A compact, column-oriented JSON form of the manifest for ``dataset_versions.manifest``.

    With ``weights`` (class weights) it also holds ``sample_weight``, aligned with ``item_id``: the
    per-item weight for a weighted sampler (see :func:`sample_weights`), stored with the version so a
    training run reads exactly the weights of the data it trains on.
    """
    rows = manifest.sort_values("item_id", kind="stable")
    out = {
        "format": MANIFEST_FORMAT,
        "previous_version": previous_version,
        **extra,
        "item_id": rows["item_id"].astype(str).tolist(),
        "label": rows["label"].astype(str).tolist(),
        "split": rows["split"].astype(str).tolist(),
    }
    if weights is not None:
        out["sample_weight"] = sample_weights(rows["label"], weights).tolist()
    return out


def manifest_from_json(data: Mapping[str, Any] | str | None) -> pd.DataFrame:
    """The (item_id, label, split) frame stored by :func:`manifest_to_json`."""
    if data is None:
        return pd.DataFrame({"item_id": [], "label": [], "split": []}, dtype=object)
    if isinstance(data, str):
        data = json.loads(data)
    if data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"unknown manifest format {data.get('format')!r}")
    frame = pd.DataFrame(
        {"item_id": data["item_id"], "label": data["label"], "split": data["split"]}, dtype=object
    )
    if "sample_weight" in data:
        frame["sample_weight"] = np.asarray(data["sample_weight"], dtype=float)
    return frame


def class_weights(labels: pd.Series) -> dict[str, float]:
    """``total / (n_classes * count)`` per class present in ``labels`` (use the train split's labels).

    A weighted sampler that draws item *i* with probability ∝ ``class_weights[label_i]`` sees the classes
    equally often, so these weights are also the per-sample sampler weights.
    """
    counts = labels.astype(str).value_counts().sort_index()
    if counts.empty:
        return {}
    total = float(counts.sum())
    return {str(k): total / (len(counts) * float(v)) for k, v in counts.items()}


def sample_weights(labels: pd.Series, weights: Mapping[str, float]) -> np.ndarray:
    """Per-sample weights for a weighted sampler: the class weight of each item's label (0 if unknown)."""
    return labels.astype(str).map(weights).fillna(0.0).to_numpy(dtype=float)


def distribution(manifest: pd.DataFrame) -> pd.DataFrame:
    """Items per class (rows, sorted) and split (columns train/val/test/total)."""
    table = pd.crosstab(manifest["label"].astype(str), manifest["split"].astype(str))
    table = table.reindex(columns=list(SPLITS), fill_value=0)
    table["total"] = table.sum(axis=1)
    table.index.name = "class"
    return table.sort_index()


def imbalance_ratio(labels: pd.Series) -> float:
    """Largest class count / smallest class count (1.0 = balanced; NaN when empty)."""
    counts = labels.astype(str).value_counts()
    return float(counts.max() / counts.min()) if len(counts) else float("nan")


# --- integrity (used by the asset checks; pure so each rule is unit-tested) ---------------------


def hashes_in_several_splits(manifest: pd.DataFrame) -> pd.DataFrame:
    """Content hashes that appear in more than one split: item_id, splits (comma-separated)."""
    per_item = manifest.groupby("item_id")["split"].agg(lambda s: sorted(set(s)))
    bad = per_item[per_item.map(len) > 1]
    return pd.DataFrame({"item_id": bad.index.astype(str), "splits": bad.map(", ".join).to_numpy()})


def groups_in_several_splits(manifest: pd.DataFrame) -> pd.DataFrame:
    """Group keys whose items are in more than one split: group_key, splits, n_items."""
    with_group = manifest.dropna(subset=["group_key"])
    if with_group.empty:
        return pd.DataFrame({"group_key": [], "splits": [], "n_items": []})
    agg = with_group.groupby("group_key").agg(
        splits=("split", lambda s: sorted(set(s))), n_items=("item_id", "nunique")
    )
    bad = agg[agg["splits"].map(len) > 1]
    return pd.DataFrame(
        {
            "group_key": bad.index.astype(str),
            "splits": bad["splits"].map(", ".join).to_numpy(),
            "n_items": bad["n_items"].to_numpy(),
        }
    )


def proportion_deviations(
    manifest: pd.DataFrame, tolerance: float = DEFAULT_PROPORTION_TOLERANCE
) -> pd.DataFrame:
    """Per (split, class): the class proportion in the split vs overall, and whether it is within
    ``tolerance + 1 / split size``. Empty splits are skipped (a zero ratio is a choice, not drift)."""
    table = distribution(manifest)
    overall = table["total"] / max(int(table["total"].sum()), 1)
    rows = []
    for split in SPLITS:
        size = int(table[split].sum())
        if size == 0:
            continue
        allowed = tolerance + 1.0 / size
        for cls, count in table[split].items():
            proportion = count / size
            deviation = abs(proportion - overall[cls])
            rows.append(
                {
                    "split": split,
                    "class": cls,
                    "proportion": proportion,
                    "overall": float(overall[cls]),
                    "deviation": deviation,
                    "allowed": allowed,
                    "ok": bool(deviation <= allowed + 1e-12),
                }
            )
    return pd.DataFrame(
        rows, columns=["split", "class", "proportion", "overall", "deviation", "allowed", "ok"]
    )


def moved_items(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Items present in both manifests whose split changed: item_id, previous_split, current_split."""
    both = previous.loc[:, ["item_id", "split"]].merge(
        current.loc[:, ["item_id", "split"]], on="item_id", suffixes=("_previous", "_current")
    )
    changed = both[both["split_previous"] != both["split_current"]]
    return pd.DataFrame(
        {
            "item_id": changed["item_id"].to_numpy(),
            "previous_split": changed["split_previous"].to_numpy(),
            "current_split": changed["split_current"].to_numpy(),
        }
    )


def classes_missing_from_splits(
    manifest: pd.DataFrame,
    *,
    min_items: int = MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS,
    splits: tuple[str, ...] = SPLITS,
) -> pd.DataFrame:
    """Classes with at least ``min_items`` items that are absent from one of ``splits``: class, split, n_items."""
    table = distribution(manifest)
    rows = [
        {"class": cls, "split": split, "n_items": int(table.at[cls, "total"])}
        for cls in table.index
        if table.at[cls, "total"] >= min_items
        for split in splits
        if table.at[cls, split] == 0
    ]
    return pd.DataFrame(rows, columns=["class", "split", "n_items"])
