"""Grad-CAM lights the evidence a model uses (docs/model.md): a class decided by a bright patch in one corner
puts most of its map in that corner, and a model whose patch sits elsewhere does not; the evaluation's sample of
items to explain is deterministic and kind-agnostic."""

import io
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from labeling_assets.core.labelstudio.config import config_layout
from labeling_assets.core.labelstudio.review import OVERLAY_KEY, explained_class, review_config, review_task
from labeling_assets.core.store.review_queue import model_disagreements
from labeling_assets.core.store.schema import LabelStore, consensus_table, items_table, utcnow
from labeling_assets.core.store.tables import prelabels_table
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.training.explain import review_overlays
from labeling_assets.core.training.gradcam import (
    NotConvolutional,
    Tile,
    class_activation_maps,
    grid_png,
    mass_share,
    overlay,
    target_layer,
)
from labeling_assets.core.training.gradcam_sample import CORRECT, ERROR, LABEL_ISSUE, one_hot, pick_items
from labeling_assets.core.training.models import Classifier, build_backbone
from tests.core.planted_evidence import BOTTOM_RIGHT, SIZE, TOP_LEFT, one_thread, planted, trained


def patch_class_maps(model: nn.Module, corner: str) -> np.ndarray:
    images, labels = planted(32, corner, seed=2)
    patched = images[labels == 1]
    with one_thread():
        return class_activation_maps(model, patched, [1] * len(patched))


def test_the_class_decided_by_a_corner_patch_lights_that_corner() -> None:
    maps = patch_class_maps(trained("top_left"), "top_left")
    shares = [mass_share(m, *TOP_LEFT) for m in maps]
    assert min(shares) > 0.5, shares  # a quarter of the image holds most of every map (0.25 if spread evenly)
    assert maps.shape == (16, SIZE, SIZE) and maps.min() >= 0.0 and maps.max() == pytest.approx(1.0)


def test_a_model_whose_evidence_is_elsewhere_fails_the_corner_test() -> None:
    """The assertion above can fail: the same test on a model that decides by the opposite corner."""
    maps = patch_class_maps(trained("bottom_right"), "bottom_right")
    assert max(mass_share(m, *TOP_LEFT) for m in maps) < 0.5
    assert min(mass_share(m, *BOTTOM_RIGHT) for m in maps) > 0.5


@pytest.mark.parametrize("name", ["small_cnn", "resnet18", "efficientnet_b0", "mobilenet_v3_small"])
def test_every_backbone_has_a_target_layer_and_gives_one_map_per_image(name: str) -> None:
    torch.manual_seed(0)
    model = Classifier(build_backbone(name, num_classes=3, in_channels=3), [0.5] * 3, [0.25] * 3)
    size = 32 if name == "small_cnn" else 64
    images = np.random.default_rng(0).integers(0, 255, size=(2, 3, size, size), dtype=np.uint8)
    with one_thread():
        maps = class_activation_maps(model, images, [0, 2])
    assert target_layer(model) is not None and maps.shape == (2, size, size)
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1


def test_a_model_without_convolutions_is_refused_with_a_reason() -> None:
    with pytest.raises(NotConvolutional, match="no Conv2d"):
        target_layer(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)))


def test_the_overlay_blends_the_map_on_the_image_and_the_grid_is_a_png() -> None:
    image = np.full((1, 8, 8), 100, dtype=np.uint8)
    cam = np.zeros((8, 8), dtype=np.float32)
    cam[0, 0] = 1.0
    blended = overlay(image, cam, alpha=0.5)
    assert blended.shape == (8, 8, 3)
    assert blended[0, 0, 0] > blended[0, 0, 2]  # the hot pixel is red
    assert blended[7, 7, 2] > blended[7, 7, 0]  # a cold one is blue
    png = grid_png([Tile(image, cam, "error: cat p=0.91\nlabel: dog")] * 5, columns=4, size=32)
    assert Image.open(io.BytesIO(png)).size == (4 * (2 * 32 + 12), 2 * (32 + 34))


def test_the_sample_is_confident_errors_then_label_issues_then_correct_items_per_class() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.95, 0.05], [0.1, 0.9], [0.55, 0.45]])
    truth = one_hot(np.array([1, 1, 1, 0, 0, 1, 0]), 2)
    decided = one_hot(probs.argmax(1), 2)
    picks = pick_items(truth, probs, decided, label_issues={1}, max_items=8, correct_per_class=2)
    assert [(p.index, p.class_index, p.why) for p in picks] == [
        (0, 0, ERROR),  # labeled 1, predicted 0 at 0.9: the most confident error, its predicted class drawn
        (3, 1, ERROR),  # the predicted class, though the missed true class is as wrong (1 - 0.3 = 0.7)
        (2, 0, ERROR),
        (1, 1, LABEL_ISSUE),
        (4, 0, CORRECT),  # class 0's most confident correct item, then class 1's, then each one's next
        (5, 1, CORRECT),
        (6, 0, CORRECT),
    ]
    assert pick_items(truth, probs, decided, label_issues={1}, max_items=8) == picks  # deterministic


def test_a_missed_multi_label_class_is_the_one_explained() -> None:
    truth = np.array([[1, 1, 0], [1, 0, 0]], dtype=bool)
    probs = np.array([[0.9, 0.1, 0.2], [0.8, 0.1, 0.1]])
    decided = probs >= 0.5
    picks = pick_items(truth, probs, decided, max_items=4)
    assert (picks[0].index, picks[0].class_index, picks[0].why) == (0, 1, ERROR)  # class 1 missed at P=0.1
    assert [(p.index, p.class_index) for p in picks[1:]] == [(1, 0)]


def test_the_expert_sees_the_class_the_model_decides_against_the_crowd() -> None:
    assert explained_class({"cat": 0.7, "dog": 0.3}, "dog") == "cat"
    assert explained_class({"cat": 0.7, "dog": 0.3}, "cat") is None  # it agrees: no overlay
    assert explained_class(None, "cat") is None and explained_class({"cat": 1.0}, None) is None
    # A label set: the class the model sees that the crowd's set lacks ("cat" at 0.6, though "dog" is missed more
    # confidently: Grad-CAM shows evidence for a class), else the class missed most confidently.
    assert explained_class({"cat": 0.6, "dog": 0.05, "bird": 0.2}, ["dog"]) == "cat"
    assert explained_class({"cat": 0.4, "dog": 0.05, "bird": 0.2}, ["dog", "cat"]) == "dog"
    assert explained_class({"cat": 0.6, "dog": 0.9}, ["cat", "dog"]) is None


def test_the_review_config_shows_the_overlay_beside_the_image_and_the_task_carries_its_url() -> None:
    crowd = task_kind("single_label").label_config(["cat", "dog"])
    config = review_config(crowd, overlay=True)
    root = ElementTree.fromstring(config)
    images = [(e.get("name"), e.get("value")) for e in root.iter("Image")]
    assert images == [("image", "$image"), (OVERLAY_KEY, f"${OVERLAY_KEY}")]
    assert config_layout(config) == config_layout(review_config(crowd))  # the expert answers the same way
    assert [e.get("name") for e in ElementTree.fromstring(review_config(crowd)).iter("Image")] == ["image"]
    task = review_task("a", "/data/local-files/?d=raw/a.png", [], reason="r", overlay_url="/x/gradcam/a.png")
    assert task["data"][OVERLAY_KEY] == "/x/gradcam/a.png"
    assert OVERLAY_KEY not in review_task("a", "u", [], reason="r")["data"]


def test_items_whose_pre_label_disagrees_with_the_crowd_get_the_champions_overlay_file(
    sqlite_store: LabelStore, tmp_path: Path
) -> None:
    now = utcnow()
    with sqlite_store.begin() as conn:
        conn.execute(items_table.insert(), [{"item_id": i, "uri": None, "source_path": i, "n_bytes": 1,
                                             "ingested_at": now, "status": "active"} for i in ("aa", "bb", "cc")])  # fmt: skip
        conn.execute(consensus_table.insert(), [{"item_id": i, "version": 1, "label": "cat", "method": "majority",
                                                 "confidence": 0.5, "n_annotators": 3, "computed_at": now}
                                                for i in ("aa", "bb", "cc")])  # fmt: skip
        conn.execute(prelabels_table.insert(), [
            {"item_id": "aa", "model_version": "m1", "probs": {"cat": 0.2, "dog": 0.8}, "computed_at": now},
            {"item_id": "bb", "model_version": "m1", "probs": {"cat": 0.9, "dog": 0.1}, "computed_at": now}])  # fmt: skip
    assert model_disagreements(sqlite_store, ["aa", "bb", "cc"]) == {"aa": "dog"}  # bb agrees, cc has no pre-label

    images, labels = planted(2, "top_left", seed=4)
    Image.fromarray(images[labels == 1][0, 0]).save(tmp_path / "aa.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    wanted = {"aa": (str(tmp_path / "aa.png"), 1), "zz": (str(tmp_path / "broken.png"), 1)}
    with one_thread():
        written, problems = review_overlays(trained("top_left"), wanted, tmp_path / "gradcam", image_size=SIZE, channels=1)
    assert written == {"aa": tmp_path / "gradcam" / "aa.png"} and Image.open(written["aa"]).size == (224, 224)
    assert list(problems) == ["zz"] and "broken.png" in problems["zz"]  # one line, the others still written


def test_a_soft_single_label_error_explains_the_predicted_class_not_the_missed_true_one() -> None:
    """With a softmax 1 - P(true) >= P(predicted) always: the margin alone would always pick the true class."""
    probs = np.array([[0.4, 0.35, 0.25], [0.05, 0.05, 0.9]])
    truth = one_hot(np.array([2, 2]), 3)
    (pick, _) = pick_items(truth, probs, one_hot(probs.argmax(1), 3), max_items=2)
    assert (pick.index, pick.class_index, pick.why) == (0, 0, ERROR)
