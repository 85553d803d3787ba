"""What the instance says about the current dataset version: its version and its failed blocking checks."""

import dagster as dg

from labeling_assets import lineage

CHECK = lineage.BLOCKING_DATASET_CHECKS[0]


def _defs(version: str, check_passes: bool) -> list[object]:
    @dg.asset(name="dataset_splits")
    def dataset_splits() -> dg.MaterializeResult[None]:
        return dg.MaterializeResult(metadata={"dataset_version": version})

    @dg.asset_check(asset=dataset_splits, name=CHECK, blocking=True)
    def planted() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=check_passes, metadata={"dataset_version": version})

    return [dataset_splits, planted]


def test_a_failure_counts_only_against_the_version_it_judged() -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert lineage.current_dataset_version(instance) is None
    assert lineage.failed_blocking_dataset_checks(instance) == []

    dg.materialize(_defs("v1", check_passes=False), instance=instance, raise_on_error=False)
    assert lineage.current_dataset_version(instance) == "v1"
    assert lineage.failed_blocking_dataset_checks(instance) == [CHECK]

    # v2 materialized without running its checks: v1's failure is not blamed on it.
    splits, _check = _defs("v2", check_passes=False)
    dg.materialize([splits], instance=instance)
    assert lineage.current_dataset_version(instance) == "v2"
    assert lineage.failed_blocking_dataset_checks(instance) == []

    dg.materialize(_defs("v3", check_passes=False), instance=instance, raise_on_error=False)
    assert lineage.failed_blocking_dataset_checks(instance) == [CHECK]
    dg.materialize(_defs("v4", check_passes=True), instance=instance)
    assert lineage.failed_blocking_dataset_checks(instance) == []


def test_a_newer_run_that_planned_the_checks_does_not_hide_the_failure_of_the_current_version() -> None:
    """The race of issue 26: v1 failed; a newer run has planned the check (its record is the check's latest)
    but not materialized anything yet, so v1 is still current and still failed."""
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize(_defs("v1", check_passes=False), instance=instance, raise_on_error=False)
    job = dg.Definitions(assets=_defs("v2", check_passes=True)).resolve_implicit_global_asset_job_def()
    instance.create_run_for_job(job)  # created, not launched: in flight with the check planned
    latest = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(lineage.DATASET_SPLITS_KEY, CHECK)
    )
    assert latest is not None and latest.status.value == "PLANNED"
    assert lineage.current_dataset_version(instance) == "v1"
    assert lineage.failed_blocking_dataset_checks(instance) == [CHECK]
    assert lineage.failed_blocking_dataset_checks(instance, "v1") == [CHECK]


def test_a_version_is_judged_by_its_own_evaluations_when_it_comes_back() -> None:
    """A label that flips back makes an older version current again: its newest evaluation decides."""
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize(_defs("v1", check_passes=True), instance=instance)
    dg.materialize(_defs("v2", check_passes=False), instance=instance, raise_on_error=False)
    splits, _check = _defs("v1", check_passes=True)
    dg.materialize([splits], instance=instance)  # v1 again, its checks not run this time
    assert lineage.failed_blocking_dataset_checks(instance) == []
    assert lineage.failed_blocking_dataset_checks(instance, "v2") == [CHECK]
