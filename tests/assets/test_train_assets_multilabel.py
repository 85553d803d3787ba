"""Multi-label prelabels, training_tensors, trained_model and model_evaluation on the CPU, against a real
SQLite label store, a real local MLflow tracking store and an ephemeral Dagster instance.

The data: 2x2 grids of real scikit-learn digit scans (classes "0".."3"; a class is present when its digit
is in a cell), inserted as items with per-class consensus (a sorted list and per-class marginals), frozen
splits and a multi-label dataset version, as consensus_labels / dataset_splits leave them.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import torch
from PIL import Image

from labeling_assets.assets.dataset import dataset_splits
from labeling_assets.assets.evaluate import model_evaluation
from labeling_assets.assets.prelabel import prelabels
from labeling_assets.assets.train import trained_model, training_tensors
from labeling_assets.checks.evaluate import build_evaluation_checks
from labeling_assets.core.dataset.splits import MANIFEST_FORMAT
from labeling_assets.core.store.datasets import resolve_targets
from labeling_assets.core.store.labelstudio_sync import thresholds_of
from labeling_assets.core.store.multilabel_targets import label_set_indicator, stored_marginal_targets
from labeling_assets.core.store.schema import (
    LabelStore,
    consensus_table,
    dataset_versions_table,
    items_table,
    prelabels_table,
    splits_table,
)
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.assets.test_train_assets import NO_LABEL_STUDIO

torch.set_num_threads(2)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CLASSES = ["0", "1", "2", "3"]
N_GRIDS = 320
TRAIN_CONFIG = {"epochs": 3, "batch_size": 32, "device": "cpu", "patience": 0}
TENSORS_CONFIG = {"image_size": 16, "channels": 1}


def _render_grids(folder: Path) -> pd.DataFrame:
    """N_GRIDS 16x16 PNG grids; each cell holds digit d (d < 4, weight 0.6**d) with probability 0.55."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    weights = 0.6 ** np.arange(4)
    folder.mkdir(parents=True)
    rows = []
    for i in range(N_GRIDS):
        ink = np.zeros((16, 16))
        present: set[str] = set()
        for cell in range(4):
            if rng.random() < 0.55:
                d = int(rng.choice(4, p=weights / weights.sum()))
                scan = rng.choice(np.flatnonzero(digits.target == d))
                r, c = divmod(cell, 2)
                ink[8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = digits.images[scan]
                present.add(str(d))
        gray = (255 - ink * 255 / 16 + rng.normal(0, 4, (16, 16))).clip(0, 255).astype(np.uint8)
        path = folder / f"grid_{i:04d}.png"
        Image.fromarray(gray, mode="L").save(path)
        data = path.read_bytes()
        rows.append(
            {"item_id": hashlib.sha256(data).hexdigest(), "label": sorted(present), "path": str(path)}
        )
    frame = pd.DataFrame(rows)
    # 70/15/15 in order, except that no test grid shows a "3": its test AUC is undefined, not a crash.
    split = np.array(["train" if i % 20 < 14 else "val" if i % 20 < 17 else "test" for i in range(N_GRIDS)])
    has_three = frame["label"].map(lambda s: "3" in s).to_numpy()
    split[(split == "test") & has_three] = "train"
    frame["split"] = split
    return frame


def _insert(store: LabelStore, frame: pd.DataFrame, *, marginals: bool, version: bool = True) -> str:
    """Items, per-class consensus (with marginals 0.9 / 0.1 when ``marginals``), and unless ``version`` is
    False the frame's splits and a dataset version (dataset_splits then makes them)."""
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [
                {"item_id": r.item_id, "uri": r.path, "source_path": r.path, "width": 16, "height": 16,
                 "n_bytes": Path(r.path).stat().st_size, "ingested_at": NOW, "status": "active"}
                for r in frame.itertuples()
            ],
        )  # fmt: skip
        conn.execute(
            consensus_table.insert(),
            [
                {"item_id": r.item_id, "version": 1, "label": list(r.label),
                 "method": "dawid_skene" if marginals else "majority", "confidence": 0.9, "n_annotators": 3,
                 "computed_at": NOW,
                 "probabilities": {c: 0.9 if c in r.label else 0.1 for c in CLASSES} if marginals else None}
                for r in frame.itertuples()
            ],
        )  # fmt: skip
        version = hashlib.sha256(
            json.dumps(frame[["item_id", "split"]].values.tolist()).encode()
        ).hexdigest()[:16]
        conn.execute(
            splits_table.insert(),
            [
                {"item_id": r.item_id, "split": r.split, "dataset_version": version, "assigned_at": NOW}
                for r in frame.itertuples()
            ],
        )
        # The multi-label manifest contract: label = sorted list per item.
        manifest = {"format": MANIFEST_FORMAT, "previous_version": None, "task_type": "multi_label",
                    "classes": CLASSES, "item_id": frame["item_id"].tolist(),
                    "label": [list(s) for s in frame["label"]], "split": frame["split"].tolist()}  # fmt: skip
        conn.execute(
            dataset_versions_table.insert().values(
                dataset_version=version, created_at=NOW, n_items=len(frame), manifest=manifest
            )
        )
    return str(version)


@pytest.fixture
def setup(sqlite_store: LabelStore, data_dir: Path) -> tuple[LabelStore, dict, pd.DataFrame]:
    frame = _render_grids(data_dir / "grids")
    resources = {
        "label_store": LabelStoreResource(url=sqlite_store.url),
        "project": ProjectSettings(data_dir=str(data_dir), classes=CLASSES, task_type="multi_label"),
        "mlflow": MLflowResource(data_dir=str(data_dir)),
        "label_studio": NO_LABEL_STUDIO,
    }
    return sqlite_store, resources, frame


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    events = result.asset_materializations_for_node(key)
    assert events, f"{key} was not materialized"
    return {k: v.value for k, v in events[-1].metadata.items()}


@pytest.mark.slow
def test_a_multi_label_project_prelabels_trains_evaluates_and_prelabels_with_per_class_sigmoids(
    setup: tuple[LabelStore, dict, pd.DataFrame],
) -> None:
    store, resources, frame = setup
    instance = dg.DagsterInstance.ephemeral()
    mlflow = resources["mlflow"]
    version = _insert(store, frame, marginals=True)
    gold = frame[frame["split"] == "test"].head(10)  # hidden gold sets: the champion is decided on them
    with store.begin() as conn:
        for r in gold.itertuples():
            conn.execute(
                items_table.update()
                .where(items_table.c.item_id == r.item_id)
                .values(gold_label=list(r.label))
            )

    # 1. Consensus sets but no model: the per-class pixel baseline pre-labels every item.
    meta = _metadata(dg.materialize([prelabels], resources=resources, instance=instance), "prelabels")
    assert meta["source"] == "baseline" and meta["model_version"].startswith("baseline-setlogreg")
    assert meta["items_prelabeled"] == N_GRIDS and 0.0 < meta["mean_binary_entropy"] <= 1.0
    baseline_version = meta["model_version"]

    # 2. Tensors -> model (soft per-class marginals) -> evaluation.
    run_config = {
        "ops": {
            "training_tensors": {"config": TENSORS_CONFIG},
            "trained_model": {"config": {**TRAIN_CONFIG, "multi_label_loss": "bce", "targets": "auto"}},
            "model_evaluation": {"config": {"device": "cpu", "min_gold_test_items": 5}},
        }
    }
    result = dg.materialize(
        [training_tensors, trained_model, model_evaluation, *build_evaluation_checks(floor=0.0)],
        resources=resources,
        instance=instance,
        run_config=run_config,
    )
    assert result.success
    tensors = _metadata(result, "training_tensors")
    train_sets = frame[frame["split"] == "train"]["label"]
    assert tensors["dataset_version"] == version and tensors["train_images"] == len(train_sets)
    # The cache counts positives per class (a grid counts once for every digit it shows).
    assert f"| 0 | {sum('0' in s for s in train_sets)} |" in tensors["class_counts"]
    trained = _metadata(result, "trained_model")
    assert trained["targets"] == "soft"  # every item has a Dawid-Skene marginal
    # The thresholds are shown by class name, not as a bare list of numbers.
    assert list(trained["thresholds"]) == CLASSES and trained["best_val_macro_auc"] > 0.5
    evaluation = _metadata(result, "model_evaluation")
    assert evaluation["task_type"] == "multi_label" and evaluation["test_macro_auc"] > 0.7  # chance: 0.5
    assert evaluation["labels_with_undefined_auc"] == ["3"]  # no test grid shows a "3"
    assert "| 3 | 0 |" in evaluation["per_label"] and "undefined" in evaluation["per_label"]
    assert "per-label ROC-AUC and AP" in evaluation["per_label_auc_ap"]
    assert "Grad-CAM" in evaluation["gradcam"] and sum(evaluation["gradcam_items"].values()) > 0  # per class logit
    assert 0.0 <= evaluation["test_hamming_loss"] <= 1.0 and evaluation["promotion_outcome"] == "first"
    # The release gates measured the multi-label model too (both gates off by default: nothing held back).
    assert evaluation["release_gates"] == "passed" and evaluation["latency_cpu_p95_ms"] > 0.0
    assert (
        evaluation["scoring_basis"] == "gold"
        and evaluation["gold_test_items"] == evaluation["scoring_items"] == 10
    )
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"test_macro_f1_above_floor": True, "macro_f1_not_worse_than_previous_model": True}

    # MLflow: the thresholds travel with the registered version; the bar plot and ROC data with the run.
    champion = mlflow.champion()
    assert champion is not None and champion.tags["task_type"] == "multi_label"
    assert json.loads(champion.tags["thresholds"]) == pytest.approx(trained["thresholds"], abs=1e-4)
    client = mlflow.client()
    artifacts = {a.path for a in client.list_artifacts(champion.run_id, "evaluation")}
    assert {"evaluation/per_label_auc_ap.png", "evaluation/roc_curves.json"} <= artifacts
    run = client.get_run(champion.run_id)
    assert "test_auc_0" in run.data.metrics and "test_auc_3" not in run.data.metrics
    assert run.data.params["task_kind"] == "multi_label" and run.data.params["pos_weight"] == "inverse_frequency"

    # 3. The champion pre-labels: per-class sigmoids (not a distribution) and the thresholds it decides by.
    meta = _metadata(dg.materialize([prelabels], resources=resources, instance=instance), "prelabels")
    assert meta["source"] == "model" and meta["items_prelabeled"] == N_GRIDS
    assert meta["thresholds"] == pytest.approx(trained["thresholds"], abs=1e-4)
    rows = store.fetch(sa.select(prelabels_table).where(prelabels_table.c.model_version == champion.label))
    sums = [sum(r["probs"].values()) for r in rows]
    assert set(rows[0]["probs"]) == set(CLASSES) and max(abs(s - 1.0) for s in sums) > 0.1
    # The store keeps the champion's thresholds for the queue's pre-fill; the baseline has none (pre-fills at 0.5).
    kept = thresholds_of(store, [champion.label, baseline_version])
    assert list(kept) == [champion.label] and kept[champion.label] == pytest.approx(trained["thresholds"], abs=1e-4)


@pytest.mark.slow
def test_a_single_label_tensor_cache_is_refused_by_a_multi_label_project(
    setup: tuple[LabelStore, dict, pd.DataFrame],
) -> None:
    store, resources, frame = setup
    _insert(store, frame, marginals=False)
    single = {
        **resources,
        "project": ProjectSettings(data_dir=resources["project"].data_dir, classes=CLASSES),
    }
    # A single-label project cannot even read the label sets into a cache: a clear failure.
    with pytest.raises(dg.Failure, match="labels not in the project's class list"):
        dg.materialize([training_tensors], resources=single,
                       run_config={"ops": {"training_tensors": {"config": TENSORS_CONFIG}}})  # fmt: skip
    dg.materialize([training_tensors], resources=resources,
                   run_config={"ops": {"training_tensors": {"config": TENSORS_CONFIG}}})  # fmt: skip
    with pytest.raises(dg.Failure, match="holds multi_label labels but the project is single_label"):
        dg.materialize([trained_model], resources=single,
                       run_config={"ops": {"trained_model": {"config": TRAIN_CONFIG}}})  # fmt: skip


def test_stored_marginals_are_used_only_where_the_consensus_set_still_matches(
    sqlite_store: LabelStore,
) -> None:
    def row(item: str, label: list[str], method: str, probs: dict | None, version: int = 1) -> dict:
        return {"item_id": item, "version": version, "label": label, "method": method, "confidence": 0.7,
                "n_annotators": 3, "computed_at": NOW, "probabilities": probs}  # fmt: skip

    with sqlite_store.begin() as conn:
        conn.execute(
            consensus_table.insert(),
            [
                row("a", ["1"], "dawid_skene", {"0": 0.2, "1": 0.7, "2": 0.1}),
                row("b", ["0"], "dawid_skene", {"0": 0.8}),
                row("b", ["0", "2"], "dawid_skene", {"0": 0.8, "2": 0.6}, version=2),  # relabeled since
                row("c", [], "dawid_skene", {"0": 0.1, "wolf": 0.3}),  # a class not in the list
                row("d", [], "majority", {"0": 0.33, "1": 0.0, "2": 0.0}),  # vote shares
            ],
        )
    classes = ["0", "1", "2"]
    indicator = label_set_indicator([["1"], ["0"], [], [], ["2"]], classes)
    stored = stored_marginal_targets(sqlite_store, ["a", "b", "c", "d", "e"], indicator, classes)
    expected = [[0.2, 0.7, 0.1], [1, 0, 0], [0, 0, 0], [0.33, 0, 0], [0, 0, 1]]
    np.testing.assert_allclose(stored.targets, expected, atol=1e-6)
    assert stored.missing == 3 and stored.not_posterior == 1  # b, c, e; d is majority vote shares
    assert resolve_targets("auto", stored) == "hard" and resolve_targets("soft", stored) == "soft"
    with pytest.raises(ValueError, match="not a label set"):
        label_set_indicator(["0"], classes)  # a bare class name in a multi-label manifest


@pytest.mark.slow
def test_the_tensor_cache_reads_the_label_sets_of_a_version_made_by_dataset_splits(
    setup: tuple[LabelStore, dict, pd.DataFrame],
) -> None:
    store, resources, frame = setup
    instance = dg.DagsterInstance.ephemeral()
    _insert(store, frame, marginals=True, version=False)
    made = dg.materialize([dataset_splits], resources=resources, instance=instance)
    version = made.asset_materializations_for_node("dataset_splits")[0].metadata["dataset_version"].value
    result = dg.materialize(
        [training_tensors], resources=resources, instance=instance,
        run_config={"ops": {"training_tensors": {"config": TENSORS_CONFIG}}},
    )  # fmt: skip
    tensors = _metadata(result, "training_tensors")
    assert tensors["dataset_version"] == version
    folder = Path(tensors["cache_folder"])
    cached = json.loads((folder / "meta.json").read_text())
    assert cached["task_type"] == "multi_label"
    labels = np.load(folder / "train.labels.npy")
    items = json.loads((folder / "train.items.json").read_text())
    truth = dict(zip(frame["item_id"], frame["label"], strict=True))
    # Row by row the cache holds each training item's consensus set as 0/1 flags in class order.
    assert labels.shape == (len(items), 4)
    assert [sorted(c for c, flag in zip(CLASSES, row, strict=True) if flag) for row in labels] == [
        truth[i] for i in items
    ]
