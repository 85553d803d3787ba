"""The multi-label loop end to end (issue 16): digit grids -> real Label Studio (checkboxes) -> simulated
multi-label crowd -> annotation sensor -> collect -> per-class consensus -> iterative splits -> labeler
stats -> sigmoid training on CPU -> per-label evaluation.

Runs the project's own definitions with a multi-label ProjectSettings, in the order ``scripts/demo --task
multi-label`` runs them, on a SQLite store, and then asserts on what Label Studio, the store and the
instance hold. Small on purpose (a few dozen grids, two labelers per task): every annotation is one POST.
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets.cli.demo_multilabel import markdown_table
from labeling_assets.core.consensus.multilabel import per_class_f1
from labeling_assets.core.ingest.demo_data import GRID_CLASSES, load_truth_sets, render_digit_grids
from labeling_assets.core.label_sets import NONE_OF_THESE
from labeling_assets.core.labelstudio.crowd import SetLabelerSpec
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    items_table,
    latest_consensus_query,
    source_files_table,
)
from labeling_assets.definitions import defs as project_defs
from labeling_assets.local.crowd import CrowdResult, simulate_set_crowd
from labeling_assets.partitions import labelers
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import annotation_sensor
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

N_IMAGES = 48
OVERLAP = 2
CLASSES = list(GRID_CLASSES)
CROWD = [
    SetLabelerSpec("ml_expert", "expert"),
    SetLabelerSpec("ml_average", "average"),
    SetLabelerSpec("ml_lazy", "lazy"),
]


@dataclass
class Loop:
    instance: dg.DagsterInstance
    defs: dg.Definitions
    store: LabelStore
    ls: LabelStudioServer
    project_id: int
    truth: dict[str, list[str]]  # item_id -> true set
    crowd: CrowdResult
    runs: list[dg.ExecuteInProcessResult]

    def metadata(self, asset: str) -> dict[str, Any]:
        event = self.instance.get_latest_materialization_event(dg.AssetKey(asset))
        assert event is not None and event.asset_materialization is not None, asset
        return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def _run(
    defs: dg.Definitions, instance: dg.DagsterInstance, job: str, **kwargs: Any
) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False, **kwargs)
    failures = [
        e.step_failure_data.error.message for e in result.get_step_failure_events() if e.step_failure_data
    ]
    assert result.success, f"{job} failed: {failures}"
    return result


@pytest.fixture(scope="module")
def loop(label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    root = tmp_path_factory.mktemp("multilabel-loop")
    grids = render_digit_grids(root / "grids", n_images=N_IMAGES, cell=16, gold_fraction=0.1, seed=5)
    store = LabelStore(f"sqlite:///{root / 'store.db'}")
    store.migrate()
    data = label_studio.files_root / root.name  # the loop reads the API only: its images need not be served
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "image_source": ImageSourceResource(uri=str(grids.folder), demo_dir=str(grids.folder)),
        "project": ProjectSettings(data_dir=str(data), task_type="multi_label"),
        "label_studio": label_studio.resource(f"multilabel-{root.name}"),
        "mlflow": MLflowResource(data_dir=str(data)),
    }
    defs = dg.Definitions(
        assets=project_defs.assets,
        asset_checks=project_defs.asset_checks,
        jobs=project_defs.jobs,
        sensors=project_defs.sensors,
        resources=resources,
    )
    runs = []
    with dg.DagsterInstance.ephemeral() as instance:
        runs.append(_run(defs, instance, "ingest_job"))
        runs.append(_run(defs, instance, "prelabel_job"))
        queue = {"max_new_tasks": N_IMAGES, "gold_rate": 0.1, "overlap": OVERLAP}
        runs.append(
            _run(defs, instance, "queue_job", run_config={"ops": {"labeling_tasks": {"config": queue}}})
        )
        by_name = load_truth_sets(grids.folder)
        truth = {
            row["item_id"]: by_name[row["path"]]
            for row in store.fetch(sa.select(source_files_table.c.path, source_files_table.c.item_id))
        }
        project_id = resources["label_studio"].find_project_id()
        crowd = simulate_set_crowd(
            label_studio.client(), project_id, CROWD, truth=truth, classes=CLASSES, overlap=OVERLAP, seed=2
        )
        with dg.build_sensor_context(
            instance=instance, resources={"label_studio": resources["label_studio"]}
        ) as ctx:
            tick = annotation_sensor(ctx)
        assert isinstance(tick, dg.SensorResult) and len(tick.run_requests or []) == 1
        runs.append(_run(defs, instance, "collect_job", tags=tick.run_requests[0].tags))
        for key in labelers.get_partition_keys(dynamic_partitions_store=instance):
            runs.append(_run(defs, instance, "labeler_stats_job", partition_key=key))
        runs.append(_run(defs, instance, "quality_job"))
        train = {"epochs": 3, "patience": 3}
        runs.append(
            _run(defs, instance, "train_job", run_config={"ops": {"trained_model": {"config": train}}})
        )
        yield Loop(instance, defs, store, label_studio, project_id, truth, crowd, runs)
    store.dispose()


def test_label_studio_shows_checkboxes_with_none_of_these(loop: Loop) -> None:
    config = loop.ls.client().get_project(loop.project_id)["label_config"]
    assert 'choice="multiple"' in config and f'value="{NONE_OF_THESE}"' in config


def test_every_answer_is_stored_once_as_a_sorted_set_and_none_of_these_as_the_empty_set(loop: Loop) -> None:
    rows = loop.store.fetch(sa.select(annotations_table.c.item_id, annotations_table.c.label))
    assert len(rows) == len(loop.crowd.annotations) == N_IMAGES * OVERLAP
    assert all(isinstance(row["label"], list) and row["label"] == sorted(row["label"]) for row in rows)
    posted = Counter((item, tuple(label)) for _, _, item, _, label in loop.crowd.annotations)
    assert Counter((row["item_id"], tuple(row["label"])) for row in rows) == posted
    assert any(labels == () for _, labels in posted)  # "None of these" was posted, and came back as []


def test_gold_items_hold_their_true_set(loop: Loop) -> None:
    gold = loop.store.fetch(
        sa.select(items_table.c.item_id, items_table.c.gold_label).where(
            items_table.c.gold_label.is_not(None)
        )
    )
    assert len(gold) == round(N_IMAGES * 0.1)
    assert all(row["gold_label"] == loop.truth[row["item_id"]] for row in gold)


def test_consensus_is_a_set_per_item_with_a_probability_per_class_close_to_the_truth(loop: Loop) -> None:
    rows = loop.store.fetch(latest_consensus_query())
    assert len(rows) == N_IMAGES
    for row in rows:
        assert isinstance(row["label"], list)
        assert set(row["probabilities"]) == set(CLASSES)  # marginals: one per class, not summing to 1
        assert all(row["probabilities"][c] > 0.5 for c in row["label"])
    predicted = {row["item_id"]: row["label"] for row in rows}
    scores = per_class_f1(predicted, loop.truth, CLASSES).set_index("class")
    assert scores.loc["micro", "f1"] > 0.8  # an expert, an average and a lazy labeler, two per task


def test_the_splits_keep_every_item_once_with_its_set(loop: Loop) -> None:
    splits = loop.metadata("dataset_splits")
    assert sum(int(splits[f"n_{s}"]) for s in ("train", "val", "test")) == N_IMAGES


def test_the_model_is_evaluated_per_label_on_the_test_split(loop: Loop) -> None:
    evaluation = loop.metadata("model_evaluation")
    assert evaluation["task_type"] == "multi_label"
    assert 0.0 <= float(evaluation["test_macro_auc"]) <= 1.0
    per_label = markdown_table(evaluation["per_label"])
    assert set(per_label) == set(CLASSES)  # a row per class: positives, threshold, counts, F1, AUC, AP
    assert all({"threshold", "AUC", "AP"} <= set(row) for row in per_label.values())


def test_no_blocking_check_failed(loop: Loop) -> None:
    failed = [
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for run in loop.runs
        for e in run.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    # 3 epochs on a few dozen grids cannot reach the evaluation floor; every other check must pass
    assert [f for f in failed if not f.startswith("model_evaluation:")] == []
