"""Training under torchrun: 2 processes on the CPU (gloo) against the single-process run on the same cache."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from labeling_assets.core.training.config import TrainConfig
from labeling_assets.core.training.distributed import Distributed
from labeling_assets.core.training.launch import epoch_from_line, fit_with_torchrun
from labeling_assets.core.training.loop import fit

torch.set_num_threads(1)  # the CI machine is small and shared


def _quadrants(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four classes (a bright quadrant each) under heavy noise: learnable, not solved in one step."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.integers(0, 150, (n, 1, 8, 8)).astype(np.uint8)
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 0, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] += 70
    return x, y


def _write_cache(folder: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """A tensor cache in the training_tensors asset's format (meta.json last)."""
    folder.mkdir()
    for name, (x, y) in splits.items():
        np.save(folder / f"{name}.images.npy", x)
        np.save(folder / f"{name}.labels.npy", y.astype(np.int64))
        (folder / f"{name}.items.json").write_text(json.dumps([f"{name}-{i}" for i in range(len(y))]))
    meta = {
        "format": 1,
        "image_size": 8,
        "channels": 1,
        "classes": ["a", "b", "c", "d"],
        "counts": {name: len(y) for name, (_, y) in splits.items()},
        "class_counts": {name: np.bincount(y, minlength=4).tolist() for name, (_, y) in splits.items()},
    }
    (folder / "meta.json").write_text(json.dumps(meta))


def test_shards_are_equal_contiguous_and_validation_rows_are_each_scored_once() -> None:
    ranks = [Distributed(rank=r, world_size=3) for r in range(3)]
    assert [r.shard(10) for r in ranks] == [slice(0, 3), slice(3, 6), slice(6, 9)]  # row 9 left out
    covered = [i for r in ranks for i in range(10)[r.val_shard(10)]]
    assert covered == list(range(10))
    assert Distributed().shard(10) == slice(0, 10) and not Distributed().active
    with pytest.raises(ValueError, match="cannot be split over 3 processes"):
        ranks[0].shard(2)


@pytest.mark.slow
def test_two_gloo_processes_under_torchrun_match_the_single_process_run(tmp_path: Path) -> None:
    train, val = _quadrants(512, seed=0), _quadrants(128, seed=1)
    _write_cache(tmp_path / "cache", {"train": train, "val": val})
    config = TrainConfig(
        num_classes=4, image_size=8, channels=1, epochs=4, batch_size=64, lr=3e-3, patience=0, device="cpu"
    )
    single = fit(train[0], train[1], val[0], val[1], config)

    relayed: list[int] = []
    lines: list[str] = []
    ddp = fit_with_torchrun(
        tmp_path / "cache",
        config,
        nproc_per_node=2,
        on_epoch=lambda s: relayed.append(s.epoch),
        log=lines.append,
        timeout_s=120,
    )
    assert ddp.world_size == 2 and single.world_size == 1
    assert ddp.replica_spread == 0.0  # DDP kept both replicas identical, step after step
    assert relayed == [1, 2, 3, 4]  # rank 0 alone printed its epochs (rank 1 would double them)
    assert any("ranks=2 batch/rank=32" in line for line in lines)
    for one, two in zip(single.history, ddp.history, strict=True):
        # Each rank trained on its half: together one pass over the data, as one process does.
        assert two.train_images == one.train_images == 512
    last_single, last_ddp = single.history[-1], ddp.history[-1]
    assert last_single.val_accuracy is not None and last_single.val_accuracy > 0.8  # the task was learnt
    assert last_ddp.val_accuracy == pytest.approx(last_single.val_accuracy, abs=0.06)
    assert last_ddp.val_loss == pytest.approx(last_single.val_loss, rel=0.25)
    assert last_ddp.train_loss == pytest.approx(last_single.train_loss, rel=0.25)
    # The checkpoint rank 0 wrote rebuilds the model: its accuracy is the run's best val accuracy.
    logits = ddp.model(torch.as_tensor(val[0]).float() / 255.0)
    accuracy = float((logits.argmax(1).numpy() == val[1]).mean())
    assert accuracy == pytest.approx(ddp.history[ddp.best_epoch - 1].val_accuracy, abs=1e-6)


def test_epoch_lines_are_told_apart_from_other_output() -> None:
    line = json.dumps({"epoch": 2, "train_loss": 0.5, "lr": 0.001, "train_seconds": 1.0, "train_images": 64})
    stats = epoch_from_line(line)
    assert stats is not None and stats.epoch == 2 and stats.train_images_per_s == 64.0
    assert epoch_from_line('{"best_epoch": 3}') is None and epoch_from_line("device=cpu") is None
