"""prelabels, training_tensors, trained_model, model_evaluation and its checks on the CPU, against a real
SQLite label store, a real local MLflow tracking store and an ephemeral Dagster instance.

The data: ~300 demo digits rendered to PNG, inserted as items with consensus labels, frozen splits and a
dataset version, as ingest / consensus_labels / dataset_splits would leave them.
"""

import datetime as dt
import hashlib
from dataclasses import replace
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import torch

from labeling_assets.assets.dataset import dataset_splits
from labeling_assets.assets.evaluate import model_evaluation
from labeling_assets.assets.prelabel import prelabels
from labeling_assets.assets.train import TrainedModelConfig, trained_model, training_tensors
from labeling_assets.checks import dataset as dataset_checks
from labeling_assets.checks.evaluate import build_evaluation_checks, evaluation_checks_for
from labeling_assets.constants import DEMO_CLASSES
from labeling_assets.core.dataset.splits import manifest_to_json, manifest_version
from labeling_assets.core.ingest import demo_data
from labeling_assets.core.store import history
from labeling_assets.core.store.datasets import gold_label_indices, resolve_targets, stored_soft_targets
from labeling_assets.core.store.schema import (
    LabelStore,
    consensus_table,
    dataset_versions_table,
    items_table,
    prelabels_table,
    splits_table,
)
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.boxes.evaluation import BOX_MAP
from labeling_assets.core.tasks.kind import MACRO_F1
from labeling_assets.core.training.cli import build_parser, config_from_args
from labeling_assets.core.training.config import (
    DEFAULTS,
    MIN_STEPS_PER_EPOCH,
    effective_batch_size,
)
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

torch.set_num_threads(2)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
N_DIGITS = 300
TRAIN_CONFIG = {"epochs": 2, "batch_size": 32, "device": "cpu", "patience": 0}
TENSORS_CONFIG = {"image_size": 16, "channels": 1}
# model_evaluation hands a new champion over to Label Studio's open tasks; these tests run without a server (the
# promotion goes on, the metadata says why nothing was handed over; tests/integration/test_champion.py has one).
NO_LABEL_STUDIO = LabelStudioResource(url="http://127.0.0.1:9", api_key="no-server-in-these-tests")
DATASET_CHECKS = [
    dataset_checks.dataset_splits_no_hash_in_two_splits,
    dataset_checks.dataset_splits_no_group_in_two_splits,
    dataset_checks.dataset_splits_class_proportions_within_tolerance,
    dataset_checks.dataset_splits_frozen_assignments_unchanged,
]


def _insert_items(store: LabelStore, folder: Path) -> pd.DataFrame:
    """Demo digits as active items; returns item_id, label, path."""
    demo = demo_data.render_digits(folder, size=16, limit=N_DIGITS)
    truth = demo_data.load_truth(demo.folder)
    rows = []
    for name, label in sorted(truth.items()):
        path = demo.folder / name
        data = path.read_bytes()
        rows.append(
            {"item_id": hashlib.sha256(data).hexdigest(), "label": label, "path": str(path), "n": len(data)}
        )
    frame = pd.DataFrame(rows)
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [
                {
                    "item_id": r.item_id,
                    "uri": r.path,
                    "source_path": r.path,
                    "width": 16,
                    "height": 16,
                    "n_bytes": r.n,
                    "ingested_at": NOW,
                    "status": "active",
                }
                for r in frame.itertuples()
            ],
        )
    return frame


def _insert_consensus(store: LabelStore, frame: pd.DataFrame) -> None:
    """One consensus row (version 1) per item, as consensus_labels would leave it."""
    with store.begin() as conn:
        conn.execute(
            consensus_table.insert(),
            [
                {
                    "item_id": r.item_id,
                    "version": 1,
                    "label": r.label,
                    "method": "majority",
                    "confidence": 1.0,
                    "n_annotators": 3,
                    "computed_at": NOW,
                }
                for r in frame.itertuples()
            ],
        )


def _stratified_split(labels: pd.Series) -> list[str]:
    """14 train, 3 val, 3 test of every 20 items of a class, in order."""
    rank = labels.groupby(labels).cumcount() % 20
    return ["train" if r < 14 else "val" if r < 17 else "test" for r in rank]


def _insert_dataset(store: LabelStore, frame: pd.DataFrame) -> str:
    """Consensus labels, a stratified 70/15/15 split (unless ``frame`` names one) and a dataset version."""
    frame = frame.copy()
    if "split" not in frame:
        frame["split"] = _stratified_split(frame["label"])
    version = manifest_version(frame)
    _insert_consensus(store, frame)
    with store.begin() as conn:
        conn.execute(
            splits_table.insert(),
            [
                {"item_id": r.item_id, "split": r.split, "dataset_version": version, "assigned_at": NOW}
                for r in frame.itertuples()
            ],
        )
        conn.execute(
            dataset_versions_table.insert().values(
                dataset_version=version,
                created_at=NOW,
                n_items=len(frame),
                manifest=manifest_to_json(frame, previous_version=None, extra={}),
            )
        )
    return version


def _store_posteriors(store: LabelStore) -> None:
    """A Dawid-Skene-like posterior on every consensus row: 0.82 on its label, the rest spread evenly."""
    rows = store.fetch(sa.select(consensus_table.c.id, consensus_table.c.label))
    with store.begin() as conn:
        conn.execute(
            consensus_table.update()
            .where(consensus_table.c.id == sa.bindparam("row_id"))
            .values(method="dawid_skene", probabilities=sa.bindparam("probs")),
            [
                {"row_id": r["id"], "probs": {c: 0.82 if c == r["label"] else 0.02 for c in DEMO_CLASSES}}
                for r in rows
            ],
        )


@pytest.fixture
def setup(sqlite_store: LabelStore, data_dir: Path) -> tuple[LabelStore, dict, pd.DataFrame]:
    frame = _insert_items(sqlite_store, data_dir / "demo")
    resources = {
        "label_store": LabelStoreResource(url=sqlite_store.url),
        "project": ProjectSettings(data_dir=str(data_dir), classes=DEMO_CLASSES),
        "mlflow": MLflowResource(data_dir=str(data_dir)),
        "label_studio": NO_LABEL_STUDIO,
    }
    return sqlite_store, resources, frame


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    events = result.asset_materializations_for_node(key)
    assert events, f"{key} was not materialized"
    return {k: v.value for k, v in events[-1].metadata.items()}


@pytest.mark.slow
def test_train_evaluate_and_prelabel_end_to_end_on_cpu(setup: tuple[LabelStore, dict, pd.DataFrame]) -> None:
    store, resources, frame = setup
    instance = dg.DagsterInstance.ephemeral()
    mlflow = resources["mlflow"]

    # 1. Nothing to learn from yet: no model, no consensus -> no pre-labels, and the reason says why.
    result = dg.materialize([prelabels], resources=resources, instance=instance)
    meta = _metadata(result, "prelabels")
    assert meta["source"] == "none" and "consensus labels" in meta["reason"]
    assert store.count(prelabels_table) == 0

    # 2. Consensus exists but no model: the pixel baseline pre-labels every item.
    version = _insert_dataset(store, frame)
    result = dg.materialize([prelabels], resources=resources, instance=instance)
    meta = _metadata(result, "prelabels")
    assert meta["source"] == "baseline" and meta["items_prelabeled"] == N_DIGITS
    baseline_version = meta["model_version"]
    assert baseline_version.startswith("baseline-logreg")

    # 3. Tensors -> model -> evaluation, twice (the second run is compared with the first).
    stale_cache = Path(resources["project"].data_dir) / "tensors" / "0ld-16px-1c"
    stale_cache.mkdir(parents=True)
    (stale_cache / "meta.json").write_text("{}")
    checks = build_evaluation_checks(floor=0.3)
    run_config = {
        "ops": {
            "training_tensors": {"config": TENSORS_CONFIG},
            "trained_model": {"config": TRAIN_CONFIG},
            # The size gate against the champion: the first model has none to be measured against; the second,
            # the same small CNN, is 100% of it and must stay challenger whatever it scores.
            "model_evaluation": {"config": {"device": "cpu", "max_size_ratio_to_baseline": 0.5, "latency_runs": 5}},
        }
    }
    for seed in (0, 1):
        if seed == 1:  # the second run finds a stored Dawid-Skene posterior for every item: soft targets
            _store_posteriors(store)
        # The second run trains under torchrun: 2 DDP processes (gloo on the CPU), as on a multi-GPU node.
        processes = {"nproc_per_node": 2} if seed == 1 else {}
        run_config["ops"]["trained_model"]["config"] = {**TRAIN_CONFIG, "seed": seed, **processes}
        result = dg.materialize(
            [training_tensors, trained_model, model_evaluation, *checks],
            resources=resources,
            instance=instance,
            run_config=run_config,
        )
        assert result.success
    tensors = _metadata(result, "training_tensors")
    assert tensors["dataset_version"] == version
    assert tensors["train_images"] == 240 and tensors["val_images"] == 30  # 14 + 3 of every 20 per class
    assert not stale_cache.exists()  # caches of other dataset versions are deleted
    trained = _metadata(result, "trained_model")
    assert trained["model_version"] == f"{mlflow.registered_model_name}/2"
    assert trained["device"] == "cpu" and trained["backbone"] == "small_cnn" and trained["epochs_run"] == 2
    assert trained["targets"] == "soft" and trained["processes"] == 2
    evaluation = _metadata(result, "model_evaluation")
    assert evaluation["model_version"] == f"{mlflow.registered_model_name}/2"
    # The first model became the champion; the second was scored against it on the same test items.
    assert evaluation["previous_champion_version"] == f"{mlflow.registered_model_name}/1"
    assert evaluation["scoring_basis"] == "consensus" and evaluation["gold_test_items"] == 0
    assert evaluation["scoring_items"] == evaluation["test_items"]
    champion = mlflow.champion()
    assert champion is not None
    assert champion.label == evaluation["champion_model_version"]
    assert champion.version == 1 and not evaluation["promoted"] and evaluation["alias"] == "challenger"
    assert evaluation["release_gates"].startswith("failed: size") and "100% of the baseline" in evaluation["release_gates"]
    assert evaluation["latency_cpu_p95_ms"] >= evaluation["latency_cpu_p50_ms"] > 0.0
    assert evaluation["state_dict_bytes"] > evaluation["parameter_bytes"] > 0
    assert evaluation["test_items"] == len(frame) - tensors["train_images"] - tensors["val_images"]
    assert 0.0 <= evaluation["test_macro_f1"] <= 1.0 and "confusion matrix" in evaluation["confusion_matrix"]
    # Grad-CAM of a sample of test items: one grid in the metadata and on the model's MLflow run (docs/model.md).
    assert "Grad-CAM" in evaluation["gradcam"] and 0 < sum(evaluation["gradcam_items"].values()) <= 16
    run_id = mlflow.latest_version().run_id
    assert "evaluation/gradcam.png" in {a.path for a in mlflow.client().list_artifacts(run_id, "evaluation")}
    check_results = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(check_results) == {"test_macro_f1_above_floor", "macro_f1_not_worse_than_previous_model"}
    regression = check_results["macro_f1_not_worse_than_previous_model"]
    assert regression.severity == dg.AssetCheckSeverity.WARN
    assert regression.passed is evaluation["promoted"]
    assert regression.metadata["previous_champion_version"].value == f"{mlflow.registered_model_name}/1"
    floor = check_results["test_macro_f1_above_floor"]
    assert floor.passed == (evaluation["test_macro_f1"] >= 0.3)

    # The MLflow runs hold the dataset version, per-epoch metrics, the model and the registered versions.
    client = mlflow.client()
    runs = client.search_runs([mlflow.experiment_id()], order_by=["attributes.start_time ASC"])
    assert len(runs) == 2
    # targets=auto: hard labels while the consensus rows had no probabilities, then the posterior.
    assert [r.data.params["targets"] for r in runs] == ["hard", "soft"]
    assert [r.data.params["items_without_probabilities"] for r in runs] == ["240", "0"]
    for run in runs:
        assert run.data.params["dataset_version"] == version
        assert run.data.tags["dagster_run_id"]
        assert len(client.get_metric_history(run.info.run_id, "val_macro_f1")) == 2
        # The dataset's lineage travels with the model: its diff (the first version: every item added) and tags.
        assert run.data.tags["dataset_items_added"] == str(N_DIGITS) and run.data.tags["dataset_tags"] == ""
        assert {"dataset_diff.md", "dataset_diff.json"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    assert [m["mlflow_run_id"] for m in history.models_trained_on(store, version)] == [r.info.run_id for r in runs]
    assert "test_macro_f1" in runs[-1].data.metrics
    versions = mlflow.registered_versions()
    assert [v.version for v in versions] == [2, 1]
    assert versions[0].tags["dataset_version"] == version
    assert versions[0].tag_float("test_macro_f1") == pytest.approx(evaluation["test_macro_f1"], abs=1e-5)
    # The gates' figures and verdict travel with the version: the tags, and metrics on its run.
    assert versions[0].tags["promotion"] == "challenger" and versions[0].tags["release_gates"] == evaluation["release_gates"]
    assert "release gates" in versions[0].tags["promotion_reason"]
    assert versions[0].tags["state_dict_bytes"] == str(evaluation["state_dict_bytes"])
    assert versions[1].tags["release_gates"].startswith("passed (no size baseline")
    assert runs[-1].data.metrics["latency_cpu_p95_ms"] == pytest.approx(evaluation["latency_cpu_p95_ms"])
    artifacts = {a.path for a in client.list_artifacts(versions[0].run_id, "evaluation")}
    assert "evaluation/confusion_matrix.png" in artifacts

    # 4. A champion exists: pre-labels now come from it, once per item and model version.
    result = dg.materialize([prelabels], resources=resources, instance=instance)
    meta = _metadata(result, "prelabels")
    assert meta["source"] == "model" and meta["model_version"] == champion.label and meta["is_champion"]
    assert meta["items_prelabeled"] == N_DIGITS
    again = _metadata(dg.materialize([prelabels], resources=resources, instance=instance), "prelabels")
    assert again["items_prelabeled"] == 0 and again["items_already_prelabeled"] == N_DIGITS
    rows = store.fetch(
        sa.select(prelabels_table).where(prelabels_table.c.model_version == meta["model_version"])
    )
    assert len(rows) == N_DIGITS
    assert set(rows[0]["probs"]) == set(DEMO_CLASSES)
    assert sum(rows[0]["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert store.count(prelabels_table, prelabels_table.c.model_version == baseline_version) == N_DIGITS


def test_trained_model_without_a_tensor_cache_fails_clearly(
    setup: tuple[LabelStore, dict, pd.DataFrame],
) -> None:
    store, resources, frame = setup
    _insert_dataset(store, frame)
    with pytest.raises(dg.Failure, match="materialize training_tensors first"):
        dg.materialize(
            [trained_model],
            resources=resources,
            run_config={"ops": {"trained_model": {"config": TRAIN_CONFIG}}},
        )


def test_training_tensors_reject_labels_outside_the_class_list(
    setup: tuple[LabelStore, dict, pd.DataFrame],
) -> None:
    store, resources, frame = setup
    _insert_dataset(store, frame)
    resources = {
        **resources,
        "project": ProjectSettings(data_dir=resources["project"].data_dir, classes=["0", "1"]),
    }
    with pytest.raises(dg.Failure, match="not in the project's class list"):
        dg.materialize(
            [training_tensors],
            resources=resources,
            run_config={"ops": {"training_tensors": {"config": TENSORS_CONFIG}}},
        )


def test_training_tensors_need_a_dataset_version(setup: tuple[LabelStore, dict, pd.DataFrame]) -> None:
    _, resources, _ = setup
    with pytest.raises(dg.Failure, match="materialize dataset_splits first"):
        dg.materialize([training_tensors], resources=resources)


def _evaluation_with(metadata: dict[str, float | str | bool]) -> dg.AssetsDefinition:
    """A stand-in model_evaluation that only reports the given metadata (the checks read nothing else)."""

    @dg.asset(name="model_evaluation")
    def fake_evaluation() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata=metadata)

    return fake_evaluation


def test_the_champion_check_reports_the_decision_with_both_scores_the_basis_and_n() -> None:
    reason = (
        "clf/2 scores 0.7000 macro-F1 on 40 gold-labeled test items, the champion clf/1 scores 0.8000 on "
        "the same items: worse by more than the tolerance 0.01, so it stays challenger and clf/1 stays champion"
    )
    metadata: dict[str, float | str | bool] = {
        "test_macro_f1": 0.75,
        "model_version": "clf/2",
        "promoted": False,
        "alias": "challenger",
        "promotion_reason": reason,
        "candidate_macro_f1": 0.7,
        "previous_champion_version": "clf/1",
        "previous_champion_macro_f1": 0.8,
        "scoring_basis": "gold",
        "scoring_items": 40,
    }
    result = dg.materialize(
        [_evaluation_with(metadata), *build_evaluation_checks(floor=0.5)],
        resources={"project": ProjectSettings()},
        instance=dg.DagsterInstance.ephemeral(),
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    champion = evaluations["macro_f1_not_worse_than_previous_model"]
    assert champion.passed is False and champion.severity == dg.AssetCheckSeverity.WARN
    assert champion.description == reason and champion.metadata["reason"].value == reason
    shown = {key: value.value for key, value in champion.metadata.items()}
    assert shown["candidate_macro_f1"] == 0.7 and shown["previous_champion_macro_f1"] == 0.8
    assert shown["scoring_basis"] == "gold" and shown["scoring_items"] == 40 and shown["alias"] == "challenger"
    assert evaluations["test_macro_f1_above_floor"].passed is True


@pytest.mark.parametrize(
    ("metadata", "champion_passes", "floor_passes"),
    [
        ({"test_macro_f1": 0.40, "promoted": True, "promotion_reason": "first champion"}, True, False),
        ({"test_macro_f1": 0.90, "promoted": True, "promotion_reason": "not worse"}, True, True),
        ({"test_macro_f1": 0.90}, False, True),  # evaluated before champions existed: no decision to report
    ],
)
def test_evaluation_checks_warn_when_the_model_lost_and_fail_below_the_floor(
    metadata: dict, champion_passes: bool, floor_passes: bool
) -> None:
    result = dg.materialize(
        [_evaluation_with({"model_version": "clf/2", **metadata}), *build_evaluation_checks(floor=0.5)],
        resources={"project": ProjectSettings()},
        instance=dg.DagsterInstance.ephemeral(),
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    champion = evaluations["macro_f1_not_worse_than_previous_model"]
    assert champion.passed is champion_passes
    assert champion.severity == dg.AssetCheckSeverity.WARN
    floor = evaluations["test_macro_f1_above_floor"]
    assert floor.passed is floor_passes and floor.severity == dg.AssetCheckSeverity.ERROR


def _floor_check(task_type: str, metadata: dict, project: ProjectSettings) -> dg.AssetCheckEvaluation:
    """The floor check of a project of ``task_type``, as its definitions build it, over ``metadata``."""
    checks = evaluation_checks_for(task_type)
    result = dg.materialize([_evaluation_with(metadata), *checks], resources={"project": project},
                            instance=dg.DagsterInstance.ephemeral())  # fmt: skip
    (floor,) = [e for e in result.get_asset_check_evaluations() if e.check_name.endswith("_above_floor")]
    return floor


def test_a_box_model_is_held_to_the_map_floor_not_to_the_macro_f1_floor() -> None:
    box_project = ProjectSettings(task_type="boxes")
    # 0.35 mAP@[.5:.95] is a working detector; the macro-F1 floor 0.5 failed it (the check read mAP at 0.5).
    floor = _floor_check("boxes", {"test_score_name": "test_map", "test_map": 0.35}, box_project)
    assert floor.check_name == "test_map_above_floor" and floor.passed is True
    assert floor.metadata["floor"].value == BOX_MAP.floor < MACRO_F1.floor
    below = _floor_check("boxes", {"test_score_name": "test_map", "test_map": 0.2}, box_project)
    assert below.passed is False and below.severity == dg.AssetCheckSeverity.ERROR
    # The class kinds keep their check name and the macro-F1 floor.
    classes = _floor_check("single_label", {"test_macro_f1": 0.45}, ProjectSettings(task_type="single_label"))
    assert classes.check_name == "test_macro_f1_above_floor" and classes.passed is False
    assert classes.metadata["floor"].value == 0.5


def test_the_project_settings_override_the_kinds_floor() -> None:
    strict = ProjectSettings(task_type="boxes", test_score_floor=0.4)
    floor = _floor_check("boxes", {"test_score_name": "test_map", "test_map": 0.35}, strict)
    assert floor.passed is False and floor.metadata["floor"].value == 0.4


def test_a_floor_check_without_its_score_fails_and_says_what_was_scored() -> None:
    floor = _floor_check("boxes", {"test_score_name": "test_macro_f1", "test_macro_f1": 0.9},
                         ProjectSettings(task_type="boxes"))  # fmt: skip
    assert floor.passed is False
    assert floor.metadata["reason"].value == "no test_map on the latest materialization (it scored test_macro_f1)"


def test_the_floor_check_names_the_kinds_score_and_says_it_blocks_nothing() -> None:
    (box_floor, box_champion) = evaluation_checks_for("boxes")
    (spec,) = box_floor.check_specs
    assert spec.name == "test_map_above_floor" and not spec.blocking
    assert spec.description is not None and spec.description.startswith("The latest model's test mAP@[.5:.95]")
    assert "Not blocking" in spec.description and "never by this floor" in spec.description
    (champion_spec,) = box_champion.check_specs
    assert "promotion_tolerance of mAP@[.5:.95]" in str(champion_spec.description)


def test_small_training_sets_get_a_batch_size_with_enough_steps_per_epoch() -> None:
    assert effective_batch_size(128, 315) == 31  # 10 steps instead of 3
    assert 315 // effective_batch_size(128, 315) >= MIN_STEPS_PER_EPOCH
    assert effective_batch_size(128, 100_000) == 128  # large sets keep what was asked
    assert effective_batch_size(128, 40) == 16  # never below the floor


def test_stored_soft_targets_use_the_posterior_only_where_it_still_matches_the_label(
    sqlite_store: LabelStore,
) -> None:
    classes = ["cat", "dog", "fox"]

    def row(item: str, label: str, method: str, probs: dict | None, version: int = 1) -> dict:
        return {
            "item_id": item,
            "version": version,
            "label": label,
            "method": method,
            "confidence": 0.7,
            "n_annotators": 3,
            "computed_at": NOW,
            "probabilities": probs,
        }

    with sqlite_store.begin() as conn:
        conn.execute(
            consensus_table.insert(),
            [
                row("a", "dog", "dawid_skene", {"cat": 0.3, "dog": 0.7}),
                row("b", "cat", "dawid_skene", {"cat": 0.6, "dog": 0.3, "fox": 0.1}),
                row("b", "fox", "dawid_skene", {"cat": 0.2, "fox": 0.8}, version=2),  # relabeled since
                row("c", "fox", "dawid_skene", None),  # written before probabilities were stored
                row("d", "cat", "dawid_skene", {"cat": 0.9, "wolf": 0.1}),  # a class not in the list
            ],
        )
    # Item b is versioned with "cat": its newest row says "fox", so its posterior is not used.
    stored = stored_soft_targets(sqlite_store, ["a", "b", "c", "d", "e"], np.array([1, 0, 2, 0, 1]), classes)
    expected = [[0.3, 0.7, 0.0], [1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]]
    np.testing.assert_allclose(stored.targets, expected, atol=1e-6)
    assert stored.missing == 4 and stored.not_posterior == 0
    assert resolve_targets("auto", stored) == "hard"
    assert resolve_targets("soft", stored) == "soft" and resolve_targets("hard", stored) == "hard"

    complete = stored_soft_targets(sqlite_store, ["a"], np.array([1]), classes)
    assert complete.missing == 0 and resolve_targets("auto", complete) == "soft"
    with sqlite_store.begin() as conn:  # vote shares are not a posterior: auto keeps hard labels
        conn.execute(consensus_table.update().where(consensus_table.c.item_id == "a").values(method="majority"))
    shares = stored_soft_targets(sqlite_store, ["a"], np.array([1]), classes)
    assert shares.not_posterior == 1 and resolve_targets("auto", shares) == "hard"
    assert resolve_targets("soft", shares) == "soft"


def test_the_run_config_and_the_command_line_take_every_default_from_train_config() -> None:
    meta = {"classes": ["a", "b"], "image_size": DEFAULTS.image_size, "channels": DEFAULTS.channels}
    expected = replace(DEFAULTS, num_classes=2)
    # A training set large enough that the batch size is not lowered.
    assert TrainedModelConfig().train_config(meta, n_train=1_000_000) == expected
    assert config_from_args(build_parser().parse_args(["--cache", "cache"]), meta) == expected
    assert DEFAULTS.batch_size == 128  # the asset's default since the first release (the CLI said 256)
    # The run config's field names are a public interface: renaming one breaks saved run configs.
    assert set(TrainedModelConfig.model_fields) == {
        "backbone", "head", "epochs", "batch_size", "lr", "weight_decay", "patience", "loss", "sampler",
        "class_weighted_loss", "device", "compile", "weights_path", "hflip", "seed", "cpu_threads", "targets",
        "nproc_per_node", "multi_label_loss", "pos_weight", "multi_label_sampler", "trainer_settings",
        "tier_weights",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("asset", "config"),
    [("trained_model", {**TRAIN_CONFIG, "loss": "hinge"}), ("prelabels", {"source": "oracle"})],
)
@pytest.mark.slow
def test_option_strings_outside_their_choices_are_rejected_before_a_run_starts(
    setup: tuple[LabelStore, dict, pd.DataFrame], asset: str, config: dict
) -> None:
    _, resources, _ = setup
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.materialize(
            [trained_model if asset == "trained_model" else prelabels],
            resources=resources,
            run_config={"ops": {asset: {"config": config}}},
        )


@pytest.mark.parametrize("newer_run_planned", [False, True], ids=["alone", "a-newer-run-planned-the-checks"])
@pytest.mark.slow
def test_a_dataset_version_whose_blocking_checks_failed_is_never_trained_nor_evaluated_on(
    setup: tuple[LabelStore, dict, pd.DataFrame], newer_run_planned: bool
) -> None:
    """Also in the race of issue 26: a newer run has planned the same checks and not run them yet (its
    planned records are then the checks' latest), and the failed version is still the current one."""
    store, resources, frame = setup
    _insert_consensus(store, frame)
    # Plant a leak: two scans of one patient were frozen in train and test before their group was known.
    first, second = frame["item_id"][:2]
    with store.begin() as conn:
        conn.execute(
            items_table.update().where(items_table.c.item_id.in_([first, second])).values(group_key="patient-1")
        )
        conn.execute(
            splits_table.insert(),
            [
                {"item_id": first, "split": "train", "dataset_version": "old", "assigned_at": NOW},
                {"item_id": second, "split": "test", "dataset_version": "old", "assigned_at": NOW},
            ],
        )
    instance = dg.DagsterInstance.ephemeral()
    splits_run = dg.materialize(
        [dataset_splits, *DATASET_CHECKS], resources=resources, instance=instance, raise_on_error=False
    )
    outcome = {e.check_name: e.passed for e in splits_run.get_asset_check_evaluations()}
    assert outcome["dataset_splits_no_group_in_two_splits"] is False
    if newer_run_planned:  # created, not launched: a run in flight that has planned the checks
        job = dg.Definitions(
            assets=[dataset_splits], asset_checks=DATASET_CHECKS, resources=resources
        ).resolve_implicit_global_asset_job_def()
        instance.create_run_for_job(job)
        planned = instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(dg.AssetKey("dataset_splits"), "dataset_splits_no_group_in_two_splits")
        )
        assert planned is not None and planned.status.value == "PLANNED"

    # A later run that selects only the training steps (Dagster's blocking acts within one run only).
    for asset, config in ((training_tensors, TENSORS_CONFIG), (trained_model, TRAIN_CONFIG), (model_evaluation, {})):
        result = dg.materialize(
            [asset],
            resources=resources,
            instance=instance,
            run_config={"ops": {asset.op.name: {"config": config}}},
            raise_on_error=False,
        )
        assert not result.success
        error = str(result.failure_data_for_node(asset.op.name).error)
        assert "failed blocking checks dataset_splits_no_group_in_two_splits" in error
        assert ("no model is evaluated" if asset is model_evaluation else "not trained on") in error
    assert not (Path(resources["project"].data_dir) / "tensors").exists()
    assert resources["mlflow"].registered_versions() == []


def test_gold_labels_of_test_items_are_read_as_class_indices(store: LabelStore) -> None:
    gold = {"a": "dog", "b": ["fox"], "c": ["cat", "dog"], "d": "wolf", "e": None}  # c multi-label, d unknown
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [
                {"item_id": k, "uri": f"/{k}.png", "source_path": f"/{k}.png", "n_bytes": 1, "ingested_at": NOW,
                 "status": "active", "gold_label": g}  # fmt: skip
                for k, g in gold.items()
            ],
        )
    found = gold_label_indices(store, ["e", "d", "c", "b", "a", "missing"], ["cat", "dog", "fox"])
    assert found == [None, None, None, 2, 1, None]


def test_a_newer_dataset_version_made_current_between_the_tensors_and_the_training_step_does_not_fail_it(
    setup: tuple[LabelStore, dict, pd.DataFrame],
) -> None:
    """Issue 26's long run: a collect run made a newer dataset version current between train_job's
    training_tensors and trained_model steps, and trained_model failed ("the tensor cache holds dataset V1 but
    the current version is V2"). It trains on the version its own run decoded; the next retrain takes V2."""
    store, resources, frame = setup
    first = _insert_dataset(store, frame)

    @dg.asset(deps=[training_tensors])
    def a_collect_run_finishes(context: dg.AssetExecutionContext) -> None:
        with store.begin() as conn:  # V2: the same frozen splits in a newer version row, current in the instance
            conn.execute(dataset_versions_table.insert().values(
                dataset_version="v2-newer", created_at=NOW + dt.timedelta(minutes=1), n_items=len(frame),
                manifest=manifest_to_json(frame.assign(split=_stratified_split(frame["label"])), previous_version=first,
                                          extra={})))  # fmt: skip
        context.instance.report_runless_asset_event(
            dg.AssetMaterialization("dataset_splits", metadata={"dataset_version": "v2-newer"})
        )

    result = dg.materialize(
        [training_tensors, a_collect_run_finishes, trained_model],
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"training_tensors": {"config": TENSORS_CONFIG}, "trained_model": {"config": TRAIN_CONFIG}}},
        raise_on_error=False,
    )
    order = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    assert order.index("a_collect_run_finishes") < order.index("trained_model")  # the race, planted
    assert result.success, result.failure_data_for_node("trained_model")
    assert _metadata(result, "trained_model")["dataset_version"] == first


def test_the_champion_check_is_named_after_the_kinds_score_and_says_it_compares_it() -> None:
    """A box project's UI said macro-F1 while the check compared mAP; the class kinds keep their old name."""
    names = {}
    for task_type in ("single_label", "multi_label", "boxes", "text_spans"):
        (_, champion) = evaluation_checks_for(task_type)
        (spec,) = champion.check_specs
        names[task_type] = spec.name
        assert str(spec.description).startswith(f"The newest model's test {task_kind(task_type).test_metric.label} ")
    assert names == {
        "single_label": "macro_f1_not_worse_than_previous_model",
        "multi_label": "macro_f1_not_worse_than_previous_model",
        "boxes": "test_map_not_worse_than_previous_model",
        "text_spans": "test_entity_f1_not_worse_than_previous_model",
    }
