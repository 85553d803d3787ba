"""The settings of a training run: one source of truth for the asset's run config and the command line.

``TrainConfig``'s defaults are THE defaults: ``TrainedModelConfig`` (the Dagster run config) and
``python -m labeling_assets.core.training`` read theirs from :data:`DEFAULTS`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

if TYPE_CHECKING:  # torch costs seconds of import in every run process that never trains
    import torch

# tiny_cnn: small_cnn at half the width (a quarter of the parameters), a distillation student for small images.
Backbone = Literal["auto", "small_cnn", "tiny_cnn", "resnet18", "efficientnet_b0", "mobilenet_v3_small"]
LossKind = Literal["ce", "focal"]
SamplerKind = Literal["shuffle", "weighted"]
# Multi-label losses over K independent sigmoids (see core.training.multilabel).
MultiLabelLoss = Literal["bce", "focal", "asl", "bce_focal"]
# How BCE's pos_weight comes from the training prevalence: negatives/positives per class, Cui et al.'s
# effective numbers, or none.
PosWeightKind = Literal["inverse_frequency", "effective_number", "none"]
CompileMode = Literal["auto", "on", "off"]
# What turns the backbone's last feature map into logits: its own pooled linear layer, or multi-head
# self-attention over the map's positions (efficientnet_b0 only; core/training/attention.py).
HeadKind = Literal["linear", "attention"]
ATTENTION_BACKBONES = ("efficientnet_b0",)

BACKBONES: tuple[str, ...] = tuple(name for name in get_args(Backbone) if name != "auto")
# Below this size ImageNet backbones downsample the picture to almost nothing (ResNet's stem alone
# divides by 4); a small CNN with two poolings fits tiny images like the 8x8-sourced demo digits.
SMALL_IMAGE_MAX = 63

# Fewer optimizer steps than this per epoch and early stopping judges a model that has barely moved
# (300 items at batch 128 = 3 steps: stopped at epoch 6 with macro-F1 0.03 in the demo).
MIN_STEPS_PER_EPOCH = 10
MIN_BATCH_SIZE = 16


@dataclass(frozen=True)
class AugmentConfig:
    """Per-batch augmentation on the training device. Defaults are safe for most image classes."""

    rotation_deg: float = 10.0  # uniform in [-deg, +deg]
    brightness: float = 0.1  # additive shift in [-b, +b] on [0, 1] pixels
    contrast: float = 0.1  # scale around the image mean in [1-c, 1+c]
    noise_std: float = 0.02  # Gaussian noise with std uniform in [0, noise_std]
    # OFF by default: a flip swaps meaning (left/right ear, mirrored digits and letters).
    hflip: bool = False

    @property
    def active(self) -> bool:
        return bool(self.rotation_deg or self.brightness or self.contrast or self.noise_std or self.hflip)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (logged as MLflow params by the asset)."""

    num_classes: int
    backbone: Backbone = "auto"  # auto: small_cnn below 64 px, resnet18 otherwise
    head: HeadKind = "linear"  # attention: self-attention over the feature map (efficientnet_b0 only)
    image_size: int = 224
    channels: int = 3
    epochs: int = 20
    # 128, the asset's default since the first release; the command line said 256 until both read this.
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05  # linear warm-up share of all steps, then cosine decay
    label_smoothing: float = 0.0
    loss: LossKind = "ce"
    focal_gamma: float = 2.0
    class_weighted_loss: bool = True  # weights total / (n_classes * count); ignored with the weighted sampler
    class_weights: list[float] | None = None  # overrides the weights computed from the training labels
    sampler: SamplerKind = "shuffle"  # weighted: class-balanced draws with replacement, on the device
    # Per label tier (verified, consensus, machine: docs/tiers.md) a weight: 0 leaves the tier's items out of
    # training; another weight makes its items drawn that much as often (weighted draws; the resident cache only).
    tier_weights: dict[str, float] | None = None
    patience: int = 5  # epochs without a better val score (the head's: macro-F1; sets: macro-AUC)
    # The kind of labeling task (core/tasks) whose training head this run uses: its outputs, loss, labels and
    # validation (a tensor cache's meta ``task_type`` names it).
    task_kind: str = "single_label"
    # 0.7 BCE + 0.3 focal with the rarest-label sampler: the best macro-AUC (and rare-class AUC) on the digit
    # grids of benchmarks/multilabel_loss.py (README, "Multi-label training").
    multi_label_loss: MultiLabelLoss = "bce_focal"
    pos_weight: PosWeightKind = "inverse_frequency"  # ignored with the weighted (rarest-label) sampler
    # The multi-label run's sampler (``sampler`` is the single-label one): weighted = each item drawn by its
    # rarest label (it replaces pos_weight).
    multi_label_sampler: SamplerKind = "weighted"
    effective_number_beta: float = 0.999  # Cui et al. 2019's beta for pos_weight=effective_number
    focal_alpha: float = 0.25  # multi-label focal: weight of the positive term (negatives get 1 - alpha)
    asl_gamma_neg: float = 4.0  # asymmetric loss (Ridnik et al. 2021): focusing on negatives
    asl_gamma_pos: float = 0.0  # ... and on positives
    asl_clip: float = 0.05  # probability margin under which easy negatives cost nothing
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast (CUDA only; the CPU path stays fp32)
    channels_last: bool = True  # CUDA only
    compile: CompileMode = "auto"  # auto compiles on CUDA when the run is long enough to pay
    compile_min_steps: int = 3000  # compiling costs ~1 min: worth it only for long runs
    weights_path: str | None = None  # local state_dict; nothing is ever downloaded
    seed: int = 0
    eval_batch_size: int = 1024
    # Share of free GPU memory the uint8 cache may take before it is streamed in chunks instead.
    device_cache_fraction: float = 0.5
    device_cache_max_bytes: int | None = None  # hard cap (tests use it to exercise streaming)

    def to_params(self, leave_out: Collection[str] = ()) -> dict[str, Any]:
        """Flat parameters (augmentation keys prefixed ``aug_``) for experiment tracking, without ``leave_out``
        (``core.tasks.registry.tracked_params`` leaves out the settings only other kinds' training heads read)."""
        skip = {"augment", *leave_out}
        params = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        params.update({f"aug_{k}": v for k, v in asdict(self.augment).items()})
        return params

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A config as ``asdict`` wrote it; one written before kinds existed says ``multi_label: true|false``."""
        data = dict(data)
        if LEGACY_KIND_FLAG in data:
            flagged = data.pop(LEGACY_KIND_FLAG)
            data.setdefault("task_kind", "multi_label" if flagged else "single_label")
        augment = AugmentConfig(**data.pop("augment", {}) or {})
        known = {f.name for f in fields(cls)}
        return cls(augment=augment, **{k: v for k, v in data.items() if k in known})


# Configs and checkpoints written before task kinds name the kind by this flag (TrainConfig.from_dict reads it).
LEGACY_KIND_FLAG = "multi_label"


# The run settings both front ends (the trained_model run config, the command line) carry under these names.
RUN_SETTINGS = (
    "backbone", "head", "epochs", "batch_size", "lr", "weight_decay", "patience", "loss", "sampler", "multi_label_loss",
    "pos_weight", "multi_label_sampler", "class_weighted_loss", "device", "compile", "weights_path", "seed",
)


def config_for_cache(meta: Mapping[str, Any], settings: Any, **overrides: Any) -> TrainConfig:
    """A run's TrainConfig: classes, image shape and the kind of task from a tensor cache's ``meta``; every
    other field the same-named attribute of ``settings`` (the asset's run config or the parsed command line),
    then ``overrides``."""
    chosen = {name: getattr(settings, name) for name in RUN_SETTINGS}
    chosen.update(overrides)
    classes = meta["classes"]
    return TrainConfig(
        num_classes=len(classes),
        image_size=int(str(meta["image_size"])),
        channels=int(str(meta["channels"])),
        augment=AugmentConfig(hflip=settings.hflip),
        task_kind=str(meta.get("task_type", "single_label")),
        **chosen,
    )


# The defaults every front end starts from (num_classes comes from the data, never from a default).
DEFAULTS = TrainConfig(num_classes=0)


def effective_batch_size(requested: int, n_train: int) -> int:
    """``requested``, lowered for small training sets so an epoch has at least MIN_STEPS_PER_EPOCH steps."""
    return max(1, min(requested, max(MIN_BATCH_SIZE, n_train // MIN_STEPS_PER_EPOCH)))


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is a clear error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available on this machine")
    return resolved


def check_head(head: str, backbone: str) -> None:
    """A clear error before any training when ``head`` cannot go on the (resolved) ``backbone``."""
    if head == "attention" and backbone not in ATTENTION_BACKBONES:
        raise ValueError(
            f"head 'attention' needs backbone {' or '.join(ATTENTION_BACKBONES)}, not {backbone!r}"
        )
    if head not in get_args(HeadKind):
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(get_args(HeadKind))}")


def resolve_backbone(backbone: str, image_size: int) -> Backbone:
    """The backbone to build: ``auto`` means small_cnn for tiny images and resnet18 otherwise."""
    if backbone == "auto":
        return "small_cnn" if image_size <= SMALL_IMAGE_MAX else "resnet18"
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)} or auto")
    return cast(Backbone, backbone)
