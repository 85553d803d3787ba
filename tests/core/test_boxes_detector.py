"""The box detector core (torch and torchvision only): built from random weights (nothing downloaded), trained by
SGD steps with a per-image weight, and its detections as pixel boxes with class indices from 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from labeling_assets.core.tasks.boxes.detector import ImageBoxes, build_detector, detect, train_detector


def scene(weight: float = 1.0) -> ImageBoxes:
    image = torch.ones(3, 96, 96)
    image[:, 20:60, 30:50] = 0.0  # one dark object
    return ImageBoxes(image, np.array([[30.0, 20.0, 50.0, 60.0]]), np.array([2]), weight)


def test_both_backbones_build_from_random_weights_for_the_classes_plus_background() -> None:
    for backbone in ("tiny", "mobilenet_v3_320"):
        model = build_detector(3, backbone=backbone, image_size=96)
        assert model.roi_heads.box_predictor.cls_score.out_features == 4
    with pytest.raises(ValueError, match="unknown detector backbone"):
        build_detector(3, backbone="resnet152")


def test_a_training_step_is_scaled_by_the_images_confidence() -> None:
    losses = []
    for weight in (1.0, 0.5):
        torch.manual_seed(0)
        model = build_detector(3, image_size=96)
        losses.append(train_detector(model, [scene(weight)], steps=1, batch_size=1, seed=0)[0])
    assert np.isfinite(losses).all() and losses[1] == pytest.approx(0.5 * losses[0], rel=1e-4)


def test_training_changes_the_model_and_detections_are_pixel_boxes_with_classes_from_zero() -> None:
    torch.manual_seed(0)
    model = build_detector(3, image_size=96)
    before = [p.detach().clone() for p in model.parameters()]
    history = train_detector(model, [scene(), scene()], steps=3, batch_size=2)
    assert len(history) == 3 and all(np.isfinite(history))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    (boxes, labels, scores), = detect(model, [scene().image])
    assert boxes.shape[1:] == (4,) and len(boxes) == len(labels) == len(scores)
    assert ((labels >= 0) & (labels < 3)).all() and ((scores >= 0) & (scores <= 1)).all()
    assert (boxes >= 0).all() and (boxes <= 96).all()


def test_sampling_by_weight_draws_images_in_proportion_and_leaves_the_loss_unscaled() -> None:
    doubtful = ImageBoxes(torch.ones(3, 96, 96), np.array([[5.0, 5.0, 25.0, 25.0]]), np.array([0]), 0.0)
    losses = []
    for examples, by_weight in (([scene(1.0)], False), ([doubtful, scene(0.5)], True)):
        torch.manual_seed(0)
        model = build_detector(3, image_size=96)
        losses.append(train_detector(model, examples, steps=1, batch_size=1, seed=0, sample_by_weight=by_weight)[0])
    # the weight-0 image is never drawn, and the drawn one's weight of 0.5 does not scale its loss
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


@pytest.mark.slow  # a Python of its own
def test_the_gpu_checks_detector_throughput_script_runs_on_a_cpu_at_a_tiny_size(tmp_path: Path) -> None:
    """benchmarks/detector_throughput.py (run by benchmarks/gpu_check.sh on a GPU) gives every figure it promises."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "detector_throughput.py"
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(script), "--backbone", "tiny", "--image-size", "64", "--images", "6",
                           "--batch-size", "3", "--steps", "1", "--warmup", "1", "--device", "cpu", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["device"] == "cpu" and figures["backbone"] == "tiny"
    for phase in ("train", "inference"):
        assert figures[f"{phase}_ceiling_images_per_s"] > 0 and figures[f"{phase}_end_to_end_images_per_s"] > 0
        assert f"{phase} " in done.stdout and "img/s end-to-end, ceiling" in done.stdout
