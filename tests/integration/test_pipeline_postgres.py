"""The whole pipeline on team infrastructure: a Dagster instance on PostgreSQL (dagster-postgres), the
label store on PostgreSQL, a real Label Studio, real MLflow tracking.

Runs the project's own definitions (assets, checks, jobs, sensor) with the test's resources, in the order
the demo runs them, and then asserts on what the instance and the stores hold.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets.core.ingest.demo_data import load_truth, render_digits
from labeling_assets.core.labelstudio.crowd import LabelerSpec
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    latest_consensus_query,
    source_files_table,
    tasks_table,
)
from labeling_assets.definitions import defs as project_defs
from labeling_assets.local.crowd import simulate_crowd
from labeling_assets.partitions import labelers, sweep_cells
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import annotation_sensor
from tests.labelstudio_server import LabelStudioServer

pytestmark = [pytest.mark.labelstudio, pytest.mark.postgres]

N_IMAGES = 45
OVERLAP = 2
CROWD = [
    LabelerSpec("e2e_expert", "expert"),
    LabelerSpec("e2e_average", "average"),
    LabelerSpec("e2e_noisy", "noisy"),
]


@dataclass
class Pipeline:
    instance: dg.DagsterInstance
    defs: dg.Definitions
    store: LabelStore
    dagster_db_url: str
    mlflow: MLflowResource
    n_crowd_annotations: int
    runs: list[dg.ExecuteInProcessResult]
    labeler_names: dict[str, str]  # Label Studio user id -> crowd name


def _run(
    pipeline_defs: dg.Definitions, instance: dg.DagsterInstance, job: str, **kwargs: object
) -> dg.ExecuteInProcessResult:
    result = pipeline_defs.resolve_job_def(job).execute_in_process(
        instance=instance, raise_on_error=False, **kwargs
    )  # type: ignore[arg-type]
    assert result.success, f"{job} failed"
    return result


@pytest.fixture(scope="module")
def pipeline(
    label_studio: LabelStudioServer, pg_databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    root = tmp_path_factory.mktemp("e2e-postgres")
    dagster_db_url = pg_databases.new_url()
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {dagster_db_url}\ntelemetry:\n  enabled: false\n"
    )
    demo = root / "digits"
    render_digits(demo, limit=N_IMAGES, gold_fraction=0.1)
    store = LabelStore(pg_databases.new_url())
    store.migrate()
    data = root / "data"
    mlflow = MLflowResource(data_dir=str(data))
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "image_source": ImageSourceResource(uri=str(demo), demo_dir=str(demo)),
        "project": ProjectSettings(data_dir=str(data)),
        "label_studio": label_studio.resource(f"e2e-{root.name}"),
        "mlflow": mlflow,
    }
    pipeline_defs = dg.Definitions(
        assets=project_defs.assets,
        asset_checks=project_defs.asset_checks,
        jobs=project_defs.jobs,
        sensors=project_defs.sensors,
        resources=resources,
    )
    runs = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs.append(_run(pipeline_defs, instance, "ingest_job"))
        runs.append(_run(pipeline_defs, instance, "prelabel_job"))
        queue = {"max_new_tasks": N_IMAGES, "gold_rate": 0.1, "overlap": OVERLAP}
        runs.append(
            _run(
                pipeline_defs,
                instance,
                "queue_job",
                run_config={"ops": {"labeling_tasks": {"config": queue}}},
            )
        )

        by_name = load_truth(demo)
        truth = {
            row["item_id"]: by_name[row["path"]]
            for row in store.fetch(sa.select(source_files_table.c.path, source_files_table.c.item_id))
        }
        project_id = resources["label_studio"].find_project_id()
        crowd = simulate_crowd(
            label_studio.client(),
            project_id,
            CROWD,
            truth=truth,
            classes=ProjectSettings(data_dir="x").classes,
            overlap=OVERLAP,
            seed=3,
        )

        # Collect the way the daemon does: the sensor decides, its run request names the run.
        with dg.build_sensor_context(
            instance=instance, resources={"label_studio": resources["label_studio"]}
        ) as ctx:
            tick = annotation_sensor(ctx)
        assert isinstance(tick, dg.SensorResult) and len(tick.run_requests or []) == 1
        runs.append(_run(pipeline_defs, instance, "collect_job", tags=tick.run_requests[0].tags))

        for key in labelers.get_partition_keys(dynamic_partitions_store=instance):
            runs.append(_run(pipeline_defs, instance, "labeler_stats_job", partition_key=key))
        runs.append(_run(pipeline_defs, instance, "quality_job"))
        runs.append(_run(pipeline_defs, instance, "spot_check_job"))  # hourly under the daemon
        train = {"epochs": 2, "patience": 2}
        runs.append(
            _run(
                pipeline_defs, instance, "train_job", run_config={"ops": {"trained_model": {"config": train}}}
            )
        )
        # A one-cell training sweep (its own jobs, never started by the loop): dynamic partitions and the sweep's
        # parent/child MLflow runs on the PostgreSQL instance too.
        grid = root / "sweep.toml"
        grid.write_text('name = "e2e"\n[settings]\nepochs = 1\npatience = 0\ndevice = "cpu"\n[grid]\nteacher = ["none"]\n')
        plan = {"ops": {"sweep_plan": {"config": {"settings_file": str(grid)}}}}
        runs.append(_run(pipeline_defs, instance, "sweep_plan_job", run_config=plan))
        for key in sweep_cells.get_partition_keys(dynamic_partitions_store=instance):
            runs.append(_run(pipeline_defs, instance, "sweep_cells_job", partition_key=key))
        runs.append(_run(pipeline_defs, instance, "sweep_summary_job"))
        names = {str(uid): name for name, uid in crowd.user_ids.items()}
        yield Pipeline(instance, pipeline_defs, store, dagster_db_url, mlflow, len(crowd.annotations), runs, names)
    store.dispose()


def test_every_asset_of_the_project_was_materialized_on_the_postgres_instance(pipeline: Pipeline) -> None:
    assert type(pipeline.instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(pipeline.instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    graph = pipeline.defs.resolve_asset_graph()
    missing = [
        key.to_user_string()
        for key in graph.materializable_asset_keys
        if pipeline.instance.get_latest_materialization_event(key) is None
        and not pipeline.instance.get_materialized_partitions(key)
    ]
    assert missing == []
    # The events are rows in PostgreSQL.
    engine = sa.create_engine(pipeline.dagster_db_url)
    with engine.connect() as conn:
        n_runs = conn.execute(sa.text("SELECT count(*) FROM runs")).scalar()
    engine.dispose()
    assert n_runs == len(pipeline.runs)


def test_the_label_store_holds_every_annotation_once_and_a_consensus_per_labeled_item(
    pipeline: Pipeline,
) -> None:
    assert pipeline.store.count(tasks_table) == N_IMAGES
    assert pipeline.store.count(annotations_table) == pipeline.n_crowd_annotations == N_IMAGES * OVERLAP
    assert len(pipeline.store.fetch(latest_consensus_query())) == N_IMAGES


def test_a_model_version_was_registered_with_its_dataset_version(pipeline: Pipeline) -> None:
    versions = pipeline.mlflow.registered_versions()
    assert len(versions) == 2  # train_job's model, then the sweep's winner
    [split_event] = [pipeline.instance.get_latest_materialization_event(dg.AssetKey("dataset_splits"))]
    dataset_version = split_event.asset_materialization.metadata["dataset_version"].value
    run = pipeline.mlflow.client().get_run(versions[0].run_id)
    assert run.data.params.get("dataset_version") == dataset_version


# Every check of the project, with the outcome this fixed-seed run must give: PASS, or the severity of the
# failure. A check that starts failing or warning, or a new check nobody listed here, breaks the test.
# labeler_stats checks run once per labeler partition (keyed by crowd name).
EXPECTED_CHECKS = {
    "raw_images:active_items_have_readable_copy": "PASS",
    "raw_images:content_hashes_unique": "PASS",
    "labeling_tasks:gold_never_in_task_data": "PASS",
    "consensus_labels:consensus_coverage": "PASS",
    "consensus_labels:consensus_fleiss_kappa_above_threshold": "PASS",
    "consensus_labels:consensus_labels_in_class_list": "PASS",
    "consensus_labels:no_consensus_for_quarantined_items": "PASS",
    "dataset_splits:dataset_splits_class_proportions_within_tolerance": "PASS",
    "dataset_splits:dataset_splits_every_class_in_every_split": "PASS",
    "dataset_splits:dataset_splits_every_label_in_val_and_test": "PASS",  # single-label: nothing to judge
    "dataset_splits:dataset_splits_frozen_assignments_unchanged": "PASS",
    "dataset_splits:dataset_splits_no_group_in_two_splits": "PASS",
    "dataset_splits:dataset_splits_no_hash_in_two_splits": "PASS",
    "dataset_splits:dataset_splits_no_near_duplicates_in_two_splits": "PASS",
    "dataset_splits:dataset_splits_only_live_labeled_items": "PASS",
    "dataset_splits:dataset_splits_machine_labels_hold_target": "PASS",  # machine labels are off by default
    # A handful of gold answers: the 95% interval of even the expert's accuracy straddles 0.8, so the check warns
    # (not enough evidence) rather than passing or failing on noise (issue 15)
    "labeler_stats:labeler_gold_accuracy_at_least_0_8[e2e_expert]": "WARN",
    "labeler_stats:labeler_not_too_fast[e2e_expert]": "PASS",
    # 0.80 and 0.60 accurate labelers scored on a handful of gold items: uncertain, so the check warns
    "labeler_stats:labeler_gold_accuracy_at_least_0_8[e2e_average]": "WARN",
    "labeler_stats:labeler_not_too_fast[e2e_average]": "PASS",
    "labeler_stats:labeler_gold_accuracy_at_least_0_8[e2e_noisy]": "WARN",
    "labeler_stats:labeler_not_too_fast[e2e_noisy]": "PASS",
    "model_evaluation:macro_f1_not_worse_than_previous_model": "PASS",  # the first model: nothing to regress from
    # 2 epochs on a few dozen training images of 10 digits cannot reach the 0.5 floor; the check must say so
    "model_evaluation:test_macro_f1_above_floor": "ERROR",
}


def _outcome(evaluation: dg.AssetCheckEvaluation) -> str:
    return "PASS" if evaluation.passed else evaluation.severity.value


def test_every_asset_check_gives_its_expected_outcome_and_only_the_named_ones_warn(pipeline: Pipeline) -> None:
    outcomes: dict[str, str] = {}
    for run in pipeline.runs:
        partition = run.dagster_run.tags.get("dagster/partition")
        for evaluation in run.get_asset_check_evaluations():
            key = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            if partition is not None:
                key += f"[{pipeline.labeler_names.get(partition, partition)}]"  # keys are names now
            outcomes[key] = _outcome(evaluation)  # a later run of the same check supersedes the earlier one
    assert outcomes == EXPECTED_CHECKS
    every_check = {f"{k.asset_key.to_user_string()}:{k.name}" for k in pipeline.defs.resolve_asset_graph().asset_check_keys}
    assert {key.split("[")[0] for key in outcomes} == every_check  # none was left unevaluated
