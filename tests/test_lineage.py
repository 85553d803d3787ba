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
        return dg.AssetCheckResult(passed=check_passes)

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
