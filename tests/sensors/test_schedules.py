"""Schedules: labeler stats (one run over all labelers), the QA roll-ups, and the nightly store backup job."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from labeling_assets.core.automation import BACKUP_KEEP_VAR
from labeling_assets.core.store import backup
from labeling_assets.jobs import store_backup_job
from labeling_assets.partitions import LABELERS
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.schedules import (
    labeler_stats_schedule,
    quality_schedule,
    spot_check_schedule,
    store_backup_schedule,
)

NIGHT = dt.datetime(2025, 3, 4, 5, 0, tzinfo=dt.UTC)


@pytest.mark.slow
def test_labeler_stats_run_once_over_every_labeler_partition() -> None:
    with dg.instance_for_test() as instance:  # a schedule context needs an instance with a home
        instance.add_dynamic_partitions(LABELERS, ["7", "3", "12"])
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=NIGHT)
        requests = labeler_stats_schedule(context)
    assert isinstance(requests, list)
    [request] = requests  # one run: the partition range from the first labeler key to the last
    assert request.run_key == "labeler-stats-2025-03-04"
    assert request.tags["dagster/asset_partition_range_start"] == "7"
    assert request.tags["dagster/asset_partition_range_end"] == "12"


def test_labeler_stats_skip_before_the_first_labeler() -> None:
    with dg.instance_for_test() as instance:
        result = labeler_stats_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=NIGHT))
    assert isinstance(result, dg.SkipReason) and "no labeler yet" in (result.skip_message or "")


def test_the_schedules_run_daily_by_default() -> None:
    assert (labeler_stats_schedule.job_name, labeler_stats_schedule.cron_schedule) == ("labeler_stats_job", "0 5 * * *")
    assert (quality_schedule.job_name, quality_schedule.cron_schedule) == ("quality_job", "30 5 * * *")
    assert (store_backup_schedule.job_name, store_backup_schedule.cron_schedule) == ("store_backup_job", "0 2 * * *")
    for schedule in (labeler_stats_schedule, quality_schedule, store_backup_schedule):
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_spot_checks_run_hourly_on_their_own_job_and_never_delay_an_annotations_consensus() -> None:
    from definitions import defs

    def assets_of(job: str) -> set[str]:
        selected = defs.get_repository_def().get_job(job).asset_layer.selected_asset_keys
        return {key.to_user_string() for key in selected}

    assert (spot_check_schedule.job_name, spot_check_schedule.cron_schedule) == ("spot_check_job", "15 * * * *")
    assert spot_check_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert assets_of("spot_check_job") == {"spot_checks"}
    assert "consensus_labels" in assets_of("collect_job") and "spot_checks" not in assets_of("collect_job")


def test_the_backup_job_writes_a_compressed_backup_and_keeps_the_newest_n(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BACKUP_KEEP_VAR, "2")
    store = LabelStoreResource(url=f"sqlite:///{tmp_path / 'labels.db'}")
    project = ProjectSettings(data_dir=str(tmp_path / "data"))
    paths = []
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(3):
            result = store_backup_job.execute_in_process(
                instance=instance, resources={"label_store": store, "project": project}
            )
            assert result.success
            paths.append(Path(result.output_for_node("store_backup")))
    kept = backup.list_backups(tmp_path / "data" / "backups")
    assert kept == paths[1:] and all(p.name.endswith(".sqlite.gz") for p in kept)


def test_on_a_local_stack_the_nightly_backup_also_makes_the_whole_stack_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeling_assets.local import stack_backup

    monkeypatch.delenv("LABELING_ASSETS_DEPLOYMENT", raising=False)  # local
    resources = {"label_store": LabelStoreResource(url=f"sqlite:///{tmp_path / 'labels.db'}"),
                 "project": ProjectSettings(data_dir=str(tmp_path / "data"))}  # fmt: skip
    result = store_backup_job.execute_in_process(resources=resources)
    [materialization] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    parts = materialization.event_specific_data.metadata["stack_parts"].value  # type: ignore[union-attr]
    assert parts["labels"] == "ok" and parts["labelstudio_export"].startswith("skipped: no Label Studio")
    assert len(stack_backup.list_bundles(tmp_path / "data" / "backups")) == 1
    off = {"ops": {"store_backup": {"config": {"whole_stack": False}}}}
    assert store_backup_job.execute_in_process(resources=resources, run_config=off).success
    assert len(stack_backup.list_bundles(tmp_path / "data" / "backups")) == 1
