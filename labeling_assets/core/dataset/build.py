"""Building a dataset version from its inputs: one function for ``dataset_splits`` and for rebuilds "as of".

The manifest depends only on the inputs passed here (labeled items, frozen splits, ratios, seed, pHashes,
the near-duplicate distance, the previous version), so a rebuild from the store's logs as of a time gives
the same bytes as the version built then (``core/store/as_of.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from labeling_assets.core.dataset import splits as split_core
from labeling_assets.core.dataset.near_duplicates import (
    HELD_OUT_REASON,
    near_duplicate_groups,
    unplaceable_items,
)
from labeling_assets.core.label_sets import SINGLE_LABEL, TaskType
from labeling_assets.core.tasks.registry import task_kind


@dataclass(frozen=True)
class BuildInputs:
    """What a dataset version is built from. ``labeled``: item_id, label, group_key (path-pattern group)."""

    labeled: pd.DataFrame
    existing: pd.Series  # item_id -> frozen split
    ratios: split_core.SplitRatios
    seed: int
    phashes: pd.Series  # item_id -> 16-hex-digit pHash (items without one join no near-duplicate group)
    near_duplicate_distance: int  # -1: no near-duplicate groups
    previous_version: str | None
    # A multi-label project: ``labeled.label`` holds label sets, split by iterative stratification over ``classes``.
    task_type: TaskType = SINGLE_LABEL
    classes: Sequence[str] = ()


@dataclass
class BuiltDataset:
    assignment: split_core.SplitAssignment
    version: str
    class_weights: dict[str, float]  # multi-label: the per-class pos_weight (negatives / positives in train)
    manifest_json: dict[str, Any]
    near_duplicates: dict[str, str] = field(default_factory=dict)  # item_id -> near-duplicate group key
    # item_id -> why it is left out of this version (kept in the store; placed once it can be)
    held_out: dict[str, dict[str, Any]] = field(default_factory=dict)


def build_dataset(inputs: BuildInputs) -> BuiltDataset:
    """Assign splits (path-pattern and near-duplicate groups kept together) and the manifest JSON."""
    labeled = inputs.labeled[["item_id", "label", "group_key"]]
    held_out = _held_out(inputs)
    labeled = labeled[~labeled["item_id"].isin(held_out.keys())]
    known = labeled[labeled["item_id"].isin(inputs.phashes.index)]
    groups: dict[str, str] = {}
    if inputs.near_duplicate_distance >= 0 and len(known) > 1:
        ordered = known.sort_values("item_id", kind="stable")
        groups = near_duplicate_groups(
            ordered["item_id"].tolist(),
            inputs.phashes.reindex(ordered["item_id"]).astype(str).tolist(),
            inputs.near_duplicate_distance,
        )
    rows = labeled
    if groups:
        # A second row per grouped item under the near-duplicate key: assign_splits joins every item sharing
        # a key (path pattern or near-duplicate) into one unit. Its first row keeps the path-pattern key.
        extra = labeled[labeled["item_id"].isin(groups.keys())].assign(
            group_key=lambda f: f["item_id"].map(groups)
        )
        rows = pd.concat([labeled, extra], ignore_index=True)
    # The kind stratifies (by the class; by each class of a set, iteratively) and writes the manifest.
    kind = task_kind(inputs.task_type)
    classes = [str(c) for c in inputs.classes]
    assignment = kind.assign_splits(rows, classes, existing=inputs.existing, ratios=inputs.ratios, seed=inputs.seed)
    version, weights, manifest_json = kind.manifest(
        assignment.frame, classes, previous_version=inputs.previous_version, extra=_settings(inputs, assignment)
    )
    return BuiltDataset(assignment, version, weights, manifest_json, groups, held_out)


def _held_out(inputs: BuildInputs) -> dict[str, dict[str, Any]]:
    """New items no split can take without a near-duplicate pair crossing frozen splits: left out with a reason,
    so the blocking check passes for what the version holds and the loop goes on (docs/blocking-checks.md)."""
    if inputs.near_duplicate_distance < 0:
        return {}
    known = inputs.labeled[inputs.labeled["item_id"].isin(inputs.phashes.index)].sort_values("item_id", kind="stable")
    stuck = unplaceable_items(
        known["item_id"].tolist(),
        inputs.phashes.reindex(known["item_id"]).astype(str).tolist(),
        inputs.existing,
        inputs.near_duplicate_distance,
    )
    return {item: {"reason": HELD_OUT_REASON, "frozen_near_duplicates": near} for item, near in stuck.items()}


def _settings(inputs: BuildInputs, assignment: split_core.SplitAssignment) -> dict[str, Any]:
    return {
        "ratios": inputs.ratios.as_dict(),
        "seed": inputs.seed,
        "notes": assignment.notes,
        "near_duplicate_distance": inputs.near_duplicate_distance,
    }


def with_previous(built: BuiltDataset, previous: str | None) -> BuiltDataset:
    """``built`` with its manifest's ``previous_version`` set (the version hash does not depend on it)."""
    built.manifest_json["previous_version"] = previous
    return built


def manifest_bytes(manifest_json: Any) -> bytes:
    """Canonical bytes of a stored manifest (sorted keys, no spaces): what "byte for byte" compares."""
    data = json.loads(manifest_json) if isinstance(manifest_json, str) else manifest_json
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
