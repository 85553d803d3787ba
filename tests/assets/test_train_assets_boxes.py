"""A box project's model side on the CPU: training_tensors, trained_model, model_evaluation (and its checks), then
prelabels, against a real SQLite label store, a real local MLflow tracking store and an ephemeral Dagster instance.

The data: rendered digit scenes (``boxes.demo_scenes``) inserted as items, their true boxes as consensus answers
(confidence 0.9), splits and a dataset version built by core's ``build_dataset`` with the box kind, as ingest,
consensus_labels and dataset_splits would leave them. The detector is the box kind's trainer (tiny backbone).
"""

import datetime as dt
import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import torch

from labeling_assets.assets.evaluate import model_evaluation
from labeling_assets.assets.prelabel import prelabels
from labeling_assets.assets.train import trained_model, training_tensors
from labeling_assets.checks.evaluate import build_evaluation_checks
from labeling_assets.core.dataset.build import BuildInputs, build_dataset
from labeling_assets.core.dataset.splits import SplitRatios
from labeling_assets.core.labelstudio.tasks import build_payloads
from labeling_assets.core.store.dataset_versions import record_dataset_version
from labeling_assets.core.store.labelstudio_sync import newest_prelabels
from labeling_assets.core.store.schema import LabelStore, consensus_table, items_table, prelabels_table
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.boxes.demo_scenes import SCENE_CLASSES, load_scene_truth, render_digit_scenes
from labeling_assets.core.tasks.boxes.evaluation import BOX_MAP
from labeling_assets.core.tasks.boxes.gold import gold_answer
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.mlflow import CHECKPOINT_ARTIFACT, MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

torch.set_num_threads(2)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
N_SCENES = 48
CANVAS = 96
TRAINER_SETTINGS = {"epochs": 2, "steps_per_epoch": 15, "batch_size": 4, "device": "cpu", "image_size": CANVAS}
NO_LABEL_STUDIO = LabelStudioResource(url="http://127.0.0.1:9", api_key="no-server-in-these-tests")
KIND = task_kind("boxes")


def _insert_box_project(store: LabelStore, folder: Path) -> tuple[str, pd.DataFrame]:
    """Scenes as items, their true boxes as consensus answers, splits and a dataset version; (version, items)."""
    render_digit_scenes(folder, n_images=N_SCENES, canvas=CANVAS, max_digits=2, empty_share=0.1, sizes=(28, 44))
    rows = []
    for name, boxes in sorted(load_scene_truth(folder).items()):
        data = (folder / name).read_bytes()
        rows.append({"item_id": hashlib.sha256(data).hexdigest(), "uri": str(folder / name), "n": len(data),
                     "label": gold_answer(boxes, float(CANVAS), float(CANVAS))})  # fmt: skip
    frame = pd.DataFrame(rows)
    with store.begin() as conn:
        conn.execute(items_table.insert(), [
            {"item_id": r.item_id, "uri": r.uri, "source_path": r.uri, "width": CANVAS, "height": CANVAS,
             "n_bytes": r.n, "ingested_at": NOW, "status": "active"} for r in frame.itertuples()
        ])  # fmt: skip
        conn.execute(consensus_table.insert(), [
            {"item_id": r.item_id, "version": 1, "label": r.label, "method": "box_em", "confidence": 0.9,
             "n_annotators": 3, "computed_at": NOW} for r in frame.itertuples()
        ])  # fmt: skip
    built = build_dataset(BuildInputs(
        labeled=frame.assign(group_key=None), existing=pd.Series(dtype=object), ratios=SplitRatios(), seed=0,
        phashes=pd.Series(dtype=object), near_duplicate_distance=-1, previous_version=None, task_type="boxes",
        classes=SCENE_CLASSES,
    ))  # fmt: skip
    record_dataset_version(store, built.assignment.frame, built.version, class_weights=built.class_weights,
                           manifest_json=built.manifest_json, card="")  # fmt: skip
    return built.version, frame


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    events = result.asset_materializations_for_node(key)
    assert events, f"{key} was not materialized"
    return {k: v.value for k, v in events[-1].metadata.items()}


@pytest.mark.slow
def test_a_box_project_trains_registers_promotes_and_prelabels_a_detector(
    sqlite_store: LabelStore, data_dir: Path
) -> None:
    store = sqlite_store
    version, frame = _insert_box_project(store, data_dir / "scenes")
    mlflow = MLflowResource(data_dir=str(data_dir))
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "project": ProjectSettings(data_dir=str(data_dir), classes=SCENE_CLASSES, task_type="boxes"),
        "mlflow": mlflow,
        "label_studio": NO_LABEL_STUDIO,
    }
    instance = dg.DagsterInstance.ephemeral()
    run_config = {"ops": {
        "trained_model": {"config": {"trainer_settings": TRAINER_SETTINGS}},
        "model_evaluation": {"config": {"device": "cpu"}},
    }}  # fmt: skip
    result = dg.materialize([training_tensors, trained_model, model_evaluation, *build_evaluation_checks(metric=BOX_MAP, floor=0.0)],
                            resources=resources, instance=instance, run_config=run_config)  # fmt: skip
    assert result.success

    # No tensor cache: the kind's trainer decodes the images itself, and says so.
    tensors = _metadata(result, "training_tensors")
    assert tensors["dataset_version"] == version and tensors["tensor_cache"].startswith("none: a boxes model")
    assert not (data_dir / "tensors").exists()

    # The detector is registered as a version holding its torch-only checkpoint, tagged with its task type.
    name = mlflow.registered_model_name
    trained = _metadata(result, "trained_model")
    assert trained["model_version"] == f"{name}/1" and trained["task_type"] == "boxes"
    assert trained["model"] == "faster_rcnn" and trained["epochs_run"] == 2 and 0.0 <= trained["best_val_map"] <= 1
    (registered,) = mlflow.registered_versions()
    assert registered.tags["task_type"] == "boxes" and registered.tags["dataset_version"] == version
    client = mlflow.client()
    assert CHECKPOINT_ARTIFACT in {a.path for a in client.list_artifacts(registered.run_id, "checkpoint")}
    assert len(client.get_metric_history(registered.run_id, "train_loss")) == 2
    assert len(client.get_metric_history(registered.run_id, "val_map")) == 2
    params = client.get_run(registered.run_id).data.params
    assert params["backbone"] == "tiny" and params["task_type"] == "boxes" and params["dataset_version"] == version
    loaded = mlflow.load_model(registered)
    assert loaded.task_kind == "boxes" and loaded.config is None and loaded.classes == SCENE_CLASSES

    # Scored by COCO mAP on the test split; the first model becomes the champion on that score.
    evaluation = _metadata(result, "model_evaluation")
    n_test = int((frame["item_id"].isin(_split_items(store, version, "test"))).sum())
    assert evaluation["test_items"] == n_test > 0 and evaluation["undecodable_test_items"] == 0
    assert evaluation["test_score_name"] == "test_map" and 0.0 <= evaluation["test_map"] <= 1.0
    assert evaluation["candidate_map"] == pytest.approx(evaluation["test_map"], abs=1e-6)
    assert evaluation["promotion_outcome"] == "first" and "mAP@[.5:.95]" in evaluation["promotion_reason"]
    assert "AP@[.5:.95]" in evaluation["per_class_ap"] and evaluation["scoring_basis"] == "consensus"
    champion = mlflow.champion()
    assert champion is not None and champion.version == 1
    assert champion.tag_float("test_map") == pytest.approx(evaluation["test_map"], abs=1e-5)
    assert "evaluation/per_class_ap.png" in {a.path for a in client.list_artifacts(champion.run_id, "evaluation")}
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["test_map_above_floor"].passed  # the kind's score (mAP) against floor 0
    assert checks["test_map_above_floor"].metadata["test_map"].value == pytest.approx(evaluation["test_map"])
    assert checks["test_map_not_worse_than_previous_model"].passed

    # A second detector is scored against the champion on the same test items, on the same score.
    run_config["ops"]["trained_model"]["config"]["trainer_settings"] = {**TRAINER_SETTINGS, "seed": 1}
    again = dg.materialize([trained_model, model_evaluation], resources=resources, instance=instance,
                           run_config=run_config)  # fmt: skip
    second = _metadata(again, "model_evaluation")
    assert second["model_version"] == f"{name}/2" and second["previous_champion_version"] == f"{name}/1"
    assert second["promotion_outcome"] in ("not_worse", "worse")
    assert second["previous_champion_map"] == pytest.approx(evaluation["test_map"], abs=1e-6)  # same items, same model
    assert second["scoring_items"] == evaluation["scoring_items"]
    champion = mlflow.champion()
    assert champion is not None and champion.version == (2 if second["promoted"] else 1)

    # The champion pre-labels every item with its boxes, stored as JSON; once per item and model version.
    prelabeled = dg.materialize([prelabels], resources=resources, instance=instance,
                                run_config={"ops": {"prelabels": {"config": {"device": "cpu"}}}})  # fmt: skip
    meta = _metadata(prelabeled, "prelabels")
    assert meta["source"] == "model" and meta["model_version"] == champion.label and meta["is_champion"]
    assert meta["items_prelabeled"] == N_SCENES and meta["undecodable_items"] == 0
    assert "mean_boxes_per_image" in meta and "predicted_boxes" in meta
    rows = store.fetch(sa.select(prelabels_table.c.item_id, prelabels_table.c.probs))
    assert len(rows) == N_SCENES
    for row in rows:
        output = row["probs"]
        assert (output["image_width"], output["image_height"]) == (CANVAS, CANVAS)
        assert all(b["label"] in SCENE_CLASSES and 0.0 <= b["score"] <= 1.0 for b in output["boxes"])

    # The queue turns a stored detector output into the Label Studio pre-label, read back as a box answer.
    pending = frame[["item_id", "uri"]].to_dict("records")
    shown = newest_prelabels(store, frame["item_id"].tolist())
    payloads = build_payloads(pending, shown, data_dir, kind=KIND, allow_empty=True)
    for payload in payloads:
        (prediction,) = payload["predictions"]
        assert prediction["model_version"] == champion.label
        answer = KIND.read_answer(prediction["result"])
        assert answer.problem is None and KIND.is_answer(answer.label, SCENE_CLASSES)
    drawn = sum(len(KIND.read_answer(p["predictions"][0]["result"]).label["boxes"]) for p in payloads)
    kept = sum(1 for row in rows for b in row["probs"]["boxes"] if b["score"] >= 0.5)
    assert drawn == kept  # the boxes at the pre-label cut, no more, no fewer


def _split_items(store: LabelStore, version: str, split: str) -> set[str]:
    from labeling_assets.core.store.datasets import current_dataset

    return set(current_dataset(store, version).split(split)["item_id"])
