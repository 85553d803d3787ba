"""What the Dagster instance knows about our assets, read by several assets and checks.

Downstream of ``dataset_splits`` everything reads the dataset version its latest materialization recorded,
not the newest version row in the store: a label that flips back makes an older version current again.
A version whose blocking checks failed is never exported.
"""

import dagster as dg

from labeling_assets.core.store import datasets
from labeling_assets.core.store.schema import LabelStore

DATASET_SPLITS_KEY = dg.AssetKey("dataset_splits")
# The blocking checks of labeling_assets/checks/dataset.py (tests assert the two lists agree).
BLOCKING_DATASET_CHECKS: tuple[str, ...] = (
    "dataset_splits_no_hash_in_two_splits",
    "dataset_splits_no_group_in_two_splits",
    "dataset_splits_no_near_duplicates_in_two_splits",
    "dataset_splits_class_proportions_within_tolerance",
    "dataset_splits_frozen_assignments_unchanged",
    "dataset_splits_only_live_labeled_items",
    "dataset_splits_every_label_in_val_and_test",
)


def current_dataset_version(instance: dg.DagsterInstance) -> str | None:
    """The dataset version of the latest ``dataset_splits`` materialization, or None before the first."""
    event = instance.get_latest_materialization_event(DATASET_SPLITS_KEY)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("dataset_version")
    return str(value.value) if value is not None else None


def current_dataset(instance: dg.DagsterInstance, store: LabelStore) -> datasets.DatasetSnapshot:
    """The items of the current dataset version (without a materialization: the newest stored version)."""
    try:
        return datasets.current_dataset(store, current_dataset_version(instance))
    except datasets.NoDatasetVersion as exc:
        raise dg.Failure(str(exc)) from exc


def failed_blocking_dataset_checks(instance: dg.DagsterInstance) -> list[str]:
    """Blocking dataset checks that failed on the current dataset version.

    Only an evaluation of the latest ``dataset_splits`` materialization counts: a failure recorded against an
    older version must not block (nor be blamed on) a newer one. A check never run on the current version
    counts as not failed, as a check never run at all does.
    """
    latest = instance.get_latest_materialization_event(DATASET_SPLITS_KEY)
    if latest is None:
        return []
    failed = []
    for name in BLOCKING_DATASET_CHECKS:
        record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(DATASET_SPLITS_KEY, name))
        if record is None or record.status.value != "FAILED":
            continue
        evaluation = record.event.asset_check_evaluation if record.event else None
        if evaluation is not None and evaluation.severity == dg.AssetCheckSeverity.WARN:
            continue  # as in Dagster, a blocking check blocks only on an ERROR-severity failure
        target = evaluation.target_materialization_data if evaluation else None
        judged_run = target.run_id if target is not None else record.run_id
        if judged_run == latest.run_id:
            failed.append(name)
    return failed
