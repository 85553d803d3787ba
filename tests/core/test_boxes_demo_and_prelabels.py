"""Box demo data (digit scans placed on a canvas, the truth kept apart) and a detector's boxes as Label Studio
pre-labels with the queue's uncertainty."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeling_assets.core.tasks.boxes.demo_scenes import SCENE_CLASSES, load_scene_truth, render_digit_scenes
from labeling_assets.core.tasks.boxes.geometry import iou_matrix
from labeling_assets.core.tasks.boxes.gold import parse_gold_boxes
from labeling_assets.core.tasks.boxes.labelstudio import NO_OBJECT, read_boxes
from labeling_assets.core.tasks.boxes.prelabels import box_prediction, box_uncertainty


def test_scenes_are_deterministic_and_their_truth_boxes_hold_the_ink(tmp_path: Path) -> None:
    one = render_digit_scenes(tmp_path / "a", n_images=30, gold_fraction=0.2)
    two = render_digit_scenes(tmp_path / "b", n_images=30, gold_fraction=0.2)
    names = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert len(names) == 30 and (one.n_gold, one.n_boxes) == (6, two.n_boxes)
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    truth = load_scene_truth(tmp_path / "a")
    assert sum(len(b) for b in truth.values()) == one.n_boxes and any(not b for b in truth.values())
    inside, outside = [], []
    for name, boxes in truth.items():
        pixels = np.asarray(Image.open(tmp_path / "a" / name), dtype=float)
        mask = np.zeros(pixels.shape, dtype=bool)
        corners = np.array([[b["x0"], b["y0"], b["x1"], b["y1"]] for b in boxes], dtype=float).reshape(-1, 4)
        if len(corners) > 1:
            iou = iou_matrix(corners, corners)
            assert (iou[~np.eye(len(corners), dtype=bool)] == 0).all()  # digits do not overlap
        for b in boxes:
            assert str(b["label"]) in SCENE_CLASSES and 0 <= b["x0"] < b["x1"] <= 160 and 0 <= b["y0"] < b["y1"] <= 160
            box_pixels = pixels[int(b["y0"]) : int(np.ceil(b["y1"])), int(b["x0"]) : int(np.ceil(b["x1"]))]
            inside.append(box_pixels.min())  # some ink in every true box
            top, left = max(int(b["y0"]) - 2, 0), max(int(b["x0"]) - 2, 0)
            mask[top : int(np.ceil(b["y1"])) + 2, left : int(np.ceil(b["x1"])) + 2] = True
        outside.append(pixels[~mask].min() if (~mask).any() else 255.0)
    assert max(inside) < 120 < min(outside)  # ink inside every box, only paper (and noise) away from them


def test_the_gold_file_of_scenes_reads_as_gold_boxes(tmp_path: Path) -> None:
    render_digit_scenes(tmp_path, n_images=20, gold_fraction=0.25)
    with open(tmp_path / "gold.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5
    for row in rows:
        _, reason = parse_gold_boxes(row["label"], SCENE_CLASSES)
        assert reason is None


def test_a_prediction_draws_the_boxes_the_model_is_sure_of_and_scores_the_item() -> None:
    boxes = [{"label": "3", "x0": 16.0, "y0": 32.0, "x1": 48.0, "y1": 80.0, "score": 0.9},
             {"label": "7", "x0": 100.0, "y0": 100.0, "x1": 120.0, "y1": 130.0, "score": 0.3}]  # fmt: skip
    prediction = box_prediction(boxes, 160, 160, "champion-3")
    assert prediction["model_version"] == "champion-3"
    assert prediction["score"] == pytest.approx(0.9 * 0.7)
    (region,) = prediction["result"]
    assert region["score"] == 0.9 and region["value"]["rectanglelabels"] == ["3"]
    answer = read_boxes(prediction["result"]).answer
    assert answer is not None
    assert (answer["boxes"][0]["x"], answer["boxes"][0]["width"]) == pytest.approx((16.0, 32.0))
    nothing = box_prediction(boxes[1:], 160, 160, "champion-3")
    assert nothing["result"][0]["value"]["choices"] == [NO_OBJECT]


def test_uncertainty_is_zero_when_the_model_is_sure_and_grows_with_doubtful_boxes() -> None:
    assert box_uncertainty([]) == 0.0 and box_uncertainty([1.0, 0.0]) == 0.0
    assert box_uncertainty([0.5]) == pytest.approx(0.5)
    assert box_uncertainty([0.9, 0.6]) > box_uncertainty([0.9]) > box_uncertainty([0.99])
