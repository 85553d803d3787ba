"""Building a dataset version from its inputs: one function for ``dataset_splits`` and for rebuilds "as of".

The manifest depends only on the inputs passed here (labeled items, frozen splits, ratios, seed, pHashes,
the near-duplicate distance, the previous version), so a rebuild from the store's logs as of a time gives
the same bytes as the version built then (``core/store/as_of.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.dataset import splits as split_core
from labeling_assets.core.dataset.near_duplicates import (
    HELD_OUT_REASON,
    near_duplicate_groups,
    unplaceable_items,
)
from labeling_assets.core.dataset.tiers import item_tier
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
    # item_id -> (label, confidence): machine labels the threshold decision allows (docs/tiers.md); items with no
    # human label. They go to train only (the test split stays human-labeled, so no model is scored on them).
    machine: Mapping[str, tuple[str, float]] = field(default_factory=dict)


@dataclass
class BuiltDataset:
    assignment: split_core.SplitAssignment
    version: str
    class_weights: dict[str, float]  # multi-label: the per-class pos_weight (negatives / positives in train)
    manifest_json: dict[str, Any]
    near_duplicates: dict[str, str] = field(default_factory=dict)  # item_id -> near-duplicate group key
    # item_id -> why it is left out of this version (kept in the store; placed once it can be)
    held_out: dict[str, dict[str, Any]] = field(default_factory=dict)
    machine: dict[str, tuple[str, float]] = field(default_factory=dict)  # the machine labels the version holds
    machine_left_out: int = 0  # machine candidates in a path or near-duplicate group: left to people


def build_dataset(inputs: BuildInputs) -> BuiltDataset:
    """Assign splits (path-pattern and near-duplicate groups kept together) and the manifest JSON."""
    human = inputs.labeled[["item_id", "label", "group_key"]]
    held_out = _held_out(inputs)
    human = human[~human["item_id"].isin(held_out.keys())]
    # Machine candidates (the caller passes items without a path-pattern group): never an item frozen in val or test.
    humans = set(human["item_id"])
    machine = {i: m for i, m in inputs.machine.items()
               if i not in humans and i not in held_out and inputs.existing.get(i, "train") == "train"}  # fmt: skip
    labeled = pd.concat([human, _machine_rows(machine)], ignore_index=True) if machine else human
    groups = _groups(labeled, inputs)
    # A machine item in a near-duplicate group could pull a human item into train or straddle frozen splits: it is
    # left to people (``machine_left_out`` counts them).
    grouped = {i for i in machine if i in groups}
    if grouped:
        machine = {i: m for i, m in machine.items() if i not in grouped}
        labeled = labeled[~labeled["item_id"].isin(grouped)]
        groups = _groups(labeled, inputs)
    rows = labeled[~labeled["item_id"].isin(machine.keys())]
    if groups:
        # A second row per grouped item under the near-duplicate key: assign_splits joins every item sharing
        # a key (path pattern or near-duplicate) into one unit. Its first row keeps the path-pattern key.
        extra = rows[rows["item_id"].isin(groups.keys())].assign(
            group_key=lambda f: f["item_id"].map(groups)
        )
        rows = pd.concat([rows, extra], ignore_index=True)
    # The kind stratifies (by the class; by each class of a set, iteratively) and writes the manifest.
    kind = task_kind(inputs.task_type)
    classes = [str(c) for c in inputs.classes]
    assignment = kind.assign_splits(rows, classes, existing=inputs.existing, ratios=inputs.ratios, seed=inputs.seed)
    if machine:
        # Machine items join train after the human items are stratified (placed with them, they would skew the
        # human splits' class proportions): new ones are frozen there like any new item's split.
        extra = _machine_rows(machine).assign(split="train", is_new=lambda f: ~f["item_id"].isin(inputs.existing.index))
        frame = pd.concat([assignment.frame, extra[assignment.frame.columns]], ignore_index=True)
        assignment.frame = frame.sort_values("item_id", kind="stable").reset_index(drop=True)
    version, weights, manifest_json = kind.manifest(
        assignment.frame, classes, previous_version=inputs.previous_version, extra=_settings(inputs, assignment)
    )
    if machine:
        # The hash covers (item, label, split); which labels came from the machine is part of the version too.
        marked = version + "\nmachine:" + ",".join(sorted(machine))
        version = hashlib.sha256(marked.encode("utf-8")).hexdigest()[:16]
    if "method" in inputs.labeled.columns and "item_id" in manifest_json:
        manifest_json.update(tier_columns(manifest_json["item_id"], inputs.labeled, machine))
    return BuiltDataset(assignment, version, weights, manifest_json, groups, held_out, machine, len(grouped))


def _machine_rows(machine: Mapping[str, tuple[str, float]]) -> pd.DataFrame:
    return pd.DataFrame({"item_id": list(machine), "label": [m[0] for m in machine.values()],
                         "group_key": [None] * len(machine)})  # fmt: skip


def _groups(labeled: pd.DataFrame, inputs: BuildInputs) -> dict[str, str]:
    known = labeled[labeled["item_id"].isin(inputs.phashes.index)]
    if inputs.near_duplicate_distance < 0 or len(known) < 2:
        return {}
    ordered = known.sort_values("item_id", kind="stable")
    return near_duplicate_groups(
        ordered["item_id"].tolist(),
        inputs.phashes.reindex(ordered["item_id"]).astype(str).tolist(),
        inputs.near_duplicate_distance,
    )


def tier_columns(
    item_ids: Sequence[str], labeled: pd.DataFrame, machine: Mapping[str, tuple[str, float]]
) -> dict[str, list[Any]]:
    """The manifest's ``tier`` and ``tier_confidence`` lists, aligned with its ``item_id``: a human item's tier from
    its consensus method and gold flag with the consensus confidence (1 for gold), a machine item's with the
    model's probability."""
    by_item = labeled.drop_duplicates("item_id").set_index("item_id").reindex(list(item_ids))
    gold = by_item["gold_label"].notna() if "gold_label" in by_item.columns else pd.Series(False, index=by_item.index)
    methods = by_item["method"].where(by_item["method"].notna(), None)
    raw = by_item["confidence"] if "confidence" in by_item.columns else pd.Series(np.nan, index=by_item.index)
    human_conf = pd.to_numeric(raw, errors="coerce").where(~gold, 1.0)
    tier: list[str] = []
    conf: list[float | None] = []
    for item, method, is_gold, value in zip(item_ids, methods, gold, human_conf, strict=True):
        if item in machine:
            tier.append("machine")
            conf.append(round(float(machine[item][1]), 6))
        else:
            tier.append(item_tier(None if method is None else str(method), bool(is_gold)))
            conf.append(None if pd.isna(value) else round(float(value), 6))
    return {"tier": tier, "tier_confidence": conf}


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
