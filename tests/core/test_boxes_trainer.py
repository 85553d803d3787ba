"""The box kind's trainer (``boxes/trainer.py``) and its test-split score (``boxes/evaluation.py``): a detector fitted
on rendered digit scenes finds digits an untrained one does not, its checkpoint is torch-only and loads back to the
same predictions, and the score model_evaluation decides the champion on is pycocotools' COCO mAP of the outputs.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.boxes.demo_scenes import SCENE_CLASSES, load_scene_truth, render_digit_scenes
from labeling_assets.core.tasks.boxes.detector import build_detector
from labeling_assets.core.tasks.boxes.evaluation import detector_map, encode_answers
from labeling_assets.core.tasks.boxes.gold import gold_answer
from labeling_assets.core.tasks.boxes.trainer import TRAINER, training_examples
from labeling_assets.core.tasks.kind import FittedModel, TrainerSettingsError

torch.set_num_threads(2)
KIND = task_kind("boxes")
CANVAS = 96
SMALL = {"device": "cpu", "image_size": CANVAS, "batch_size": 4}


def _rows(folder: Path, n: int, seed: int) -> pd.DataFrame:
    """``n`` rendered scenes as a version's rows: their true boxes the answers, consensus confidence 0.9."""
    render_digit_scenes(folder, n_images=n, canvas=CANVAS, max_digits=2, empty_share=0.1, sizes=(28, 44), seed=seed)
    return pd.DataFrame([
        {"item_id": name, "uri": str(folder / name), "label": gold_answer(boxes, CANVAS, CANVAS), "confidence": 0.9}
        for name, boxes in sorted(load_scene_truth(folder).items())
    ])  # fmt: skip


def _outputs(uris: list[str], fitted: FittedModel) -> Any:
    outputs, failed = TRAINER.predict(fitted, uris)
    assert failed == []
    return encode_answers(outputs)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train (36), val (6) and held-out test (12) scenes, each set rendered apart."""
    root = tmp_path_factory.mktemp("scenes")
    return _rows(root / "train", 36, 0), _rows(root / "val", 6, 1), _rows(root / "test", 12, 2)


@pytest.mark.slow
def test_a_detector_fitted_on_scenes_beats_an_untrained_one_on_held_out_map(
    scenes: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    train, val, test = scenes
    epochs: list[int] = []
    fitted = TRAINER.fit(train, val, SCENE_CLASSES, {**SMALL, "epochs": 4, "steps_per_epoch": 25},
                         on_epoch=lambda r: epochs.append(r.epoch))  # fmt: skip
    assert epochs == [1, 2, 3, 4] and fitted.metrics["epochs_run"] == 4
    best = max(r.metrics["val_map"] for r in fitted.history)
    assert fitted.metrics["best_val_map"] == best  # the best epoch's weights are kept
    assert fitted.history[int(fitted.metrics["best_epoch"]) - 1].metrics["val_map"] == best
    torch.manual_seed(0)
    untrained = FittedModel(build_detector(len(SCENE_CLASSES), image_size=CANVAS), SCENE_CLASSES, fitted.settings)
    truth = KIND.encode(test["label"].tolist(), SCENE_CLASSES)
    uris = test["uri"].tolist()
    trained_map = KIND.test_score(_outputs(uris, fitted), truth, None)
    untrained_map = KIND.test_score(_outputs(uris, untrained), truth, None)
    assert trained_map > untrained_map + 0.05, (trained_map, untrained_map)


def test_a_checkpoint_is_torch_only_loads_back_to_the_same_predictions_and_can_start_a_fit(
    scenes: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, val, _ = scenes
    fitted = TRAINER.fit(train.head(8), val, SCENE_CLASSES, {**SMALL, "epochs": 1, "steps_per_epoch": 2})
    path = tmp_path / "model.pt"
    TRAINER.save(fitted, path)
    saved = torch.load(path, weights_only=True)  # plain values and tensors: no code is unpickled
    assert saved["classes"] == SCENE_CLASSES and saved["settings"]["backbone"] == "tiny"
    loaded = TRAINER.load(path)
    assert (loaded.classes, loaded.settings, loaded.metrics) == (fitted.classes, fitted.settings, fitted.metrics)
    assert [r.metrics for r in loaded.history] == [r.metrics for r in fitted.history]
    uris = val["uri"].tolist()
    assert TRAINER.predict(loaded, uris) == TRAINER.predict(fitted, uris)
    # A fit that starts from the checkpoint (a local file, never a download) starts from its weights: at lr 0 the
    # parameters stay the saved ones.
    again = TRAINER.fit(train.head(4), val.head(0), SCENE_CLASSES,
                        {**SMALL, "epochs": 1, "steps_per_epoch": 1, "lr": 0.0, "weights_path": str(path)})  # fmt: skip
    for (key, a), b in zip(again.model.named_parameters(), fitted.model.parameters(), strict=True):
        assert torch.equal(a.cpu(), b.cpu()), key
    (tmp_path / "other.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception):  # noqa: B017 - torch's own unpickling error for a file that is no checkpoint
        TRAINER.load(tmp_path / "other.pt")


def test_settings_are_the_trainers_own_and_mobilenet_is_selectable(
    scenes: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    train, val, _ = scenes
    with pytest.raises(TrainerSettingsError, match="no setting epochz"):
        TRAINER.fit(train, val, SCENE_CLASSES, {"epochz": 3})
    with pytest.raises(TrainerSettingsError, match="epochs and batch_size must be at least 1"):
        TRAINER.fit(train, val, SCENE_CLASSES, {"epochs": 0})
    with pytest.raises(TrainerSettingsError, match="unknown detector backbone 'resnet152'"):
        TRAINER.fit(train, val, SCENE_CLASSES, {"backbone": "resnet152"})
    fitted = TRAINER.fit(train.head(2), val.head(0), SCENE_CLASSES,
                         {**SMALL, "backbone": "mobilenet_v3_320", "epochs": 1, "steps_per_epoch": 1})  # fmt: skip
    assert fitted.settings["backbone"] == "mobilenet_v3_320" and "best_val_map" not in fitted.metrics  # no val rows


def test_each_image_weighs_by_its_consensus_confidence_and_unreadable_rows_are_left_out(
    scenes: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    train = scenes[0].head(4).copy()
    train["confidence"] = [0.5, np.nan, 1.0, 0.8]
    train.loc[train.index[3], "label"] = "a class, not a box answer"
    said: list[str] = []
    examples = training_examples(train, SCENE_CLASSES, said.append, weighting="image")
    assert [e.weight for e in examples] == [0.5, 1.0, 1.0]  # no confidence: weight 1
    assert len(said) == 1 and "not a box answer" in said[0]
    first = train.iloc[0]
    assert len(examples[0].boxes) == len(first["label"]["boxes"])
    assert tuple(examples[0].image.shape) == (3, CANVAS, CANVAS) and float(examples[0].image.max()) <= 1.0


def test_box_weightings_read_each_boxs_confidence_and_answers_without_one_weigh_one(
    scenes: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    train = scenes[0]
    with_objects = train[[len(a["boxes"]) >= 2 for a in train["label"]]].head(2).copy()
    sure, unsure = (copy.deepcopy(a) for a in with_objects["label"])
    for n, box in enumerate(unsure["boxes"]):
        box["confidence"] = 0.6 if n == 0 else 1.0  # one doubtful box among sure ones
    rows = with_objects.assign(label=[sure, unsure], confidence=[0.7, 0.4])
    n_boxes = len(unsure["boxes"])

    def examples(weighting: str) -> list[Any]:
        return training_examples(rows, SCENE_CLASSES, print, weighting=weighting, min_box_confidence=0.9)

    assert [e.weight for e in examples("none")] == [1.0, 1.0]
    assert [e.weight for e in examples("image")] == [0.7, 0.4]
    # mean_box: an answer stored without box confidences (the first) weighs 1, not its item's confidence
    for weighting in ("mean_box", "sample_mean_box"):
        assert [e.weight for e in examples(weighting)] == pytest.approx([1.0, (0.6 + n_boxes - 1) / n_boxes])
    dropped = examples("drop")
    assert [e.weight for e in dropped] == [1.0, 1.0]
    assert [len(e.boxes) for e in dropped] == [len(sure["boxes"]), n_boxes - 1]  # the 0.6 box is no target
    with pytest.raises(TrainerSettingsError, match="unknown box_weighting 'per_pixel'"):
        TRAINER.fit(train, train, SCENE_CLASSES, {"box_weighting": "per_pixel"})


def _pycocotools_map(outputs: list[dict[str, Any]], answers: list[dict[str, Any]], cat: str | None) -> float:
    """COCOeval written out directly from the same boxes (``cat``: that class only)."""
    categories = {c: n + 1 for n, c in enumerate(SCENE_CLASSES)}
    annotations, detections = [], []
    for image, (output, answer) in enumerate(zip(outputs, answers, strict=True), start=1):
        for box in answer["boxes"]:
            annotations.append({"id": len(annotations) + 1, "image_id": image, "iscrowd": 0,
                                "category_id": categories[box["labels"][0]], "area": box["width"] * box["height"],
                                "bbox": [box["x"], box["y"], box["width"], box["height"]]})  # fmt: skip
        for box in output["boxes"]:
            detections.append({"image_id": image, "category_id": categories[box["label"]], "score": box["score"],
                               "bbox": [box["x0"], box["y0"], box["x1"] - box["x0"], box["y1"] - box["y0"]]})  # fmt: skip
    gt = COCO()
    gt.dataset = json.loads(json.dumps({"images": [{"id": i + 1} for i in range(len(answers))], "annotations": annotations,
                                        "categories": [{"id": i, "name": c} for c, i in categories.items()]}))  # fmt: skip
    gt.createIndex()
    evaluation = COCOeval(gt, gt.loadRes(detections), "bbox")
    if cat is not None:
        evaluation.params.catIds = [categories[cat]]
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return float(evaluation.stats[0])


def test_the_test_score_and_per_class_ap_are_pycocotools_on_the_same_boxes() -> None:
    """Jittered copies of true boxes with made-up scores, some missed, some false: our score and per-class AP are
    what COCOeval says when fed the same boxes by hand."""
    rng = np.random.default_rng(0)
    answers, outputs = [], []
    for _ in range(20):
        boxes = [{"label": str(rng.integers(3)), "x0": float(x), "y0": float(y), "x1": float(x + w), "y1": float(y + h)}
                 for x, y, w, h in rng.uniform([0, 0, 10, 10], [60, 60, 30, 30], size=(int(rng.integers(0, 4)), 4))]  # fmt: skip
        answers.append(gold_answer(boxes, 96.0, 96.0))
        found = [{**b, "x0": b["x0"] + rng.normal(0, 2), "x1": b["x1"] + rng.normal(0, 2), "score": float(rng.random())}
                 for b in boxes if rng.random() < 0.8]  # fmt: skip
        found += [{"label": "1", "x0": 5.0, "y0": 5.0, "x1": 25.0, "y1": 25.0, "score": 0.3}] if rng.random() < 0.3 else []
        outputs.append({"boxes": found, "image_width": 96, "image_height": 96})
    ours = KIND.test_score(encode_answers(outputs), encode_answers(answers), None)
    assert ours == pytest.approx(_pycocotools_map(outputs, answers, None), abs=1e-9) and 0.2 < ours < 1.0
    per_class = detector_map(outputs, answers, SCENE_CLASSES).per_class
    for name in ("0", "1", "2"):
        assert per_class[name] == pytest.approx(_pycocotools_map(outputs, answers, name), abs=1e-9)
    assert np.isnan(per_class["7"])  # no true box of that class: no AP
