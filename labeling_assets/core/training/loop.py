"""The training loop: one sync per epoch, early stopping on validation macro-F1 (DESIGN §6).

The step runs under bf16 autocast with channels_last tensors, optionally through ``torch.compile``, and
the loop never waits for the GPU inside an epoch (losses accumulate on the device; one sync per epoch).
Launched by ``torchrun`` with several processes it runs under DistributedDataParallel (see
:mod:`~labeling_assets.core.training.distributed`): the same code, each rank on its shard.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from labeling_assets.core.tasks.kind import Sampling, TrainingHead
from labeling_assets.core.tasks.registry import training_head
from labeling_assets.core.training.augment import augment_batch
from labeling_assets.core.training.config import Backbone, TrainConfig, resolve_backbone, resolve_device
from labeling_assets.core.training.device_data import DeviceData, cache_budget, chunk_sizes, host_tensor
from labeling_assets.core.training.distributed import Distributed, init_distributed, parameter_spread
from labeling_assets.core.training.losses import weighted_indices
from labeling_assets.core.training.models import Classifier, build_model, channel_stats
from labeling_assets.core.training.predict import predict_logits
from labeling_assets.core.training.types import AnyArray, UInt8Array


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    lr: float
    train_seconds: float
    train_images: int
    val_loss: float | None = None
    val_accuracy: float | None = None
    val_macro_f1: float | None = None
    val_seconds: float = 0.0
    # Multi-label runs: threshold-free validation scores (macro over classes with a val positive).
    val_macro_auc: float | None = None
    val_map: float | None = None

    @property
    def train_images_per_s(self) -> float:
        return self.train_images / self.train_seconds if self.train_seconds > 0 else 0.0

    def metrics(self) -> dict[str, float]:
        """Numeric fields for per-epoch metric logging."""
        out = {
            "train_loss": self.train_loss,
            "lr": self.lr,
            "train_seconds": self.train_seconds,
            "train_images_per_s": self.train_images_per_s,
        }
        for name in ("val_loss", "val_accuracy", "val_macro_f1", "val_macro_auc", "val_map"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass
class FitResult:
    model: Classifier  # best weights (by val macro-F1), eval mode, on the training device
    history: list[EpochStats]
    best_epoch: int
    best_val_macro_f1: float | None
    stopped_early: bool
    device: str
    backbone: Backbone  # resolved: never auto
    compiled: bool
    class_weights: list[float] | None
    mean: list[float]
    std: list[float]
    upload_seconds: float
    resident: bool
    world_size: int = 1  # processes that trained it (torchrun); metrics are over all of them
    replica_spread: float = 0.0  # max - min over ranks of the parameter sum: 0 when DDP kept replicas equal
    # Multi-label: the best epoch's val macro-AUC (the early-stopping score) and the per-class decision
    # thresholds chosen on val with the best weights (0.5 without val); best_val_macro_f1 is at those.
    best_val_macro_auc: float | None = None
    thresholds: list[float] | None = None


class Trainer:
    """One model's optimisation step: bf16 autocast, channels_last, fused AdamW, optional compile."""

    def __init__(
        self,
        model: Classifier,
        config: TrainConfig,
        device: torch.device,
        total_steps: int,
        distributed: Distributed | None = None,
        head: TrainingHead | None = None,
    ) -> None:
        self.config = config
        self.head = head or training_head(config.task_kind)
        self.device = device
        self.cuda = device.type == "cuda"
        self.amp = config.amp and self.cuda
        self.channels_last = config.channels_last and self.cuda
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.input_dtype = torch.bfloat16 if self.amp else torch.float32
        self.model = model.to(device).to(memory_format=self.memory_format)
        # What the step calls: the model itself, or its DDP wrapper that averages gradients over ranks
        # (the wrapper broadcasts rank 0's initial weights, so every replica starts equal).
        self.network: nn.Module = self.model
        if distributed is not None and distributed.active:
            self.network = DistributedDataParallel(
                self.model, device_ids=[device.index] if self.cuda else None
            )
        self.total_steps = max(1, total_steps)
        self.warmup_steps = int(self.total_steps * config.warmup_fraction)
        self.step_count = 0
        kwargs: dict[str, Any] = {"lr": config.lr, "weight_decay": config.weight_decay}
        if self.cuda:
            kwargs["fused"] = True  # one kernel for the whole update instead of one per tensor
        self.optimizer = torch.optim.AdamW(self.model.parameters(), **kwargs)
        self.loss_weight: torch.Tensor | None = None
        self.compiled = config.compile == "on" or (
            config.compile == "auto" and self.cuda and total_steps >= config.compile_min_steps
        )
        self._forward_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = self._forward_loss_eager
        if self.compiled:
            self._forward_loss = torch.compile(self._forward_loss_eager)
        if self.cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels

    def _forward_loss_eager(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.network(x)
        return self.head.loss(logits.float(), y, self.config, self.loss_weight)

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to zero over all planned steps."""
        if step < self.warmup_steps:
            return self.config.lr * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        return self.config.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def prepare(self, images_uint8: torch.Tensor, augment: bool = True) -> torch.Tensor:
        """uint8 batch on the device -> augmented float batch in the training dtype and memory format."""
        x = images_uint8.to(self.input_dtype) / 255.0
        if augment and self.config.augment.active:
            x = augment_batch(x, self.config.augment)
        return x.contiguous(memory_format=self.memory_format)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimisation step; returns the loss as a device tensor (no host sync)."""
        lr = self.lr_at(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.network.train()
        loss = self._forward_loss(x, y)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        return loss.detach()


def epoch_batches(
    data: DeviceData,
    batch_size: int,
    generator: torch.Generator,
    sample_weights: torch.Tensor | None,
    weigh: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Full batches only (static shapes for compile and cuDNN); the remainder differs every epoch.

    ``weigh`` (multi-label) gives per-item weights from a chunk's label rows when streaming."""
    for images, labels in data.chunks(generator):
        m = len(labels)
        if sample_weights is not None and data.resident:
            index = weighted_indices(sample_weights, m)
        elif weigh is not None:
            index = weighted_indices(weigh(labels), m)
        elif sample_weights is not None:
            # Streaming: balance within the chunk (chunks are random slices of an item-hash-ordered cache).
            per_item = labels @ sample_weights if labels.dim() == 2 else sample_weights[labels]
            index = weighted_indices(per_item, m)
        else:
            index = torch.randperm(m, device=labels.device)
        for start in range(0, m - batch_size + 1, batch_size):
            batch = index[start : start + batch_size]
            yield images[batch], labels[batch]


def fit(
    train_images: UInt8Array,
    train_labels: AnyArray,
    val_images: UInt8Array | None,
    val_labels: AnyArray | None,
    config: TrainConfig,
    *,
    on_epoch: Callable[[EpochStats], None] | None = None,
    log: Callable[[str], None] | None = None,
    train_targets: AnyArray | None = None,
    item_weights: AnyArray | None = None,
    head: TrainingHead | None = None,
) -> FitResult:
    """Train a classifier on uint8 images with early stopping on the validation score of the kind's head.

    ``train_labels`` are what the training head of ``config.task_kind`` reads (core/tasks/<kind>/training.py):
    class indices (N,), or (N, K) 0/1 indicators. ``train_targets``: optional soft targets to train on instead
    (a Dawid-Skene posterior: class probabilities or per-class marginals); validation stays on hard labels.
    ``val_images`` / ``val_labels`` None: train all epochs and keep the last. ``on_epoch`` (e.g. metric logging)
    and ``log`` (device, compile, cache placement) are called on rank 0 only. ``head``: another training head
    than the kind's (distillation's, core/training/distill.py, wraps the kind's).

    Under ``torchrun`` with several processes (WORLD_SIZE > 1) every rank calls this with the whole cache: each
    trains on its shard under DistributedDataParallel, ``config.batch_size`` stays the global batch (each rank
    takes its share), and metrics are over all ranks. Returns the best model and the per-epoch history.
    """
    distributed = init_distributed(resolve_device(config.device))
    say = (log or (lambda _msg: None)) if distributed.is_main else (lambda _msg: None)
    _check_images(train_images, train_labels, config)
    head = head or training_head(config.task_kind)
    train_labels, train_targets = head.check_labels(train_labels, train_targets, config.num_classes)
    torch.manual_seed(config.seed)
    device = distributed.device(resolve_device(config.device))
    backbone = resolve_backbone(config.backbone, config.image_size)
    # Normalisation and class weights come from the whole training set: the same on every rank.
    mean, std = channel_stats(train_images, seed=config.seed)
    model = build_model(replace(config, backbone=backbone), mean, std)
    weights = config.class_weights or head.class_weights(train_labels, train_targets, config)
    shard = distributed.shard(len(train_labels))
    # The global batch is split over the ranks: the same optimisation as one process with this batch.
    batch_size = max(1, min(config.batch_size, len(train_labels)) // distributed.world_size)
    data = DeviceData(train_images[shard], (train_labels if train_targets is None else train_targets)[shard],
                      device, max_device_bytes=cache_budget(config, device), chunk_multiple=batch_size)
    steps_per_epoch = max(1, sum(len(range(0, m - batch_size + 1, batch_size)) for m in chunk_sizes(data)))
    trainer = Trainer(model, config, device, steps_per_epoch * config.epochs, distributed, head=head)
    if distributed.active:
        torch.manual_seed(config.seed + distributed.rank)  # each rank its own shuffles and augmentations
    say(f"device={device} backbone={backbone} compiled={trainer.compiled} amp={trainer.amp} "
        f"cache={'resident' if data.resident else 'streamed'} upload={data.upload_seconds:.2f}s"
        + (f" ranks={distributed.world_size} batch/rank={batch_size}" if distributed.active else ""))
    weight_tensor = torch.tensor(weights, dtype=torch.float32, device=device)
    sampling = head.sampling(data, train_labels, train_targets, weight_tensor, config)
    if item_weights is not None and data.resident:  # tier weights (docs/tiers.md): weighted draws per item
        per_item = torch.as_tensor(np.asarray(item_weights, dtype=np.float32)[shard], device=device)
        base = sampling.sample_weights if sampling.sample_weights is not None else torch.ones_like(per_item)
        sampling = Sampling(sample_weights=base * per_item, weigh=None, loss_weight=sampling.loss_weight)
    elif item_weights is not None:
        say("tier weights other than 0 and 1 need the resident cache: ignored for this streamed run")
    trainer.loss_weight = sampling.loss_weight
    val = _Validation.of(trainer, val_images, val_labels, distributed)
    generator = torch.Generator()
    generator.manual_seed(config.seed + distributed.rank)
    kept = _Best()
    for epoch in range(1, config.epochs + 1):
        stats = _train_epoch(trainer, data, batch_size, generator, sampling, distributed, epoch)
        val.score(stats)
        kept.history.append(stats)
        if on_epoch is not None and distributed.is_main:
            on_epoch(stats)
        if kept.stop(head.early_stopping_score(vars(stats)), trainer.model, config.patience):
            break
    if kept.state is not None:
        trainer.model.load_state_dict(kept.state)
    trainer.model.eval()
    # Thresholds (multi-label) are chosen on val with the kept weights.
    thresholds, best_score = head.thresholds(val.labels, val.probabilities(), config.num_classes, kept.score)
    best_auc = kept.history[kept.epoch - 1].val_macro_auc if kept.history else None
    return FitResult(
        model=trainer.model, history=kept.history, best_epoch=kept.epoch, best_val_macro_f1=best_score,
        stopped_early=kept.stopped_early, device=str(device), backbone=backbone, compiled=trainer.compiled,
        class_weights=weights, mean=mean, std=std, upload_seconds=data.upload_seconds, resident=data.resident,
        world_size=distributed.world_size, replica_spread=parameter_spread(trainer.model, distributed),
        best_val_macro_auc=best_auc, thresholds=thresholds,
    )


def _check_images(images: UInt8Array, labels: AnyArray, config: TrainConfig) -> None:
    if len(labels) == 0:
        raise ValueError("no training images")
    if images.shape[1] != config.channels or images.shape[2] != config.image_size:
        raise ValueError(
            f"images are {tuple(images.shape[1:])} but the config wants "
            f"{config.channels} x {config.image_size} x {config.image_size}"
        )


def _train_epoch(
    trainer: Trainer,
    data: DeviceData,
    batch_size: int,
    generator: torch.Generator,
    sampling: Sampling,
    distributed: Distributed,
    epoch: int,
) -> EpochStats:
    """One pass over the training data; the loss is summed on the device and read once (the epoch's one sync)."""
    start = time.perf_counter()
    loss_sum = torch.zeros((), device=trainer.device)
    steps = 0
    for xb, yb in epoch_batches(data, batch_size, generator, sampling.sample_weights, sampling.weigh):
        loss_sum += trainer.step(trainer.prepare(xb), yb)
        steps += 1
    count = torch.tensor(float(steps), dtype=torch.float64, device=trainer.device)
    totals = distributed.all_reduce_sum(torch.stack([loss_sum.double(), count]))
    return EpochStats(
        epoch=epoch,
        train_loss=float((totals[0] / totals[1].clamp_min(1)).item()),
        lr=trainer.lr_at(max(0, trainer.step_count - 1)),
        train_seconds=time.perf_counter() - start,
        train_images=int(totals[1].item()) * batch_size,
    )


@dataclass
class _Validation:
    """The validation split as the head scores it (on the device when it fits), or nothing to score."""

    trainer: Trainer
    distributed: Distributed
    images: Any = None
    y: torch.Tensor | None = None
    labels: AnyArray | None = None

    @classmethod
    def of(
        cls, trainer: Trainer, images: UInt8Array | None, labels: AnyArray | None, distributed: Distributed
    ) -> _Validation:
        if images is None or labels is None or not len(labels):
            return cls(trainer, distributed, labels=labels)
        rows, labels = trainer.head.select_val(labels, trainer.config.num_classes, distributed)
        images, labels = images[rows], labels[rows]
        budget = cache_budget(trainer.config, trainer.device)
        on_device = trainer.device.type == "cuda" and (budget is None or images.nbytes <= budget // 4)
        shown = host_tensor(images).to(trainer.device) if on_device else images
        return cls(trainer, distributed, shown, trainer.head.val_tensor(labels).to(trainer.device), labels)

    def score(self, stats: EpochStats) -> None:
        if self.y is None:
            return
        start = time.perf_counter()
        for name, value in self.trainer.head.validate(self.logits(), self.y, self.distributed).items():
            setattr(stats, name, value)
        stats.val_seconds = time.perf_counter() - start

    def logits(self) -> torch.Tensor:
        return _val_logits(self.trainer, self.images)

    def probabilities(self) -> Callable[[], AnyArray] | None:
        if self.y is None:
            return None
        return lambda: self.trainer.head.probabilities(self.logits()).cpu().numpy()


@dataclass
class _Best:
    """The best epoch so far by the head's early-stopping score, its weights, and patience."""

    history: list[EpochStats] = field(default_factory=list)
    score: float | None = None
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None
    stale: int = 0
    stopped_early: bool = False

    def stop(self, score: float | None, model: nn.Module, patience: int) -> bool:
        """Keep this epoch when it is better (or unscored); True when patience has run out."""
        if score is None or self.score is None or score > self.score:
            self.score, self.epoch, self.stale = score, self.history[-1].epoch, 0
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.stale += 1
        self.stopped_early = bool(patience) and self.stale >= patience
        return self.stopped_early


def _val_logits(trainer: Trainer, images: Any) -> torch.Tensor:
    return predict_logits(
        trainer.model,
        images,
        device=trainer.device,
        batch_size=trainer.config.eval_batch_size,
        amp=trainer.amp,
        channels_last=trainer.channels_last,
    )
