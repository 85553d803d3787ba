"""Checks on dataset_splits: one property each, blocking (a leaky or drifted split must not reach training).

Each check reads the manifest of the version the latest ``dataset_splits`` materialization recorded, so
it judges exactly what downstream assets will read.
"""

from collections.abc import Mapping

import dagster as dg
import pandas as pd

from labeling_assets import lineage
from labeling_assets.core.dataset import iterative_stratification as multi_core
from labeling_assets.core.dataset import split_checks
from labeling_assets.core.dataset.near_duplicates import pairs_across_splits
from labeling_assets.core.label_sets import SINGLE_LABEL
from labeling_assets.core.store.as_of import version_settings
from labeling_assets.core.store.dataset_versions import (
    load_manifest,
    manifest_document,
    manifest_items_not_live,
    newest_version,
    rows_of_items,
)
from labeling_assets.core.store.phashes import load_phashes
from labeling_assets.core.store.schema import LabelStore, items_table, splits_table
from labeling_assets.core.store.tiers import decision_of, machine_tier_items
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.kind import TaskKind
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

EXAMPLES = 10


def _current(context: dg.AssetCheckExecutionContext, store: LabelStore) -> tuple[str, pd.DataFrame]:
    """The version the latest dataset_splits materialization recorded, and its stored manifest."""
    version = lineage.current_dataset_version(context.instance)
    if version is None:
        raise dg.Failure("dataset_splits has no materialization to check")
    return version, load_manifest(store, version)


def _version_kind(store: LabelStore, version: str) -> tuple[TaskKind, list[str]]:
    """The kind of task a version was built for (its manifest's ``task_type``; none: single-label, as before kinds)
    and its class order (the manifest's ``classes``, when it lists them)."""
    document = manifest_document(store, version) or {}
    kind = task_kind(str(document.get("task_type", SINGLE_LABEL)))
    return kind, [str(c) for c in document.get("classes") or []]


def _no_rows(
    version: str, bad: pd.DataFrame, count_key: str, extra: Mapping[str, dg.MetadataValue] | None = None
) -> dg.AssetCheckResult:
    """Passes when ``bad`` holds no row; metadata: the version, ``extra``, the rows (``count_key``), examples."""
    return dg.AssetCheckResult(
        passed=bad.empty,
        metadata={
            "dataset_version": dg.MetadataValue.text(version),
            **(extra or {}),
            count_key: dg.MetadataValue.int(len(bad)),
            "examples": dg.MetadataValue.json(bad.head(EXAMPLES).to_dict(orient="records")),
        },
    )


@dg.asset_check(asset="dataset_splits", blocking=True)
def dataset_splits_no_hash_in_two_splits(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource
) -> dg.AssetCheckResult:
    """No content hash (item) is listed in more than one split of the current manifest."""
    version, manifest = _current(context, label_store.get_store())
    bad = split_checks.hashes_in_several_splits(manifest)
    return _no_rows(version, bad, "hashes_in_several_splits")


@dg.asset_check(asset="dataset_splits", blocking=True)
def dataset_splits_no_group_in_two_splits(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource
) -> dg.AssetCheckResult:
    """All items of a group (patient, scan, ...) are in one split, by the group keys stored now."""
    store = label_store.get_store()
    version, manifest = _current(context, store)
    groups = rows_of_items(store, items_table, ["item_id", "group_key"], manifest["item_id"].tolist())
    bad = split_checks.groups_in_several_splits(manifest.merge(groups, on="item_id", how="left"))
    checked = {"groups_checked": dg.MetadataValue.int(int(groups["group_key"].nunique()))}
    return _no_rows(version, bad, "groups_in_several_splits", checked)


@dg.asset_check(asset="dataset_splits", blocking=True)
def dataset_splits_no_near_duplicates_in_two_splits(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource
) -> dg.AssetCheckResult:
    """No two items whose perceptual hashes are within the version's near-duplicate distance sit in different
    splits (re-encodes, crops, brightness changes of one picture would leak between train and test)."""
    store = label_store.get_store()
    version, manifest = _current(context, store)
    distance = int(version_settings(store, version).get("near_duplicate_distance", -1))
    hashes = load_phashes(store)
    bad = pairs_across_splits(manifest, hashes, distance)  # nothing when grouping was off (-1)
    return dg.AssetCheckResult(
        passed=bad.empty,
        metadata={
            "dataset_version": dg.MetadataValue.text(version),
            "near_duplicate_distance": dg.MetadataValue.int(distance),
            "items_with_hash": dg.MetadataValue.int(int(manifest["item_id"].isin(hashes.index).sum())),
            "pairs_across_splits": dg.MetadataValue.int(len(bad)),
            "examples": dg.MetadataValue.json(bad.head(EXAMPLES).to_dict(orient="records")),
            **({"remedy": dg.MetadataValue.text(NEAR_DUPLICATE_REMEDY)} if len(bad) else {}),
        },
    )


# Frozen items never move, so a pair frozen apart (before hashes existed, or bridged by a new item) stays apart.
NEAR_DUPLICATE_REMEDY = (
    "Frozen items never move between splits: remove one item of each pair from the source folder (the next "
    "ingest retires it, and the next dataset version leaves it out), or, to accept the leak for this version, "
    "set dataset_splits' near_duplicate_distance to -1."
)


@dg.asset_check(asset="dataset_splits", blocking=True)
def dataset_splits_class_proportions_within_tolerance(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource
) -> dg.AssetCheckResult:
    """Each split's class proportions are within tolerance (+ one item's worth) of the overall ones (multi-label:
    each label's prevalence, and the share of empty sets). Over the human-labeled items: machine labels go to train
    only by design (docs/tiers.md), so they would skew train's proportions whatever the stratification did."""
    store = label_store.get_store()
    version, manifest = _current(context, store)
    manifest = manifest[~manifest["item_id"].isin(machine_tier_items(manifest_document(store, version)))]
    kind, classes = _version_kind(store, version)
    deviations = kind.split_deviations(manifest, classes, split_checks.DEFAULT_PROPORTION_TOLERANCE)
    bad = deviations[~deviations["ok"]]
    return dg.AssetCheckResult(
        passed=bad.empty,
        metadata={
            "dataset_version": dg.MetadataValue.text(version),
            "tolerance": dg.MetadataValue.float(split_checks.DEFAULT_PROPORTION_TOLERANCE),
            "max_deviation": dg.MetadataValue.float(
                round(float(deviations["deviation"].max()), 4) if len(deviations) else 0.0
            ),
            "out_of_tolerance": dg.MetadataValue.json(bad.round(4).head(EXAMPLES).to_dict(orient="records")),
        },
    )


@dg.asset_check(asset="dataset_splits", blocking=True)
def dataset_splits_frozen_assignments_unchanged(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource
) -> dg.AssetCheckResult:
    """No previously assigned item changed split: the manifest agrees with the frozen ``splits`` rows and
    with the previous dataset version (so the test set never absorbs or loses an old item)."""
    store = label_store.get_store()
    version, manifest = _current(context, store)
    frozen = rows_of_items(store, splits_table, ["item_id", "split"], manifest["item_id"].tolist())
    unrecorded = sorted(set(manifest["item_id"]) - set(frozen["item_id"]))
    moved = split_checks.moved_items(frozen, manifest)
    previous = newest_version(store, other_than=version)
    moved_since_previous = pd.DataFrame(columns=["item_id", "previous_split", "current_split"])
    if previous:
        moved_since_previous = split_checks.moved_items(load_manifest(store, previous), manifest)
    test_changes = int(
        ((moved["previous_split"] == "test") | (moved["current_split"] == "test")).sum()
        + (
            (moved_since_previous["previous_split"] == "test")
            | (moved_since_previous["current_split"] == "test")
        ).sum()
    )
    return dg.AssetCheckResult(
        passed=moved.empty and moved_since_previous.empty and not unrecorded,
        metadata={
            "dataset_version": dg.MetadataValue.text(version),
            "previous_version": dg.MetadataValue.text(previous or ""),
            "moved_vs_frozen_rows": dg.MetadataValue.int(len(moved)),
            "moved_vs_previous_version": dg.MetadataValue.int(len(moved_since_previous)),
            "test_set_changes": dg.MetadataValue.int(test_changes),
            "items_without_frozen_row": dg.MetadataValue.int(len(unrecorded)),
            "examples": dg.MetadataValue.json(
                pd.concat([moved, moved_since_previous]).head(EXAMPLES).to_dict(orient="records")
                + [{"item_id": i, "problem": "no frozen split row"} for i in unrecorded[:EXAMPLES]]
            ),
        },
    )


@dg.asset_check(asset="dataset_splits", blocking=False)
def dataset_splits_every_class_in_every_split(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource
) -> dg.AssetCheckResult:
    """Every class with at least 3 items is in every split (rarer classes are documented on the card); for
    multi-label, every label with at least 3 positives has a positive in every split."""
    store = label_store.get_store()
    version, manifest = _current(context, store)
    kind, classes = _version_kind(store, version)
    missing = kind.missing_from_splits(manifest, classes)
    return dg.AssetCheckResult(
        passed=missing.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "dataset_version": dg.MetadataValue.text(version),
            "missing": dg.MetadataValue.json(missing.to_dict(orient="records")),
        },
    )


@dg.asset_check(asset="dataset_splits", blocking=True)
def dataset_splits_only_live_labeled_items(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource, project: ProjectSettings
) -> dg.AssetCheckResult:
    """Every manifest item is active with a live (not retracted) consensus and a label of the current class
    list: a superseded, retracted or stale-class item never reaches an export."""
    store = label_store.get_store()
    version, manifest = _current(context, store)
    machine = machine_tier_items(manifest_document(store, version))
    kind = _version_kind(store, version)[0].name
    bad = manifest_items_not_live(store, manifest, list(project.classes), task_type=kind, machine=machine)
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={
            "dataset_version": dg.MetadataValue.text(version),
            "items_not_live": dg.MetadataValue.int(len(bad)),
            "examples": dg.MetadataValue.json(bad[:EXAMPLES]),
        },
    )


@dg.asset_check(asset="dataset_splits", blocking=True)
def dataset_splits_every_label_in_val_and_test(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource
) -> dg.AssetCheckResult:
    """Multi-label: every label with a positive item has a positive in val and in test. Fails (ERROR,
    blocking) when a label with at least 3 positives lacks one: no decision threshold can be chosen on val,
    no per-label test metric measured, and the splitter places such labels unless frozen items or groups
    prevented it (new items carrying the label go where it is missing). Only labels with 1-2 positives
    missing: WARN, not blocking (they cannot be in train, val and test at once; the card lists them).
    Passes with nothing to judge for a single-label version."""
    store = label_store.get_store()
    version, manifest = _current(context, store)
    kind, classes = _version_kind(store, version)
    missing = kind.missing_for_thresholds(manifest, classes)
    placeable = missing[missing["positives"] >= multi_core.MIN_POSITIVES_FOR_ALL_SPLITS]
    return dg.AssetCheckResult(
        passed=missing.empty,
        severity=dg.AssetCheckSeverity.ERROR if len(placeable) else dg.AssetCheckSeverity.WARN,
        metadata={
            "dataset_version": dg.MetadataValue.text(version),
            "task_type": dg.MetadataValue.text(kind.name),
            "min_positives_to_require": dg.MetadataValue.int(multi_core.MIN_POSITIVES_FOR_ALL_SPLITS),
            "missing": dg.MetadataValue.json(missing.to_dict(orient="records")),
            "blocking_missing": dg.MetadataValue.int(len(placeable)),
        },
    )


@dg.asset_check(asset="dataset_splits", blocking=False)
def dataset_splits_machine_labels_hold_target(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource
) -> dg.AssetCheckResult:
    """The machine labels' check sample agrees with people at least as often as the target allows: fails (WARN) when
    even its upper confidence bound is below ``machine_label_target``. The loop acts by itself: the version built
    then has no machine tier (status ``suspended``) and those items go back to people, until the champion changes
    or more agreeing answers lift the bound. Passes with nothing to judge when machine labels are off."""
    store = label_store.get_store()
    version = lineage.current_dataset_version(context.instance)
    decided = decision_of(store, version) if version else None
    check = (decided or {}).get("production") or {}
    return dg.AssetCheckResult(
        passed=not check.get("below_target", False),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "dataset_version": dg.MetadataValue.text(version or ""),
            "status": dg.MetadataValue.text((decided or {}).get("status", "off")),
            "check_sample": dg.MetadataValue.json(check),
        },
    )
