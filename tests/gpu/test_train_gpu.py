"""The CUDA path of the training core: bf16 autocast, channels_last, device-resident and streamed caches,
GPU augmentation. Marked ``gpu`` and skipped without CUDA. Needs only torch/torchvision/numpy, so it runs
on a bare GPU machine with ``pytest --noconftest tests/gpu``."""

from pathlib import Path

import numpy as np
import pytest
import torch

from labeling_assets.core.training import gates, metrics
from labeling_assets.core.training.augment import augment_batch
from labeling_assets.core.training.config import AugmentConfig, TrainConfig
from labeling_assets.core.training.loop import fit
from labeling_assets.core.training.predict import predict_proba
from labeling_assets.core.training.throughput import measure_throughput

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _blobs(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.integers(0, 60, (n, 3, size, size)).astype(np.uint8)
    half = size // 2
    for i, label in enumerate(y):
        if label == 0:
            x[i, :, :half, :half] = 220
        else:
            x[i, :, half:, half:] = 220
    return x, y


@pytest.mark.parametrize("backbone", ["small_cnn", "resnet18"])
def test_fit_on_cuda_learns_with_bf16_and_channels_last(backbone: str) -> None:
    x, y = _blobs(1024)
    xv, yv = _blobs(256, seed=1)
    config = TrainConfig(
        num_classes=2, backbone=backbone, image_size=32, channels=3, epochs=6, batch_size=128, device="cuda"
    )
    result = fit(x, y, xv, yv, config)
    assert result.device.startswith("cuda") and result.resident
    assert all(np.isfinite(s.train_loss) for s in result.history)
    assert result.best_val_macro_f1 is not None and result.best_val_macro_f1 > 0.9
    probs = predict_proba(result.model, xv, device="cuda")
    assert metrics.macro_f1(yv, probs.argmax(1), 2) == pytest.approx(result.best_val_macro_f1, abs=0.02)


def test_streamed_cache_trains_when_the_data_exceeds_the_device_budget() -> None:
    x, y = _blobs(1024)
    config = TrainConfig(
        num_classes=2,
        image_size=32,
        channels=3,
        epochs=3,
        batch_size=64,
        device="cuda",
        device_cache_max_bytes=x[0].nbytes
        * 256,  # a quarter of the data: chunks stream through pinned memory
    )
    result = fit(x, y, None, None, config)
    assert not result.resident
    assert sum(s.train_images for s in result.history) >= 3 * 896  # every chunk was trained on
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_gpu_augmentation_in_bf16_keeps_shape_range_and_device() -> None:
    x = torch.rand(64, 3, 64, 64, device="cuda", dtype=torch.bfloat16)
    out = augment_batch(x, AugmentConfig())
    assert out.shape == x.shape and out.dtype == torch.bfloat16 and out.is_cuda
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_throughput_measurement_runs_and_reports_both_figures() -> None:
    x, y = _blobs(2048, size=64)
    config = TrainConfig(
        num_classes=2, backbone="resnet18", image_size=64, channels=3, batch_size=256, device="cuda"
    )
    t = measure_throughput(x, y, config, synthetic_steps=10, warmup_steps=3, end_to_end_epochs=1)
    assert t.synthetic_images_per_s > 0 and t.end_to_end_images_per_s > 0 and t.resident


def test_the_attention_head_trains_in_bf16_with_channels_last_and_the_gates_time_it_on_the_gpu() -> None:
    x, y = _blobs(512, size=64)
    config = TrainConfig(num_classes=2, backbone="efficientnet_b0", head="attention", image_size=64, channels=3,
                         epochs=2, batch_size=64, patience=0, device="cuda")  # fmt: skip
    result = fit(x, y, x[:128], y[:128], config)
    assert result.device.startswith("cuda") and all(np.isfinite(s.train_loss) for s in result.history)
    measured = gates.measure(result.model, (3, 64, 64), warmup=2, runs=5)  # CUDA present: CPU and GPU figures
    assert [lat.device for lat in measured.latency] == ["cpu", "gpu"]
    assert all(lat.runs == 5 and lat.p95_ms >= lat.p50_ms > 0 for lat in measured.latency)
    assert next(result.model.parameters()).device.type == "cpu"  # measured, then back on the CPU


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL DDP needs 2 GPUs (one rank per device)")
def test_two_nccl_processes_under_torchrun_match_the_single_gpu_run(tmp_path: Path) -> None:
    from labeling_assets.core.training.launch import fit_with_torchrun
    from tests.core.test_train_distributed import _quadrants, _write_cache

    train, val = _quadrants(1024, seed=0), _quadrants(256, seed=1)
    _write_cache(tmp_path / "cache", {"train": train, "val": val})
    config = TrainConfig(
        num_classes=4, image_size=8, channels=1, epochs=4, batch_size=64, lr=3e-3, patience=0, device="cuda"
    )
    single = fit(train[0], train[1], val[0], val[1], config)
    ddp = fit_with_torchrun(tmp_path / "cache", config, nproc_per_node=2, timeout_s=180)
    assert ddp.world_size == 2 and ddp.replica_spread == 0.0
    assert ddp.history[-1].train_images == single.history[-1].train_images
    assert ddp.history[-1].val_accuracy == pytest.approx(single.history[-1].val_accuracy, abs=0.06)
