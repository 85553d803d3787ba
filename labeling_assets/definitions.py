"""The table of contents: one ``dg.Definitions`` built from each stage's module, listed by hand.

Importing it reads no environment variable and touches no file (tests/test_import_side_effects.py): every
resource resolves its unset settings when a run or a sensor tick uses it (``labeling_assets.env``), so the
same loaded definitions serve the local setup and the docker stack, and find a Label Studio started later.
"""

from typing import Any

import dagster as dg

from labeling_assets.assets import adjudication, collect, dataset, guidelines, ingest, queue
from labeling_assets.assets import consensus as consensus_assets
from labeling_assets.assets import evaluate as evaluate_assets
from labeling_assets.assets import label_issues as label_issues_assets
from labeling_assets.assets import labeler_stats as labeler_stats_assets
from labeling_assets.assets import prelabel as prelabel_assets
from labeling_assets.assets import qa_report as qa_report_assets
from labeling_assets.assets import spot_checks as spot_check_assets
from labeling_assets.assets import sweep as sweep_assets
from labeling_assets.assets import train as train_assets
from labeling_assets.checks import consensus as consensus_checks
from labeling_assets.checks import dataset as dataset_checks
from labeling_assets.checks import evaluate as evaluate_checks
from labeling_assets.checks import ingest as ingest_checks
from labeling_assets.checks import labeler_stats as labeler_stats_checks
from labeling_assets.checks import queue as queue_checks
from labeling_assets.jobs import (
    collect_job,
    dataset_job,
    ingest_job,
    labeler_stats_job,
    prelabel_job,
    quality_job,
    queue_job,
    spot_check_job,
    store_backup_job,
    sweep_cells_job,
    sweep_evaluation_job,
    sweep_plan_job,
    sweep_summary_job,
    train_job,
    webhook_collect_job,
)
from labeling_assets.resources.alerts import AlertsResource
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.schedules import (
    labeler_stats_schedule,
    quality_schedule,
    spot_check_schedule,
    store_backup_schedule,
)
from labeling_assets.sensors import (
    alerts_sensor,
    annotation_sensor,
    intake_sensor,
    queue_top_up_sensor,
    raw_data_sensor,
    retrain_sensor,
    run_failure_alert_sensor,
    touched_tasks_sensor,
)


def build_resources() -> dict[str, dg.ConfigurableResource[Any]]:
    """Every resource, keyed by the names assets ask for; all settings are resolved at run time."""
    return {
        "project": ProjectSettings(),
        "label_store": LabelStoreResource(),
        "image_source": ImageSourceResource(),
        "label_studio": LabelStudioResource(),
        "mlflow": MLflowResource(),
        "alerts": AlertsResource(),  # off until a webhook or SMTP server is set (docs/operations.md, "Alerts")
    }


# Issue 26: the UI shows "Automation condition: eager" on five assets while Dagster's automation sensor is off.
AUTOMATION_NOTE = (
    "Automation condition eager: Dagster acts on it only while its automation sensor "
    "(default_automation_condition_sensor) is on, and this project leaves it off: the sensors and schedules on the "
    "Automation page materialize this asset (collect_job after annotations, the daily schedules). Turning the "
    "automation sensor on would let Dagster also launch runs for the condition, beside those sensors."
)


def _explain_automation(spec: dg.AssetSpec) -> dg.AssetSpec:
    if spec.automation_condition is None:
        return spec
    return spec.merge_attributes(metadata={"automation": AUTOMATION_NOTE})


def _task_type(resources: dict[str, dg.ConfigurableResource[Any]]) -> str:
    """The project's task type, as its settings resource resolved it when it was made (the definitions load)."""
    project = resources["project"]
    if not isinstance(project, ProjectSettings):
        raise TypeError(f"the project resource is a {type(project).__name__}, not ProjectSettings")
    return project.task_type


def build_definitions(resources: dict[str, dg.ConfigurableResource[Any]]) -> dg.Definitions:
    """Every asset, check, job, sensor and schedule, bound to ``resources`` (this module's, or the team
    deployment's in ``team_definitions``)."""
    return dg.Definitions(
        assets=dg.map_asset_specs(_explain_automation, [
            ingest.raw_images,
            queue.labeling_tasks,
            guidelines.labeling_guidelines,
            collect.annotations,
            consensus_assets.consensus_labels,
            adjudication.adjudications,
            spot_check_assets.spot_checks,
            labeler_stats_assets.labeler_stats,
            labeler_stats_assets.labeler_leaderboard,
            label_issues_assets.label_issues,
            dataset.dataset_splits,
            dataset.dataset_export,
            prelabel_assets.prelabels,
            train_assets.training_tensors,
            train_assets.trained_model,
            evaluate_assets.model_evaluation,
            sweep_assets.sweep_plan,
            sweep_assets.sweep_cell,
            sweep_assets.sweep_summary,
            qa_report_assets.qa_report,
            guidelines.disagreement_digest,
        ]),  # fmt: skip
        asset_checks=[
            ingest_checks.content_hashes_unique,
            ingest_checks.active_items_have_readable_copy,
            queue_checks.gold_never_in_task_data,
            *consensus_checks.consensus_checks,
            *labeler_stats_checks.labeler_stats_checks,
            dataset_checks.dataset_splits_no_hash_in_two_splits,
            dataset_checks.dataset_splits_no_group_in_two_splits,
            dataset_checks.dataset_splits_no_near_duplicates_in_two_splits,
            dataset_checks.dataset_splits_class_proportions_within_tolerance,
            dataset_checks.dataset_splits_frozen_assignments_unchanged,
            dataset_checks.dataset_splits_every_class_in_every_split,
            dataset_checks.dataset_splits_every_label_in_val_and_test,
            dataset_checks.dataset_splits_only_live_labeled_items,
            dataset_checks.dataset_splits_machine_labels_hold_target,
            # Named after the kind's test score (test_map_above_floor in a box project).
            *evaluate_checks.evaluation_checks_for(_task_type(resources)),
        ],
        jobs=[
            ingest_job,
            queue_job,
            collect_job,
            webhook_collect_job,
            dataset_job,
            train_job,
            prelabel_job,
            labeler_stats_job,
            quality_job,
            spot_check_job,
            store_backup_job,
            sweep_plan_job,
            sweep_cells_job,
            sweep_summary_job,
            sweep_evaluation_job,
        ],
        sensors=[annotation_sensor, touched_tasks_sensor, raw_data_sensor, intake_sensor, queue_top_up_sensor,
                 retrain_sensor, alerts_sensor, run_failure_alert_sensor],  # fmt: skip
        schedules=[labeler_stats_schedule, quality_schedule, spot_check_schedule, store_backup_schedule],
        resources=resources,
        # Steps of a run execute in the run's own process, one after the other. Dagster's default (a process per
        # step) re-imports the project for every step and check: on the 2-core machine this targets, a collect
        # run spent over 4 minutes starting 15 processes for 10 s of work, and parallel steps would only queue on
        # SQLite's single writer. Pools (gpu, labelstudio_sync, labelstudio_queue) hold either way.
        executor=dg.in_process_executor,
    )


defs = build_definitions(build_resources())
