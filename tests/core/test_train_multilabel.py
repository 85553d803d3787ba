"""Multi-label training on the CPU: sigmoid losses, pos_weight, soft marginals, thresholds, checkpoints,
and the evaluation metrics checked against scikit-learn on hand-made arrays."""

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn import metrics as skm

from labeling_assets.core.training import multilabel_metrics as mm
from labeling_assets.core.training.cache import write_tensor_cache
from labeling_assets.core.training.checkpoint import load_checkpoint, load_thresholds, save_checkpoint
from labeling_assets.core.training.cli import config_from_file
from labeling_assets.core.training.config import TrainConfig
from labeling_assets.core.training.loop import fit
from labeling_assets.core.training.multilabel import (
    apply_thresholds,
    check_marginal_targets,
    choose_thresholds,
    multilabel_loss,
    pos_weights,
    rarest_label_weights,
)
from labeling_assets.core.training.predict import predict_proba

torch.set_num_threads(1)  # the CI machine is small and shared

PREVALENCE = (0.5, 0.3, 0.15, 0.08)


def _quadrant_sets(n: int, seed: int = 0, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Each of 4 classes independently present with PREVALENCE; a present class lights its quadrant."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 4)) < np.array(PREVALENCE)).astype(np.uint8)
    x = rng.integers(0, 60, (n, 1, size, size)).astype(np.uint8)
    h = size // 2
    corners = [(slice(0, h), slice(0, h)), (slice(0, h), slice(h, None)), (slice(h, None), slice(0, h)),
               (slice(h, None), slice(h, None))]  # fmt: skip
    for i in range(n):
        for k in np.flatnonzero(y[i]):
            rows, cols = corners[k]
            x[i, 0, rows, cols] = 200
    return x, y


def _config(**kw: object) -> TrainConfig:
    base = dict(num_classes=4, image_size=8, channels=1, epochs=6, batch_size=32, lr=3e-3, patience=0,
                device="cpu", task_kind="multi_label")  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


# --- losses and weights ----------------------------------------------------------------------------


def test_pos_weight_is_negatives_over_positives_of_the_training_prevalence() -> None:
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]])
    assert pos_weights(y) == pytest.approx([1 / 3, 3.0, 1.0])  # a class without positives keeps 1
    # Soft marginals count their expected positives: 0.5 + 0.5 of 4 items -> 3 / 1.
    assert pos_weights(np.array([[0.5], [0.5], [0.0], [0.0]]))[0] == pytest.approx(3.0)
    assert pos_weights(y, "none") == [1.0, 1.0, 1.0]


def test_effective_number_pos_weight_tends_to_inverse_frequency_and_bounds_rare_classes() -> None:
    y = np.zeros((10_000, 2))
    y[:5, 0] = 1  # 5 positives: inverse frequency 1999
    y[:5000, 1] = 1
    inverse = pos_weights(y, "inverse_frequency")
    assert pos_weights(y, "effective_number", beta=1 - 1e-9) == pytest.approx(inverse, rel=1e-3)
    bounded = pos_weights(y, "effective_number", beta=0.999)
    assert 1.0 < bounded[0] < inverse[0] / 5 and bounded[1] == pytest.approx(1.0)


def test_bce_loss_with_hard_targets_is_torch_bce_and_focal_is_torchvision_sigmoid_focal() -> None:
    from torchvision.ops import sigmoid_focal_loss

    torch.manual_seed(0)
    logits, targets = torch.randn(16, 5), (torch.rand(16, 5) < 0.3).float()
    weight = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    assert multilabel_loss(logits, targets, kind="bce", pos_weight=weight) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight))
    )
    focal = multilabel_loss(logits, targets, kind="focal", focal_alpha=0.25, focal_gamma=2.0)
    assert float(focal) == pytest.approx(
        float(sigmoid_focal_loss(logits, targets, 0.25, 2.0, "mean")), rel=1e-5
    )
    combined = multilabel_loss(logits, targets, kind="bce_focal", pos_weight=weight)
    bce = multilabel_loss(logits, targets, kind="bce", pos_weight=weight)
    assert float(combined) == pytest.approx(0.7 * float(bce) + 0.3 * float(focal), rel=1e-5)


def test_asymmetric_loss_ignores_easy_negatives_below_the_clip_and_equals_bce_without_focusing() -> None:
    logits, targets = torch.tensor([[-4.0, 0.5]]), torch.tensor([[0.0, 1.0]])  # sigmoid(-4) = 0.018 < 0.05
    clipped = multilabel_loss(logits, targets, kind="asl", asl_gamma_neg=0, asl_gamma_pos=0, asl_clip=0.05)
    positive_only = float(-F.logsigmoid(torch.tensor(0.5))) / 2
    assert float(clipped) == pytest.approx(positive_only, rel=1e-5)
    plain = multilabel_loss(logits, targets, kind="asl", asl_gamma_neg=0, asl_gamma_pos=0, asl_clip=0.0)
    assert float(plain) == pytest.approx(float(F.binary_cross_entropy_with_logits(logits, targets)), rel=1e-5)


@pytest.mark.parametrize("kind", ["bce", "focal", "asl", "bce_focal"])
@pytest.mark.slow
def test_every_loss_follows_the_soft_marginal_and_bce_is_minimised_at_it(kind: str) -> None:
    grid = torch.linspace(-6, 6, 1201)[:, None]

    def minimiser(marginal: float) -> float:
        target = torch.tensor([[marginal]])
        losses = torch.stack([multilabel_loss(g[None], target, kind=kind, asl_clip=0.0) for g in grid])
        return float(torch.sigmoid(grid[int(losses.argmin())]))

    optima = [minimiser(m) for m in (0.1, 0.4, 0.7, 0.95)]
    assert optima == sorted(optima) and optima[0] < optima[-1]  # a likelier class is pushed higher
    if kind == "bce":
        assert optima == pytest.approx([0.1, 0.4, 0.7, 0.95], abs=0.01)


def test_soft_marginals_are_accepted_and_malformed_ones_are_clear_errors() -> None:
    good = check_marginal_targets([[0.2, 1.0], [0.0, 0.9]], 2, 2)
    assert good.dtype == np.float32 and good.shape == (2, 2)  # rows need not sum to 1
    with pytest.raises(ValueError, match=r"\(2, 3\) per-class marginals"):
        check_marginal_targets([[0.2, 1.0], [0.0, 0.9]], 2, 3)
    with pytest.raises(ValueError, match=r"row 1, class 0 is 1\.5"):
        check_marginal_targets([[0.2, 1.0], [1.5, 0.9]], 2, 2)
    with pytest.raises(ValueError, match="finite"):
        check_marginal_targets([[np.nan, 1.0], [0.0, 0.9]], 2, 2)


def test_the_weighted_sampler_weighs_each_item_by_its_rarest_label() -> None:
    labels = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 1], [0, 0, 0]], dtype=torch.float32)
    counts = labels.sum(0)  # 3, 1, 1
    weights = rarest_label_weights(labels, counts, n_empty=2)
    assert weights.tolist() == pytest.approx([1 / 3, 1.0, 1 / 2, 1.0, 1 / 2])


# --- thresholds ------------------------------------------------------------------------------------


def test_thresholds_maximise_f1_per_class_and_fall_back_to_one_half_without_a_positive() -> None:
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    probs = np.array([[0.30, 0.9], [0.25, 0.8], [0.20, 0.1], [0.05, 0.2]])
    thresholds = choose_thresholds(y, probs)
    assert thresholds[0] == pytest.approx((0.25 + 0.20) / 2)  # F1 = 1 between the positives and the rest
    assert thresholds[1] == 0.5
    assert apply_thresholds(probs, thresholds)[:, 0].tolist() == [1, 1, 0, 0]


def test_thresholds_never_split_tied_scores() -> None:
    y = np.array([[1], [0], [1], [0]])
    probs = np.array([[0.6], [0.6], [0.6], [0.1]])
    threshold = choose_thresholds(y, probs)[0]
    assert threshold == pytest.approx(0.35)  # all three tied items called positive together


# --- the loop --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_multi_label_fit_learns_a_tiny_synthetic_set_well_above_chance_and_stores_thresholds(
    tmp_path: Path,
) -> None:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (_quadrant_sets(n, seed=s) for n, s in
                                                            ((384, 0), (128, 1), (256, 2)))  # fmt: skip
    result = fit(x_train, y_train, x_val, y_val, _config(epochs=8))
    assert result.class_weights == pytest.approx(pos_weights(y_train))  # pos_weight from train prevalence
    assert result.best_val_macro_auc is not None and result.thresholds is not None
    assert len(result.thresholds) == 4 and all(0.0 < t < 1.0 for t in result.thresholds)
    history_auc = [s.val_macro_auc for s in result.history]
    assert result.best_val_macro_auc == max(a for a in history_auc if a is not None)
    probs = predict_proba(result.model, x_test, task_kind="multi_label")
    assert probs.shape == (256, 4) and not np.allclose(probs.sum(axis=1), 1.0)  # sigmoids, not a softmax
    report = mm.evaluate_multilabel(y_test, probs, list("abcd"), result.thresholds)
    assert report.macro_auc > 0.9  # chance is 0.5
    # The thresholds travel with the checkpoint and prediction uses them.
    path = tmp_path / "model.pt"
    config = _config(epochs=8)
    save_checkpoint(path, result, config, list("abcd"))
    model, loaded_config, classes = load_checkpoint(path)
    assert loaded_config.task_kind == "multi_label" and classes == list("abcd")
    assert load_thresholds(path) == pytest.approx(result.thresholds)
    reloaded = predict_proba(model, x_test, task_kind="multi_label")
    np.testing.assert_allclose(reloaded, probs, atol=1e-5)
    assert (
        apply_thresholds(reloaded, load_thresholds(path)) == apply_thresholds(probs, result.thresholds)
    ).all()


@pytest.mark.parametrize(
    ("loss", "sampler", "pos_weight"),
    [
        ("focal", "shuffle", "none"),
        ("asl", "shuffle", "none"),
        ("bce_focal", "shuffle", "effective_number"),
        ("bce", "weighted", "inverse_frequency"),
    ],
)
@pytest.mark.slow
def test_multi_label_fit_runs_every_loss_and_the_rarest_label_sampler(
    loss: str, sampler: str, pos_weight: str
) -> None:
    (x_train, y_train), (x_val, y_val) = _quadrant_sets(256, seed=0), _quadrant_sets(96, seed=1)
    config = _config(epochs=4, multi_label_loss=loss, multi_label_sampler=sampler, pos_weight=pos_weight)
    result = fit(x_train, y_train, x_val, y_val, config)
    assert result.best_val_macro_auc is not None and result.best_val_macro_auc > 0.75


def test_multi_label_fit_trains_on_soft_marginals_and_rejects_malformed_ones() -> None:
    (x_train, y_train), (x_val, y_val) = _quadrant_sets(256, seed=0), _quadrant_sets(96, seed=1)
    soft = np.clip(y_train * 0.85 + 0.05, 0, 1).astype(np.float32)  # the crowd's doubt on every class
    result = fit(x_train, y_train, x_val, y_val, _config(epochs=4), train_targets=soft)
    assert result.best_val_macro_auc is not None and result.best_val_macro_auc > 0.75
    assert result.class_weights == pytest.approx(pos_weights(soft))
    with pytest.raises(ValueError, match="per-class marginals"):
        fit(x_train, y_train, x_val, y_val, _config(), train_targets=soft[:, :3])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit(x_train, y_train, x_val, y_val, _config(), train_targets=soft * 2)


def test_multi_label_fit_refuses_class_indices_and_non_binary_label_sets() -> None:
    x, y = _quadrant_sets(64)
    with pytest.raises(ValueError, match=r"\(n, 4\) 0/1 indicator"):
        fit(x, y.argmax(axis=1), None, None, _config())
    with pytest.raises(ValueError, match="only 0 and 1"):
        fit(x, y * 2, None, None, _config())


def test_without_val_every_threshold_is_one_half(tmp_path: Path) -> None:
    x, y = _quadrant_sets(128)
    result = fit(x, y, None, None, _config(epochs=1))
    assert result.thresholds == [0.5] * 4 and result.best_val_macro_f1 is None


@pytest.mark.slow
def test_the_command_line_trains_a_multi_label_cache_and_saves_its_thresholds(tmp_path: Path) -> None:
    splits = {}
    for name, (n, seed) in {"train": (192, 0), "val": (64, 1)}.items():
        x, y = _quadrant_sets(n, seed=seed)
        folder = tmp_path / "png" / name
        folder.mkdir(parents=True)
        paths = []
        from PIL import Image

        for i, image in enumerate(x):
            path = folder / f"{i}.png"
            Image.fromarray(image[0]).save(path)
            paths.append(str(path))
        splits[name] = (paths, y, [f"{name}{i}" for i in range(n)])
    meta, _ = write_tensor_cache(tmp_path / "cache", splits, image_size=8, channels=1, classes=list("abcd"),
                                 extra_meta={"task_type": "multi_label"})  # fmt: skip
    assert meta["class_counts"]["train"] == splits["train"][1].sum(axis=0).tolist()
    out = tmp_path / "model.pt"
    run = subprocess.run(
        [sys.executable, "-m", "labeling_assets.core.training", "--cache", str(tmp_path / "cache"), "--out",
         str(out), "--epochs", "2", "--device", "cpu", "--multi-label-loss", "asl"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    epochs = [json.loads(line) for line in run.stdout.splitlines() if line.startswith('{"epoch"')]
    assert len(epochs) == 2 and "val_macro_auc" in epochs[-1]
    summary = json.loads(run.stdout.splitlines()[-1])
    assert len(summary["thresholds"]) == 4 and summary["best_val_macro_auc"] is not None
    _, config, _ = load_checkpoint(out)
    assert config.task_kind == "multi_label" and config.multi_label_loss == "asl"
    thresholds = load_thresholds(out)
    assert thresholds is not None and len(thresholds) == 4


def test_a_config_written_before_task_kinds_names_its_kind_by_the_multi_label_flag(tmp_path: Path) -> None:
    """Checkpoints and JSON configs of earlier releases say ``multi_label: true``; they load as that kind, and the
    command line refuses a config whose kind is not the cache's."""
    legacy = {k: v for k, v in asdict(_config()).items() if k != "task_kind"}
    assert TrainConfig.from_dict({**legacy, "multi_label": True}).task_kind == "multi_label"
    assert TrainConfig.from_dict({**legacy, "multi_label": False}).task_kind == "single_label"
    assert TrainConfig.from_dict(legacy).task_kind == "single_label"
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**legacy, "multi_label": True}))
    meta: dict[str, object] = {"classes": list("abcd"), "image_size": 8, "channels": 1}
    with pytest.raises(SystemExit, match="the config trains a multi_label head but the cache holds single_label"):
        config_from_file(str(path), meta)
    assert config_from_file(str(path), {**meta, "task_type": "multi_label"}).task_kind == "multi_label"


# --- metrics against scikit-learn ------------------------------------------------------------------

Y = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
P = np.array(
    [[0.9, 0.2, 0.6, 0.1], [0.3, 0.7, 0.2, 0.4], [0.6, 0.4, 0.3, 0.2], [0.2, 0.1, 0.8, 0.3],
     [0.4, 0.3, 0.5, 0.1], [0.1, 0.6, 0.2, 0.05]]
)  # fmt: skip
T = np.array([0.5, 0.5, 0.55, 0.5])


def test_set_metrics_match_scikit_learn_on_hand_made_arrays() -> None:
    pred = (P >= T).astype(int)
    report = mm.evaluate_multilabel(Y, P, list("abcd"), T)
    assert report.hamming_loss == pytest.approx(skm.hamming_loss(Y, pred))
    assert report.exact_match == pytest.approx(skm.accuracy_score(Y, pred))  # subset accuracy
    present = [k for k in range(4) if Y[:, k].any() or pred[:, k].any()]
    assert report.macro_f1 == pytest.approx(
        skm.f1_score(Y, pred, average="macro", labels=present, zero_division=0)
    )
    assert report.micro_f1 == pytest.approx(skm.f1_score(Y, pred, average="micro", zero_division=0))
    assert report.micro_precision == pytest.approx(
        skm.precision_score(Y, pred, average="micro", zero_division=0)
    )
    assert report.macro_recall == pytest.approx(
        skm.recall_score(Y, pred, average="macro", labels=present, zero_division=0)
    )
    cm = skm.multilabel_confusion_matrix(Y, pred)  # per label [[tn, fp], [fn, tp]]
    c = report.counts
    assert c.tn.tolist() == cm[:, 0, 0].tolist() and c.fp.tolist() == cm[:, 0, 1].tolist()
    assert c.fn.tolist() == cm[:, 1, 0].tolist() and c.tp.tolist() == cm[:, 1, 1].tolist()


def test_ranking_metrics_match_scikit_learn() -> None:
    report = mm.evaluate_multilabel(Y, P, list("abcd"), T)
    assert report.lrap == pytest.approx(skm.label_ranking_average_precision_score(Y, P))
    assert report.coverage_error == pytest.approx(skm.coverage_error(Y, P))
    for k in range(3):
        assert report.auc_per_label[k] == pytest.approx(skm.roc_auc_score(Y[:, k], P[:, k]))
        assert report.ap_per_label[k] == pytest.approx(skm.average_precision_score(Y[:, k], P[:, k]))
    assert report.micro_auc == pytest.approx(skm.roc_auc_score(Y.ravel(), P.ravel()))
    assert report.micro_map == pytest.approx(skm.average_precision_score(Y.ravel(), P.ravel()))
    assert report.macro_auc == pytest.approx(skm.roc_auc_score(Y[:, :3], P[:, :3], average="macro"))
    fpr, tpr, _ = skm.roc_curve(Y[:, 0], P[:, 0], drop_intermediate=False)
    ours_fpr, ours_tpr = mm.roc_curve(Y[:, 0], P[:, 0])
    np.testing.assert_allclose(ours_fpr, fpr)
    np.testing.assert_allclose(ours_tpr, tpr)


def test_ties_in_scores_are_scored_as_scikit_learn_does() -> None:
    y = np.array([1, 0, 1, 0, 1, 0])
    s = np.array([0.5, 0.5, 0.7, 0.2, 0.5, 0.7])
    assert mm.binary_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
    assert mm.binary_average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s))


def test_a_label_without_positives_in_test_is_undefined_not_a_crash() -> None:
    report = mm.evaluate_multilabel(Y, P, list("abcd"), T)  # label d: no positive
    assert np.isnan(report.auc_per_label[3]) and np.isnan(report.ap_per_label[3])
    assert report.undefined_labels == ["d"]
    assert "auc_d" not in report.scalar_metrics() and "auc_a" in report.scalar_metrics()
    row = next(line for line in report.per_label_markdown().splitlines() if line.startswith("| d |"))
    assert row.endswith("| undefined | undefined |")
    assert "d" not in report.roc and set(report.roc) == {"a", "b", "c"}
    assert len(report.roc["a"]["fpr"]) == mm.ROC_POINTS
    png = mm.per_label_bar_png(report)
    assert png.startswith(b"\x89PNG")
    nothing = mm.evaluate_multilabel(np.zeros((3, 2)), np.full((3, 2), 0.3), ["x", "y"])
    assert np.isnan(nothing.macro_auc) and "undefined" in nothing.summary_markdown()


@pytest.mark.slow
def test_multi_label_training_under_torchrun_keeps_replicas_equal_and_every_rank_chooses_the_same_thresholds(
    tmp_path: Path,
) -> None:
    from labeling_assets.core.training.launch import fit_with_torchrun

    folder = tmp_path / "cache"
    folder.mkdir()
    splits = {"train": _quadrant_sets(256, seed=0), "val": _quadrant_sets(96, seed=1)}
    for name, (x, y) in splits.items():
        np.save(folder / f"{name}.images.npy", x)
        np.save(folder / f"{name}.labels.npy", y.astype(np.int64))
        (folder / f"{name}.items.json").write_text(json.dumps([f"{name}-{i}" for i in range(len(y))]))
    meta = {"format": 1, "image_size": 8, "channels": 1, "classes": list("abcd"), "task_type": "multi_label",
            "counts": {n: len(y) for n, (_, y) in splits.items()},
            "class_counts": {n: y.sum(axis=0).tolist() for n, (_, y) in splits.items()}}  # fmt: skip
    (folder / "meta.json").write_text(json.dumps(meta))
    soft = np.clip(splits["train"][1] * 0.9 + 0.05, 0, 1)
    ddp = fit_with_torchrun(folder, _config(epochs=3), nproc_per_node=2, train_targets=soft, timeout_s=240)
    assert ddp.world_size == 2 and ddp.replica_spread == 0.0
    # Rank 0 scored the whole val set (not its half): its thresholds and AUC are those of the full set.
    assert ddp.thresholds is not None and len(ddp.thresholds) == 4
    assert ddp.best_val_macro_auc is not None and ddp.best_val_macro_auc > 0.7
    x_val, y_val = splits["val"]
    probs = predict_proba(ddp.model, x_val, task_kind="multi_label")
    assert mm.macro_auc_and_map(y_val, probs)[0] == pytest.approx(ddp.best_val_macro_auc, abs=1e-5)
    np.testing.assert_allclose(ddp.thresholds, choose_thresholds(y_val, probs), atol=1e-5)
