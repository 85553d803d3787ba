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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from labeling_assets.core.training.augment import augment_batch
from labeling_assets.core.training.config import Backbone, TrainConfig, resolve_backbone, resolve_device
from labeling_assets.core.training.device_data import DeviceData, cache_budget, chunk_sizes, host_tensor
from labeling_assets.core.training.distributed import Distributed, init_distributed, parameter_spread
from labeling_assets.core.training.losses import (
    check_soft_targets,
    class_weights_from_labels,
    classification_loss,
    weighted_indices,
)
from labeling_assets.core.training.models import Classifier, build_model, channel_stats
from labeling_assets.core.training.multilabel import (
    check_indicator,
    check_marginal_targets,
    early_stopping_score,
    multilabel_loss,
    pos_weights,
    rarest_label_weights,
    val_thresholds,
    validation_scores,
)
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
    ) -> None:
        self.config = config
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
        if self.config.multi_label:
            return multilabel_loss(
                logits.float(),
                y,
                kind=self.config.multi_label_loss,
                pos_weight=self.loss_weight,
                focal_alpha=self.config.focal_alpha,
                focal_gamma=self.config.focal_gamma,
                asl_gamma_neg=self.config.asl_gamma_neg,
                asl_gamma_pos=self.config.asl_gamma_pos,
                asl_clip=self.config.asl_clip,
            )
        return classification_loss(
            logits.float(),
            y,
            kind=self.config.loss,
            weight=self.loss_weight,
            gamma=self.config.focal_gamma,
            label_smoothing=self.config.label_smoothing,
        )

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


def _confusion(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).view(
        num_classes, num_classes
    )


def _macro_f1_torch(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> float:
    return _macro_f1_from_confusion(_confusion(y_true, y_pred, num_classes))


def _macro_f1_from_confusion(cm: torch.Tensor) -> float:
    # Same definition as core.metrics.macro_f1, computed on the device with one transfer.
    tp = cm.diag().double()
    support, predicted = cm.sum(1).double(), cm.sum(0).double()
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp_min(1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-12), torch.zeros_like(tp))
    present = (support > 0) | (predicted > 0)
    return float(f1[present].mean().item()) if bool(present.any()) else 0.0


def _evaluate_val(
    trainer: Trainer, images: Any, labels: torch.Tensor, distributed: Distributed
) -> tuple[float, float, float]:
    """Validation loss, accuracy and macro-F1; under DDP each rank scores its shard and the sums
    (loss, count, confusion matrix) are added over ranks, so every rank sees the same figures."""
    k = trainer.config.num_classes
    logits = predict_logits(
        trainer.model,
        images,
        device=trainer.device,
        batch_size=trainer.config.eval_batch_size,
        amp=trainer.amp,
        channels_last=trainer.channels_last,
    )
    loss_sum = F.cross_entropy(logits, labels, reduction="sum").double().reshape(1)
    cm = _confusion(labels, logits.argmax(dim=1), k).double().reshape(-1)
    totals = distributed.all_reduce_sum(torch.cat([loss_sum, cm]))
    cm = totals[1:].view(k, k)
    n = max(1.0, float(cm.sum().item()))
    return float(totals[0].item()) / n, float(cm.diag().sum().item()) / n, _macro_f1_from_confusion(cm)


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
) -> FitResult:
    """Train a classifier on uint8 images with early stopping on validation macro-F1.

    Args:
        train_images: uint8 (N, C, H, W), e.g. a memory-mapped cache split.
        train_labels: int class indices (N,).
        train_targets: optional class probabilities (N, num_classes) to train on instead of the hard
            labels, e.g. a Dawid-Skene consensus posterior (soft targets). Class weights still
            come from ``train_labels``; the weighted sampler draws by each item's expected class
            weight; validation stays on hard labels.
        val_images / val_labels: the validation split, or None to train all epochs and keep the last.
        config: the run's settings.
        on_epoch: called after every epoch (e.g. to log metrics); under torchrun on rank 0 only.
        log: receives a few human-readable lines (device, compile, cache placement); rank 0 only.

    Under ``torchrun`` with several processes (WORLD_SIZE > 1) every rank calls this with the whole
    cache: each trains on its shard under DistributedDataParallel, ``config.batch_size`` stays the
    global batch (each rank takes its share), and metrics are over all ranks.

    Returns:
        The best model and the per-epoch history.
    """
    distributed = init_distributed(resolve_device(config.device))
    say = (log or (lambda _msg: None)) if distributed.is_main else (lambda _msg: None)
    if len(train_labels) == 0:
        raise ValueError("no training images")
    if train_images.shape[1] != config.channels or train_images.shape[2] != config.image_size:
        raise ValueError(
            f"images are {tuple(train_images.shape[1:])} but the config wants "
            f"{config.channels} x {config.image_size} x {config.image_size}"
        )
    multi = config.multi_label
    if multi:
        train_labels = check_indicator(train_labels, config.num_classes)
        if train_targets is not None:
            train_targets = check_marginal_targets(train_targets, len(train_labels), config.num_classes)
    else:
        train_labels = np.asarray(train_labels, dtype=np.int64)
        if train_labels.min() < 0 or train_labels.max() >= config.num_classes:
            raise ValueError(f"labels must be class indices in 0..{config.num_classes - 1}")
        if train_targets is not None:
            train_targets = check_soft_targets(train_targets, len(train_labels), config.num_classes)
    torch.manual_seed(config.seed)
    device = distributed.device(resolve_device(config.device))
    backbone = resolve_backbone(config.backbone, config.image_size)
    # Normalisation and class weights come from the whole training set: the same on every rank.
    mean, std = channel_stats(train_images, seed=config.seed)
    model = build_model(replace(config, backbone=backbone), mean, std)
    # Multi-label: pos_weight per class from the prevalence of what is trained on (soft marginals count
    # their expected positives).
    prevalence = train_labels if train_targets is None else train_targets
    weights = config.class_weights or (
        pos_weights(prevalence, config.pos_weight, config.effective_number_beta)
        if multi
        else class_weights_from_labels(train_labels, config.num_classes)
    )
    shard = distributed.shard(len(train_labels))
    # The global batch is split over the ranks: the same optimisation as one process with this batch.
    global_batch = min(config.batch_size, len(train_labels))
    batch_size = max(1, global_batch // distributed.world_size)
    data = DeviceData(
        train_images[shard],
        (train_labels if train_targets is None else train_targets)[shard],
        device,
        max_device_bytes=cache_budget(config, device),
        chunk_multiple=batch_size,
    )
    steps_per_epoch = max(1, sum(len(range(0, m - batch_size + 1, batch_size)) for m in chunk_sizes(data)))
    trainer = Trainer(
        model, config, device, total_steps=steps_per_epoch * config.epochs, distributed=distributed
    )
    if distributed.active:
        torch.manual_seed(config.seed + distributed.rank)  # each rank its own shuffles and augmentations
    say(
        f"device={device} backbone={backbone} compiled={trainer.compiled} amp={trainer.amp} "
        f"cache={'resident' if data.resident else 'streamed'} upload={data.upload_seconds:.2f}s"
        + (f" ranks={distributed.world_size} batch/rank={batch_size}" if distributed.active else "")
    )

    weight_tensor = torch.tensor(weights, dtype=torch.float32, device=device)
    sample_weights: torch.Tensor | None = None
    weigh: Callable[[torch.Tensor], torch.Tensor] | None = None
    sampler = config.multi_label_sampler if multi else config.sampler
    if sampler == "weighted" and multi:
        # Each item drawn by its rarest label (counts over the whole training set: the same on every rank);
        # the sampler replaces pos_weight, as the single-label sampler replaces class weights.
        present = np.asarray(prevalence) >= 0.5
        counts = torch.as_tensor(present.sum(axis=0), dtype=torch.float32, device=device)
        n_empty = float((~present.any(axis=1)).sum())

        def weigh(labels: torch.Tensor) -> torch.Tensor:
            return rarest_label_weights(labels, counts, n_empty)

        if data.resident:
            sample_weights = weigh(data.labels)
    elif sampler == "weighted":
        # The sampler already balances classes; weighting the loss too would correct twice.
        soft = train_targets is not None
        sample_weights = data.labels @ weight_tensor if soft else weight_tensor[data.labels]
        if not data.resident:
            sample_weights = weight_tensor
    elif sampler != "shuffle":
        raise ValueError(f"unknown sampler {sampler!r}; choose shuffle or weighted")
    elif multi:
        trainer.loss_weight = weight_tensor  # pos_weight (all ones with pos_weight="none")
    elif config.class_weighted_loss:
        trainer.loss_weight = weight_tensor

    val_on_device: Any = None
    val_y: torch.Tensor | None = None
    if val_images is not None and val_labels is not None and len(val_labels):
        if multi:
            val_labels = check_indicator(val_labels, config.num_classes)
            # Every rank scores the whole val set: AUC and thresholds need all rows at once, and the same
            # rows on every rank give every rank the same early-stopping decision.
            val_rows = slice(0, len(val_labels))
        else:
            val_rows = distributed.val_shard(len(val_labels))
        val_images, val_labels = val_images[val_rows], val_labels[val_rows]
        val_y = torch.as_tensor(np.asarray(val_labels, dtype=np.float32 if multi else np.int64)).to(device)
        budget = cache_budget(config, device)
        val_on_device = (
            host_tensor(val_images).to(device)
            if device.type == "cuda" and (budget is None or val_images.nbytes <= budget // 4)
            else val_images
        )

    generator = torch.Generator()
    generator.manual_seed(config.seed + distributed.rank)
    history: list[EpochStats] = []
    best_f1: float | None = None
    best_epoch = 0
    best_state: dict[str, torch.Tensor] | None = None
    stale = 0
    stopped_early = False
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        steps = 0
        for xb, yb in epoch_batches(data, batch_size, generator, sample_weights, weigh):
            loss_sum += trainer.step(trainer.prepare(xb), yb)
            steps += 1
        totals = distributed.all_reduce_sum(
            torch.stack([loss_sum.double(), torch.tensor(float(steps), dtype=torch.float64, device=device)])
        )
        train_loss = float((totals[0] / totals[1].clamp_min(1)).item())  # the epoch's one host sync
        stats = EpochStats(
            epoch=epoch,
            train_loss=train_loss,
            lr=trainer.lr_at(max(0, trainer.step_count - 1)),
            train_seconds=time.perf_counter() - start,
            train_images=int(totals[1].item()) * batch_size,
        )
        if val_y is not None:
            val_start = time.perf_counter()
            if multi:
                stats.val_loss, stats.val_macro_f1, stats.val_macro_auc, stats.val_map = validation_scores(
                    _val_logits(trainer, val_on_device), val_y
                )
            else:
                stats.val_loss, stats.val_accuracy, stats.val_macro_f1 = _evaluate_val(
                    trainer, val_on_device, val_y, distributed
                )
            stats.val_seconds = time.perf_counter() - val_start
        history.append(stats)
        if on_epoch is not None and distributed.is_main:
            on_epoch(stats)
        score = early_stopping_score(stats.val_macro_auc, stats.val_loss) if multi else stats.val_macro_f1
        if score is None or best_f1 is None or score > best_f1:
            best_f1 = score
            best_epoch = epoch
            best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            stale = 0
        else:
            stale += 1
            if config.patience and stale >= config.patience:
                stopped_early = True
                break
    if best_state is not None:
        trainer.model.load_state_dict(best_state)
    trainer.model.eval()
    thresholds, best_val_macro_auc = None, None
    if multi:  # thresholds chosen on val with the kept weights
        best_val_macro_auc = history[best_epoch - 1].val_macro_auc if history else None
        val_probs = (
            None if val_y is None else torch.sigmoid(_val_logits(trainer, val_on_device)).cpu().numpy()
        )
        thresholds, best_f1 = val_thresholds(val_labels, val_probs, config.num_classes)
    return FitResult(
        model=trainer.model,
        history=history,
        best_epoch=best_epoch,
        best_val_macro_f1=best_f1,
        stopped_early=stopped_early,
        device=str(device),
        backbone=backbone,
        compiled=trainer.compiled,
        class_weights=weights,
        mean=mean,
        std=std,
        upload_seconds=data.upload_seconds,
        resident=data.resident,
        world_size=distributed.world_size,
        replica_spread=parameter_spread(trainer.model, distributed),
        best_val_macro_auc=best_val_macro_auc,
        thresholds=thresholds,
    )


def _val_logits(trainer: Trainer, images: Any) -> torch.Tensor:
    return predict_logits(
        trainer.model,
        images,
        device=trainer.device,
        batch_size=trainer.config.eval_batch_size,
        amp=trainer.amp,
        channels_last=trainer.channels_last,
    )
