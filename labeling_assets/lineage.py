"""What the Dagster instance knows about our assets, read by several assets and checks.

Downstream of ``dataset_splits`` everything reads the dataset version its latest materialization recorded,
not the newest version row in the store: a label that flips back makes an older version current again.
A version whose blocking checks failed is never exported.
"""

from typing import Any

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

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
    value = latest_metadata(instance, DATASET_SPLITS_KEY.to_user_string()).get("dataset_version")
    return str(value) if value is not None else None


def current_dataset(instance: dg.DagsterInstance, store: LabelStore) -> datasets.DatasetSnapshot:
    """The items of the current dataset version (without a materialization: the newest stored version)."""
    try:
        return datasets.current_dataset(store, current_dataset_version(instance))
    except datasets.NoDatasetVersion as exc:
        raise dg.Failure(str(exc)) from exc


def materialized_in_run(instance: dg.DagsterInstance, run_id: str, asset: str) -> dict[str, Any]:
    """The metadata values of ``asset``'s materialization in run ``run_id`` (empty when it has none)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None and materialization.asset_key == dg.AssetKey(asset):
            return {key: value.value for key, value in materialization.metadata.items()}
    return {}


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict[str, Any]:
    """The metadata values of ``asset``'s latest materialization (empty before the first)."""
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return {}
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def failed_blocking_dataset_checks(instance: dg.DagsterInstance, version: str | None = None) -> list[str]:
    """Blocking dataset checks whose newest evaluation of ``version`` (default: the current one) failed.

    Judged from the evaluations recorded for that exact version (the ``dataset_version`` each check writes in
    its metadata), never from a check's latest record: a newer run that has only planned the check (or died
    before running it) must not hide the failure of the version downstream assets read. A check never run on
    the version counts as not failed, as a check never run at all does.
    """
    latest = instance.get_latest_materialization_event(DATASET_SPLITS_KEY)
    version = version if version is not None else current_dataset_version(instance)
    if latest is None or version is None:
        return []
    failed = []
    for name in BLOCKING_DATASET_CHECKS:
        evaluation = _newest_evaluation_of(
            instance, dg.AssetCheckKey(DATASET_SPLITS_KEY, name), version, latest.run_id
        )
        if evaluation is None or evaluation.passed:
            continue
        if evaluation.severity == dg.AssetCheckSeverity.WARN:
            continue  # as in Dagster, a blocking check blocks only on an ERROR-severity failure
        failed.append(name)
    return failed


def refuse_failed_dataset(instance: dg.DagsterInstance, version: str, *, refused: str, step: str) -> None:
    """Stop a step downstream of ``dataset_splits`` when ``version`` failed a blocking check.

    Dagster's blocking acts within one run: a run that selects only later steps (an export, a training, an
    evaluation) must refuse the version itself. ``refused`` says what is not done (``not exported``), ``step``
    what to run once the data is fixed (``export``).
    """
    failed = failed_blocking_dataset_checks(instance, version)
    if failed:
        raise dg.Failure(
            f"dataset version {version} failed blocking checks {', '.join(failed)}: {refused}. "
            f"Fix the data (see the check metadata), re-materialize dataset_splits, then {step}.",
            metadata={"failed_checks": dg.MetadataValue.json(failed)},
        )

def blocking_check_verdicts(instance: dg.DagsterInstance, version: str) -> dict[str, str]:
    """Each blocking dataset check -> ``passed``, ``failed`` (ERROR severity), ``warned`` (failed at WARN) or
    ``not evaluated``, by its newest evaluation of ``version`` (what reports print about a trained version)."""
    latest = instance.get_latest_materialization_event(DATASET_SPLITS_KEY)
    verdicts = {}
    for name in BLOCKING_DATASET_CHECKS:
        key = dg.AssetCheckKey(DATASET_SPLITS_KEY, name)
        evaluation = _newest_evaluation_of(instance, key, version, latest.run_id if latest else "")
        if evaluation is None:
            verdicts[name] = "not evaluated"
        elif evaluation.passed:
            verdicts[name] = "passed"
        else:
            verdicts[name] = "warned" if evaluation.severity == dg.AssetCheckSeverity.WARN else "failed"
    return verdicts


_HISTORY_PAGE = 200
_COMPLETED = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}


def _newest_evaluation_of(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey, version: str, latest_run_id: str
) -> dg.AssetCheckEvaluation | None:
    """The newest completed evaluation of ``key`` that judged ``version`` (newest first, page by page).

    An evaluation without ``dataset_version`` metadata (a check written without it) judged the version of the
    materialization it targets: it counts when that is the latest materialization's run."""
    cursor: int | None = None
    while True:
        records = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=_HISTORY_PAGE, cursor=cursor, status=_COMPLETED
        )
        for record in records:
            evaluation = record.evaluation
            if evaluation is None:
                continue
            judged = evaluation.metadata.get("dataset_version")
            if judged is not None:
                if str(judged.value) == version:
                    return evaluation
                continue
            target = evaluation.target_materialization_data
            if (target.run_id if target is not None else record.run_id) == latest_run_id:
                return evaluation
        if len(records) < _HISTORY_PAGE:
            return None
        cursor = records[-1].id


def checks_pending(instance: dg.DagsterInstance) -> str | None:
    """The run that materialized the current dataset version while it is still in flight (its blocking checks
    may not have run yet: training waits for their verdict), else None."""
    latest = instance.get_latest_materialization_event(DATASET_SPLITS_KEY)
    if latest is None:
        return None
    run = instance.get_run_by_id(latest.run_id)
    return latest.run_id if run is not None and not run.is_finished else None
