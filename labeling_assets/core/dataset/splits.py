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
from typing import Any, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from labeling_assets.core.dataset.placement import (
    Floats,
    Ints,
    Placement,
    ensure_every_class_everywhere,
    place_mixed_groups,
    place_pure_units,
)

SPLITS: tuple[str, ...] = ("train", "val", "test")
MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS = 3
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

    def as_array(self) -> Floats:
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


def is_single_label(value: Any) -> bool:
    """Whether :func:`normalize_label` accepts ``value`` (exactly one class)."""
    try:
        normalize_label(value)
    except ValueError:
        return False
    return True


@dataclass
class _Items:
    """The input reduced to distinct items (code i = i-th item_id in sorted order)."""

    item_ids: pd.Index  # sorted distinct content hashes
    row_items: Ints  # item code of each input row
    label_codes: Ints  # class code of each distinct item
    classes: pd.Index  # sorted class names
    row_groups: Ints  # group code of each input row, -1 when none
    groups: pd.Index  # distinct group keys
    item_groups: Ints  # a group code of each distinct item, -1 when none


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
    row_groups, groups, item_groups = group_codes(items, row_items, n)
    return _Items(item_ids, row_items, label_codes, classes, row_groups, groups, item_groups)


def group_codes(items: pd.DataFrame, row_items: Ints, n_items: int) -> tuple[Ints, pd.Index, Ints]:
    """(group code per row or -1, distinct group keys, a group code per distinct item or -1)."""
    row_groups = np.full(len(row_items), -1, dtype=np.int64)
    groups: pd.Index = pd.Index([], dtype=object)
    if "group_key" in items.columns:
        keys = items["group_key"]
        present = (keys.notna() & keys.astype(str).ne("")).to_numpy()
        if present.any():
            codes, groups = pd.factorize(keys[present].astype(str))
            row_groups[present] = codes
    item_groups = np.full(n_items, -1, dtype=np.int64)
    with_group = row_groups >= 0
    item_groups[row_items[with_group][::-1]] = row_groups[with_group][::-1]
    return row_groups, groups, item_groups


def group_names_of(item_groups: Ints, group_names: NDArray[np.object_]) -> NDArray[np.object_]:
    """Each item's group key, None for an item without one."""
    out = np.full(len(item_groups), None, dtype=object)
    has_group = item_groups >= 0
    out[has_group] = group_names[item_groups[has_group]]
    return out


def _units(prepared: _Items) -> Ints:
    """Unit id per distinct item: connected components of the item ↔ group_key graph."""
    return unit_components(len(prepared.item_ids), prepared.row_items, prepared.row_groups, len(prepared.groups))


def unit_components(n_items: int, row_items: Ints, row_groups: Ints, n_groups: int) -> Ints:
    """Unit id per distinct item: connected components of the item ↔ group_key graph (row_groups -1: none)."""
    has_group = row_groups >= 0
    if not has_group.any():
        return np.arange(n_items)
    rows = row_items[has_group]
    cols = row_groups[has_group] + n_items
    size = n_items + n_groups
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    _, units = np.unique(labels[:n_items], return_inverse=True)
    unit_of: Ints = units.astype(np.int64)
    return unit_of


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

    split_codes = frozen_split_codes(existing, prepared.item_ids)
    is_new = split_codes < 0
    notes.extend(follow_frozen_units(unit_of, split_codes, n_units))

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
        state = Placement(unit_of, label_codes, split_codes, counts, targets, ratio, rng)
        if mixed.any():
            place_mixed_groups(state, mixed)
        pure = split_codes < 0
        if pure.any():
            place_pure_units(state, pure)

    notes.extend(
        ensure_every_class_everywhere(
            unit_of,
            label_codes,
            is_new,
            split_codes,
            counts,
            ratio,
            classes,
            split_names=SPLITS,
            min_items=MIN_ITEMS_PER_CLASS_FOR_ALL_SPLITS,
        )
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
            "group_key": group_names_of(prepared.item_groups, group_names),
            "split": np.asarray(SPLITS, dtype=object)[split_codes],
            "is_new": is_new,
        }
    )
    return SplitAssignment(frame=out, notes=notes)


def frozen_split_codes(existing: Mapping[str, str] | pd.Series | None, item_ids: pd.Index) -> Ints:
    """Split code (index in :data:`SPLITS`) of each item's frozen assignment, -1 for a new item."""
    split_codes = np.full(len(item_ids), -1, dtype=np.int64)
    if existing is not None and len(item_ids):
        existing_series = (
            existing if isinstance(existing, pd.Series) else pd.Series(dict(existing), dtype=object)
        )
        existing_series = existing_series[~existing_series.index.duplicated()]
        wanted = pd.Index(existing_series.reindex(item_ids).fillna("-"))
        known = pd.Index(list(SPLITS)).get_indexer(wanted)
        unknown = set(existing_series.unique()) - set(SPLITS)
        if unknown:
            raise ValueError(f"existing assignments use unknown splits {sorted(map(str, unknown))}")
        split_codes[:] = known
    return split_codes


def follow_frozen_units(unit_of: Ints, split_codes: Ints, n_units: int) -> list[str]:
    """New members of a unit that holds a frozen item follow the unit's (majority) split, in place;
    returns a note when earlier assignments already spread a unit over several splits."""
    is_new = split_codes < 0
    notes: list[str] = []
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
) -> dict[str, Any]:
    """A compact, column-oriented JSON form of the manifest for ``dataset_versions.manifest``.

    With ``weights`` (class weights) it also holds ``sample_weight``, aligned with ``item_id``: the
    per-item weight for a weighted sampler (see :func:`sample_weights`), stored with the version so a
    training run reads exactly the weights of the data it trains on.
    """
    rows = manifest.sort_values("item_id", kind="stable")
    out: dict[str, Any] = {
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
        data = cast(dict[str, Any], json.loads(data))
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


def sample_weights(labels: pd.Series, weights: Mapping[str, float]) -> Floats:
    """Per-sample weights for a weighted sampler: the class weight of each item's label (0 if unknown)."""
    weights_per_item = labels.astype(str).map(weights).fillna(0.0).to_numpy(dtype=np.float64)
    return cast(Floats, weights_per_item)
