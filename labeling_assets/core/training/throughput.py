"""Training throughput: the synthetic-input ceiling vs the real input path, same trainer.

Used by ``benchmarks/train_throughput.py``; the bar (DESIGN §8) is end-to-end >= 80% of the ceiling.
Under ``torchrun`` every rank measures its DDP trainer on its shard and the figures are summed over ranks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from labeling_assets.core.training.config import TrainConfig, resolve_backbone, resolve_device
from labeling_assets.core.training.device_data import DeviceData, cache_budget, chunk_sizes
from labeling_assets.core.training.distributed import init_distributed
from labeling_assets.core.training.loop import Trainer, epoch_batches
from labeling_assets.core.training.models import build_model
from labeling_assets.core.training.types import AnyArray, UInt8Array


@dataclass(frozen=True)
class Throughput:
    backbone: str
    compiled: bool
    synthetic_images_per_s: float  # the ceiling: the same step on one static device batch
    end_to_end_images_per_s: float  # the real loop: sample, gather, augment, step
    upload_seconds: float
    compile_seconds: float
    resident: bool
    processes: int = 1  # torchrun ranks; the img/s figures are their sum

    @property
    def ratio(self) -> float:
        return (
            self.end_to_end_images_per_s / self.synthetic_images_per_s if self.synthetic_images_per_s else 0.0
        )


def measure_throughput(
    images: UInt8Array,
    labels: AnyArray,
    config: TrainConfig,
    *,
    synthetic_steps: int = 100,
    warmup_steps: int = 15,
    end_to_end_epochs: int = 2,
) -> Throughput:
    """Synthetic-input ceiling and end-to-end img/s of the SAME trainer (same compiled graph), one GPU.

    The end-to-end figure is the steady-state epoch (first epoch excluded: it pays compilation and
    cuDNN autotuning) over the whole training path: index sampling, uint8 gather from the device cache,
    conversion, augmentation, channels_last, forward, backward, optimizer.
    """
    distributed = init_distributed(resolve_device(config.device))
    device = distributed.device(resolve_device(config.device))
    backbone = resolve_backbone(config.backbone, config.image_size)
    torch.manual_seed(config.seed)
    # As in fit: batch_size is the global batch, each rank takes its share of it and of the images.
    batch_size = max(1, config.batch_size // distributed.world_size)
    config = replace(config, batch_size=batch_size)
    shard = distributed.shard(len(labels))
    data = DeviceData(
        images[shard],
        np.asarray(labels)[shard],
        device,
        max_device_bytes=cache_budget(config, device),
        chunk_multiple=config.batch_size,
    )
    model = build_model(replace(config, backbone=backbone))
    per_epoch = sum(len(range(0, m - config.batch_size + 1, config.batch_size)) for m in chunk_sizes(data))
    trainer = Trainer(
        model,
        config,
        device,
        total_steps=per_epoch * (end_to_end_epochs + 1) + synthetic_steps * 2,
        distributed=distributed,
    )
    trainer.loss_weight = torch.ones(config.num_classes, device=device)
    shape = (config.batch_size, config.channels, config.image_size, config.image_size)
    x = (
        torch.rand(shape, device=device)
        .to(trainer.input_dtype)
        .contiguous(memory_format=trainer.memory_format)
    )
    y = torch.randint(0, config.num_classes, (config.batch_size,), device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    start = time.perf_counter()
    for _ in range(warmup_steps):
        trainer.step(x, y)
    sync()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(synthetic_steps):
        trainer.step(x, y)
    sync()
    synthetic = synthetic_steps * config.batch_size / (time.perf_counter() - start)

    generator = torch.Generator()
    generator.manual_seed(config.seed)
    rates = []
    for epoch in range(end_to_end_epochs + 1):
        start = time.perf_counter()
        steps = 0
        loss_sum = torch.zeros((), device=device)
        for xb, yb in epoch_batches(data, config.batch_size, generator, None):
            loss_sum += trainer.step(trainer.prepare(xb), yb)
            steps += 1
        loss_sum.item()
        if epoch > 0:
            rates.append(steps * config.batch_size / (time.perf_counter() - start))
    rank_rates = torch.tensor([synthetic, float(np.median(rates))], dtype=torch.float64, device=device)
    synthetic, end_to_end = distributed.all_reduce_sum(rank_rates).tolist()
    return Throughput(
        backbone=backbone,
        compiled=trainer.compiled,
        synthetic_images_per_s=synthetic,
        end_to_end_images_per_s=end_to_end,
        upload_seconds=data.upload_seconds,
        compile_seconds=compile_seconds,
        resident=data.resident,
        processes=distributed.world_size,
    )
