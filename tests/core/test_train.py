"""The training core on the CPU: backbones, tensor cache, augmentation, losses, the loop, checkpoints."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from labeling_assets.core.tasks.single_label.training import confusion, macro_f1_from_confusion
from labeling_assets.core.training import metrics, promotion
from labeling_assets.core.training.augment import augment_batch
from labeling_assets.core.training.cache import load_cache_split, read_cache_meta, write_tensor_cache
from labeling_assets.core.training.checkpoint import load_checkpoint
from labeling_assets.core.training.config import (
    BACKBONES,
    AugmentConfig,
    TrainConfig,
    resolve_backbone,
    resolve_device,
)
from labeling_assets.core.training.device_data import DeviceData
from labeling_assets.core.training.loop import fit
from labeling_assets.core.training.losses import (
    check_soft_targets,
    class_weights_from_labels,
    classification_loss,
    weighted_indices,
)
from labeling_assets.core.training.models import build_backbone
from labeling_assets.core.training.predict import predict_proba

torch.set_num_threads(1)  # the CI machine is small and shared


def _blobs(n: int, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two easy classes: a bright square top-left (0) or bottom-right (1), with noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.integers(0, 60, (n, 1, size, size)).astype(np.uint8)
    half = size // 2
    for i, label in enumerate(y):
        if label == 0:
            x[i, 0, :half, :half] = 220
        else:
            x[i, 0, half:, half:] = 220
    return x, y


@pytest.mark.slow
def test_core_train_imports_neither_dagster_nor_mlflow() -> None:
    code = (
        "import sys, labeling_assets.core.training.cli, labeling_assets.core.training.throughput,"
        " labeling_assets.core.training.metrics, labeling_assets.core.training.active_learning;"
        "bad=[m for m in ('dagster','mlflow','sqlalchemy','pandas') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.slow
def test_every_backbone_builds_offline_for_gray_and_rgb(name: str, channels: int) -> None:
    model = build_backbone(name, num_classes=4, in_channels=channels)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, channels, 32, 32))
    assert out.shape == (2, 4)


def test_auto_backbone_depends_on_image_size() -> None:
    assert resolve_backbone("auto", 32) == "small_cnn"
    assert resolve_backbone("auto", 224) == "resnet18"
    with pytest.raises(ValueError, match="unknown backbone"):
        resolve_backbone("vit_h", 224)


def test_local_weights_load_and_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    source = build_backbone("resnet18", num_classes=1000, in_channels=3)
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    gray = build_backbone("resnet18", num_classes=5, in_channels=1, weights_path=str(path))
    # Grayscale stem = RGB filters summed; the 5-class head stays freshly initialised.
    torch.testing.assert_close(gray.conv1.weight, source.conv1.weight.sum(dim=1, keepdim=True))
    torch.testing.assert_close(gray.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        build_backbone("resnet18", 5, weights_path=str(tmp_path / "missing.pt"))


def test_cuda_request_without_cuda_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_class_weights_follow_total_over_classes_times_count() -> None:
    weights = class_weights_from_labels(np.array([0, 0, 0, 1]), 3)
    assert weights == pytest.approx([4 / (2 * 3), 4 / (2 * 1), 1.0])  # absent class: neutral 1.0


def test_focal_loss_with_gamma_zero_is_weighted_cross_entropy() -> None:
    logits = torch.randn(16, 3)
    y = torch.randint(0, 3, (16,))
    w = torch.tensor([1.0, 2.0, 0.5])
    ce = classification_loss(logits, y, kind="ce", weight=w)
    focal0 = classification_loss(logits, y, kind="focal", weight=w, gamma=0.0)
    torch.testing.assert_close(ce, focal0)
    # Focal down-weights easy items, so it is below cross-entropy for gamma > 0.
    assert classification_loss(logits, y, kind="focal", gamma=2.0) < classification_loss(logits, y)
    with pytest.raises(ValueError, match="unknown loss"):
        classification_loss(logits, y, kind="hinge")


@pytest.mark.parametrize("kind", ["ce", "focal"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_one_hot_soft_targets_give_exactly_the_hard_loss(kind: str, weighted: bool, smoothing: float) -> None:
    torch.manual_seed(0)
    logits = torch.randn(32, 4, requires_grad=True)
    y = torch.randint(0, 4, (32,))
    w = torch.tensor([1.0, 3.0, 0.5, 2.0]) if weighted else None
    options = {"kind": kind, "weight": w, "gamma": 2.0, "label_smoothing": smoothing}
    hard = classification_loss(logits, y, **options)
    (hard_grad,) = torch.autograd.grad(hard, logits)
    soft = classification_loss(logits, F.one_hot(y, 4).float(), **options)
    (soft_grad,) = torch.autograd.grad(soft, logits)
    torch.testing.assert_close(soft, hard)
    torch.testing.assert_close(soft_grad, hard_grad)


def test_soft_target_loss_is_minimised_by_predicting_the_target_distribution() -> None:
    targets = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    logits = targets.log().clone().requires_grad_(True)
    loss = classification_loss(logits, targets)
    (grad,) = torch.autograd.grad(loss, logits)
    torch.testing.assert_close(grad, torch.zeros_like(grad), atol=1e-6, rtol=0)
    # A confident prediction of the argmax costs more than matching the doubt.
    confident = classification_loss(torch.tensor([[9.0, 0, 0], [0, 0, 9.0]]), targets)
    assert confident > loss
    with pytest.raises(ValueError, match="unknown loss"):
        classification_loss(logits, targets, kind="hinge")


def test_soft_targets_are_checked() -> None:
    good = np.array([[0.5, 0.5], [1.0, 0.0]])
    assert check_soft_targets(good, 2, 2).dtype == np.float32
    with pytest.raises(ValueError, match=r"must be \(2, 3\)"):
        check_soft_targets(good, 2, 3)
    with pytest.raises(ValueError, match="non-negative"):
        check_soft_targets(np.array([[1.5, -0.5], [1.0, 0.0]]), 2, 2)
    with pytest.raises(ValueError, match="row 1 sums to 0.5000"):
        check_soft_targets(np.array([[0.5, 0.5], [0.5, 0.0]]), 2, 2)


def test_weighted_indices_balance_classes() -> None:
    labels = torch.tensor([0] * 900 + [1] * 100)
    weights = torch.tensor(class_weights_from_labels(labels.numpy(), 2))[labels]
    g = torch.Generator().manual_seed(0)
    drawn = labels[weighted_indices(weights, 20000, generator=g)]
    assert 0.45 < drawn.float().mean().item() < 0.55


def test_augmentation_keeps_range_and_never_flips_by_default() -> None:
    x = torch.zeros(64, 1, 8, 8)
    x[..., :4] = 1.0  # left half bright
    out = augment_batch(x, AugmentConfig())
    assert out.min() >= 0 and out.max() <= 1
    # Small rotations keep the bright side on the left for every image: no flip happened.
    assert bool((out[..., :4].mean(dim=(1, 2, 3)) > out[..., 4:].mean(dim=(1, 2, 3))).all())
    flipped = augment_batch(
        x, AugmentConfig(rotation_deg=0, brightness=0, contrast=0, noise_std=0, hflip=True)
    )
    assert bool((flipped[..., 4:].mean(dim=(1, 2, 3)) == 1).any())
    assert not AugmentConfig(rotation_deg=0, brightness=0, contrast=0, noise_std=0).active


def test_tensor_cache_decodes_once_drops_unreadable_files_and_is_complete(tmp_path: Path) -> None:
    paths = []
    for i in range(5):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((12, 20), i * 50, dtype=np.uint8), mode="L").save(path)
        paths.append(str(path))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    folder = tmp_path / "cache"
    meta, failures = write_tensor_cache(
        folder,
        {
            "train": (paths[:3] + [str(bad)], [0, 1, 0, 1], ["a", "b", "c", "bad"]),
            "val": (paths[3:], [1, 0], ["d", "e"]),
        },
        image_size=8,
        channels=3,
        classes=["x", "y"],
        extra_meta={"dataset_version": "v1"},
    )
    assert [f.path for f in failures["train"]] == [str(bad)]
    assert meta["counts"] == {"train": 3, "val": 2} and meta["dataset_version"] == "v1"
    train = load_cache_split(folder, "train")
    assert isinstance(train.images, np.memmap) or train.images.base is not None  # memory-mapped, not read
    assert train.images.shape == (3, 3, 8, 8) and train.images.dtype == np.uint8
    assert train.item_ids == ["a", "b", "c"] and train.labels.tolist() == [0, 1, 0]
    assert int(train.images[1].mean()) == 50  # decoded, resized, gray copied to RGB
    assert read_cache_meta(folder)["classes"] == ["x", "y"]
    assert not list(tmp_path.glob(".cache.tmp-*"))  # built aside and swapped in whole
    with pytest.raises(FileNotFoundError):
        load_cache_split(tmp_path / "nowhere", "train")


def test_streamed_device_data_yields_every_image_once_per_epoch() -> None:
    x = np.arange(50, dtype=np.uint8).reshape(50, 1, 1, 1)
    data = DeviceData(x, np.arange(50), torch.device("cpu"), max_device_bytes=20, chunk_multiple=5)
    assert not data.resident and data.chunk_images == 10
    seen = torch.cat([images.flatten() for images, _ in data.chunks(torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(50))


def test_fit_learns_an_easy_task_with_early_stopping_and_keeps_the_best_epoch() -> None:
    x, y = _blobs(256)
    xv, yv = _blobs(64, seed=1)
    config = TrainConfig(
        num_classes=2, image_size=8, channels=1, epochs=30, batch_size=32, lr=3e-3, patience=2, device="cpu"
    )
    seen_epochs: list[int] = []
    result = fit(x, y, xv, yv, config, on_epoch=lambda s: seen_epochs.append(s.epoch))
    assert result.backbone == "small_cnn" and result.device == "cpu"
    assert result.best_val_macro_f1 is not None and result.best_val_macro_f1 > 0.95
    assert result.stopped_early and len(result.history) < 30  # validation saturates quickly
    assert seen_epochs == [s.epoch for s in result.history]
    assert result.best_val_macro_f1 == max(s.val_macro_f1 for s in result.history)
    probs = predict_proba(result.model, xv)
    assert metrics.macro_f1(yv, probs.argmax(1), 2) == pytest.approx(result.best_val_macro_f1)


def test_fit_supports_weighted_sampler_and_focal_loss() -> None:
    x, y = _blobs(200)
    config = TrainConfig(
        num_classes=2, image_size=8, channels=1, epochs=3, batch_size=32, sampler="weighted", loss="focal"
    )
    result = fit(x, y, None, None, config)
    assert len(result.history) == 3 and result.best_val_macro_f1 is None
    assert all(np.isfinite(s.train_loss) for s in result.history)


@pytest.mark.slow
def test_fit_on_one_hot_soft_targets_matches_hard_labels_and_learns_from_soft_ones() -> None:
    x, y = _blobs(128)
    xv, yv = _blobs(64, seed=1)
    config = TrainConfig(num_classes=2, image_size=8, channels=1, epochs=2, batch_size=32, patience=0)
    hard = fit(x, y, xv, yv, config)
    one_hot = fit(x, y, xv, yv, config, train_targets=np.eye(2)[y])
    np.testing.assert_allclose(
        [s.train_loss for s in one_hot.history], [s.train_loss for s in hard.history], rtol=1e-4
    )
    # 30 % of the mass on the wrong class (a doubtful crowd) still teaches the right argmax; streamed
    # chunks and the weighted sampler carry the soft rows too.
    x, y = _blobs(256)
    soft = np.where(np.eye(2)[y] == 1, 0.7, 0.3)
    config = replace(config, epochs=8, lr=3e-3, sampler="weighted", device_cache_max_bytes=64 * 64)
    result = fit(x, y, xv, yv, config, train_targets=soft)
    assert not result.resident
    assert result.best_val_macro_f1 is not None and result.best_val_macro_f1 > 0.95
    with pytest.raises(ValueError, match="soft targets must be"):
        fit(x, y, xv, yv, config, train_targets=soft[:, :1])


def test_fit_rejects_inconsistent_inputs() -> None:
    x, y = _blobs(20)
    config = TrainConfig(num_classes=2, image_size=8, channels=1, epochs=1)
    with pytest.raises(ValueError, match="config wants"):
        fit(x, y, None, None, replace(config, image_size=16))
    with pytest.raises(ValueError, match="class indices"):
        fit(x, y + 5, None, None, config)
    with pytest.raises(ValueError, match="no training images"):
        fit(x[:0], y[:0], None, None, config)


def test_device_macro_f1_matches_the_numpy_definition() -> None:
    rng = np.random.default_rng(0)
    yt, yp = rng.integers(0, 5, 200), rng.integers(0, 4, 200)
    got = macro_f1_from_confusion(confusion(torch.as_tensor(yt), torch.as_tensor(yp), 6))
    assert got == pytest.approx(metrics.macro_f1(yt, yp, 6))


@pytest.mark.slow
def test_checkpoint_round_trip_and_command_line(tmp_path: Path) -> None:
    x, y = _blobs(96)
    folder = tmp_path / "cache"
    paths = []
    for i, image in enumerate(x):
        path = tmp_path / f"{i}.png"
        Image.fromarray(image[0], mode="L").save(path)
        paths.append(str(path))
    write_tensor_cache(
        folder,
        {
            "train": (paths[:64], y[:64].tolist(), [str(i) for i in range(64)]),
            "val": (paths[64:], y[64:].tolist(), [str(i) for i in range(64, 96)]),
        },
        image_size=8,
        channels=1,
        classes=["tl", "br"],
    )
    out = tmp_path / "model.pt"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "labeling_assets.core.training",
            "--cache",
            str(folder),
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["epoch"] for line in lines[:-1]] == [1, 2] and lines[-1]["out"] == str(out)
    model, config, classes = load_checkpoint(out)
    assert classes == ["tl", "br"] and config.backbone == "small_cnn" and config.channels == 1
    val = load_cache_split(folder, "val")
    assert predict_proba(model, val.images).shape == (32, 2)


# --- the champion rule ---------------------------------------------------------------------------


def test_gold_test_items_decide_when_there_are_enough_else_every_items_consensus() -> None:
    consensus = [0, 1, 1, 2, 0]
    gold = [0, None, 2, None, None]  # the crowd got item 2 wrong
    on_gold = promotion.scoring_set(consensus, gold, min_gold=2)
    assert on_gold.basis == "gold" and on_gold.rows.tolist() == [0, 2] and on_gold.labels.tolist() == [0, 2]
    on_consensus = promotion.scoring_set(consensus, gold, min_gold=3)
    assert on_consensus.basis == "consensus" and on_consensus.n_items == 5 and on_consensus.n_gold == 2
    assert on_consensus.labels.tolist() == consensus
    assert promotion.scoring_set(consensus, [None] * 5, min_gold=0).basis == "consensus"  # no gold at all


def test_the_score_leaves_out_items_that_could_not_be_decoded() -> None:
    scoring = promotion.scoring_set([0, 1, 1], [None] * 3, min_gold=30)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [np.nan, np.nan]])
    assert promotion.score(probs, scoring, failed=[2]) == (1.0, 2)


@pytest.mark.parametrize(
    ("candidate_score", "champion", "champion_score", "outcome", "alias"),
    [
        (0.40, None, None, "first", "champion"),
        (0.79, "clf/1", 0.80, "not_worse", "champion"),  # within the tolerance 0.01, edge included
        (0.85, "clf/1", 0.80, "not_worse", "champion"),
        (0.78, "clf/1", 0.80, "worse", "challenger"),
        (0.70, "clf/2", 0.70, "already_champion", "champion"),
    ],
)
def test_a_model_becomes_the_champion_unless_it_is_worse_beyond_the_tolerance(
    candidate_score: float, champion: str | None, champion_score: float | None, outcome: str, alias: str
) -> None:
    decision = promotion.decide(
        candidate="clf/2",
        candidate_score=candidate_score,
        champion=champion,
        champion_score=champion_score,
        basis="gold",
        n_items=40,
        tolerance=0.01,
    )
    assert decision.outcome == outcome and decision.alias == alias
    assert "clf/2" in decision.reason() and "40 gold-labeled test items" in decision.reason()
    if outcome in ("worse", "not_worse"):
        assert f"{champion_score:.4f}" in decision.reason() and f"{candidate_score:.4f}" in decision.reason()


def test_a_champion_that_predicts_other_classes_is_replaced_without_a_comparison() -> None:
    decision = promotion.decide(
        candidate="clf/2", candidate_score=0.1, champion="clf/1", champion_score=None,
        basis="consensus", n_items=12, comparable=False,
    )  # fmt: skip
    assert decision.promote and decision.outcome == "not_comparable" and decision.champion_score is None
    assert "other classes" in decision.reason()
