"""Image classifier training: tensor cache, GPU augmentation, training loop, prediction.

Depends on torch, torchvision and numpy only (no dagster, mlflow, pandas or sqlalchemy), so the same
code runs inside the Dagster asset and on a bare GPU machine::

    python -m labeling_assets.core.training.train --cache data/tensors/<dataset_version> --epochs 30 --out model.pt

Why it is shaped this way (DESIGN §6): decoding PNGs on the CPU every epoch caps training far below
what a GPU can do (a PIL/DataLoader pipeline reached under 800 img/s with 15 workers on a machine whose
H100 trains ResNet-18 at 12-16k img/s). So images are decoded ONCE into a uint8 array at training
resolution (:func:`write_tensor_cache`, a memory-mapped ``.npy`` file); on CUDA the whole array (or
large chunks of it) moves to the GPU, and sampling, augmentation and normalisation run there per batch.
The step runs under bf16 autocast with channels_last tensors, optionally through ``torch.compile``, and
the loop never waits for the GPU inside an epoch (losses accumulate on the device; one sync per epoch).

Augmentations are the safe ones only: a small rotation, brightness/contrast and mild Gaussian noise.
Horizontal flip is OFF by default because it changes the meaning of many images: a left ear becomes a
right ear, a 'b' becomes a 'd', a mirrored digit is not a digit. Turn it on only for classes that are
truly mirror-symmetric.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

BACKBONES = ("small_cnn", "resnet18", "efficientnet_b0", "mobilenet_v3_small")
# Below this size ImageNet backbones downsample the picture to almost nothing (ResNet's stem alone
# divides by 4); a small CNN with two poolings fits tiny images like the 8x8-sourced demo digits.
SMALL_IMAGE_MAX = 63

CACHE_META = "meta.json"
CACHE_FORMAT = 1


# --- configuration ------------------------------------------------------------------------------


@dataclass
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


@dataclass
class TrainConfig:
    """Everything that decides a training run (logged as MLflow params by the asset)."""

    num_classes: int
    backbone: str = "auto"  # auto: small_cnn below 64 px, resnet18 otherwise
    image_size: int = 224
    channels: int = 3
    epochs: int = 20
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05  # linear warm-up share of all steps, then cosine decay
    label_smoothing: float = 0.0
    loss: str = "ce"  # ce | focal
    focal_gamma: float = 2.0
    class_weighted_loss: bool = True  # weights total / (n_classes * count); ignored with the weighted sampler
    class_weights: list[float] | None = None  # overrides the weights computed from the training labels
    sampler: str = "shuffle"  # shuffle | weighted (class-balanced draws with replacement, on the device)
    patience: int = 5  # epochs without a better val macro-F1 before stopping
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast (CUDA only; the CPU path stays fp32)
    channels_last: bool = True  # CUDA only
    compile: str = "auto"  # auto | on | off; auto compiles on CUDA when the run is long enough to pay
    compile_min_steps: int = 3000  # compiling costs ~1 min: worth it only for long runs
    weights_path: str | None = None  # local state_dict; nothing is ever downloaded
    seed: int = 0
    eval_batch_size: int = 1024
    # Share of free GPU memory the uint8 cache may take before it is streamed in chunks instead.
    device_cache_fraction: float = 0.5
    device_cache_max_bytes: int | None = None  # hard cap (tests use it to exercise streaming)

    def to_params(self) -> dict[str, Any]:
        """Flat parameters (augmentation keys prefixed ``aug_``) for experiment tracking."""
        params = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "augment"}
        params.update({f"aug_{k}": v for k, v in asdict(self.augment).items()})
        return params

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        augment = AugmentConfig(**data.pop("augment", {}) or {})
        known = {f.name for f in fields(cls)}
        return cls(augment=augment, **{k: v for k, v in data.items() if k in known})


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available on this machine")
    return resolved


def resolve_backbone(backbone: str, image_size: int) -> str:
    """The backbone to build: ``auto`` means small_cnn for tiny images and resnet18 otherwise."""
    if backbone == "auto":
        return "small_cnn" if image_size <= SMALL_IMAGE_MAX else "resnet18"
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)} or auto")
    return backbone


# --- models -------------------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """Four 3x3 conv blocks and global pooling: enough for tiny images (8-63 px), fast on a CPU."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        self.features = nn.Sequential(
            *block(in_channels, width),
            *block(width, width),
            nn.MaxPool2d(2),
            *block(width, 2 * width),
            *block(2 * width, 2 * width),
            nn.MaxPool2d(2),
            *block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Classifier(nn.Module):
    """A backbone with its input normalisation built in.

    Takes uint8 images (N, C, H, W) or floats in [0, 1]; the mean/std of the training set travel with
    the weights, so a logged model needs no separate preprocessing recipe.
    """

    def __init__(self, backbone: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        # Normalise in the input's dtype (bf16 on the GPU path) to avoid an fp32 round trip.
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return self.backbone(x)


def _first_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            return parent, child, module
    raise ValueError("model has no Conv2d layer")


def _adapt_input_channels(model: nn.Module, in_channels: int) -> None:
    """Swap the stem convolution for one taking ``in_channels`` (RGB weights summed for grayscale)."""
    parent, child, conv = _first_conv(model)
    if conv.in_channels == in_channels:
        return
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        if in_channels == 1:
            # Summing keeps what (pretrained) RGB filters respond to when R = G = B.
            new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        else:
            mean = conv.weight.mean(dim=1, keepdim=True)
            new.weight.copy_(mean.repeat(1, in_channels, 1, 1) * (conv.in_channels / in_channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)  # type: ignore[union-attr]
    setattr(parent, child, new)


def _load_local_weights(model: nn.Module, weights_path: str) -> list[str]:
    """Load a local state_dict, skipping tensors whose shape differs (the class head); returns skipped keys."""
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path} (weights are never downloaded)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"no tensor in {path} matches the model's layers: wrong backbone?")
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


def build_backbone(
    name: str, num_classes: int, in_channels: int = 3, weights_path: str | None = None
) -> nn.Module:
    """A torchvision (or small) backbone with a ``num_classes`` head, built without downloading anything."""
    if name == "small_cnn":
        model: nn.Module = SmallCNN(in_channels, num_classes)
        if weights_path:
            _load_local_weights(model, weights_path)
        return model
    if name == "resnet18":
        model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    elif name == "efficientnet_b0":
        model = torchvision.models.efficientnet_b0(weights=None, num_classes=num_classes)
    elif name == "mobilenet_v3_small":
        model = torchvision.models.mobilenet_v3_small(weights=None, num_classes=num_classes)
    else:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if weights_path:
        # RGB ImageNet weights load before the stem is adapted, so grayscale gets summed filters.
        _load_local_weights(model, weights_path)
    _adapt_input_channels(model, in_channels)
    return model


def build_model(
    config: TrainConfig, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> Classifier:
    """The classifier for ``config`` (backbone resolved, input channels adapted, normalisation built in)."""
    name = resolve_backbone(config.backbone, config.image_size)
    backbone = build_backbone(name, config.num_classes, config.channels, config.weights_path)
    return Classifier(
        backbone,
        mean if mean is not None else [0.5] * config.channels,
        std if std is not None else [0.25] * config.channels,
    )


# --- decoding and the tensor cache ---------------------------------------------------------------


def decode_image_file(path: str | Path, image_size: int, channels: int) -> torch.Tensor:
    """Decode one image file to uint8 (channels, image_size, image_size); the picture is resized to a square.

    torchvision decodes PNG/JPEG/GIF/WebP natively; anything else goes through Pillow (a torchvision
    dependency). Raises ``ValueError`` naming the file when it cannot be decoded.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        data = torchvision.io.read_file(str(path))
        mode = torchvision.io.ImageReadMode.GRAY if channels == 1 else torchvision.io.ImageReadMode.RGB
        image = torchvision.io.decode_image(data, mode=mode)
    except (RuntimeError, ValueError):
        image = _decode_with_pillow(path, channels)
    if image.dtype != torch.uint8:  # 16-bit PNGs decode to uint16
        image = (image.float() * (255.0 / float(torch.iinfo(image.dtype).max))).round().to(torch.uint8)
    if tuple(image.shape[-2:]) != (image_size, image_size):
        resized = F.interpolate(
            image[None].float(),
            size=(image_size, image_size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        image = resized[0].round().clamp_(0, 255).to(torch.uint8)
    return image


def _decode_with_pillow(path: str | Path, channels: int) -> torch.Tensor:
    try:
        from PIL import Image

        with Image.open(path) as picture:
            array = np.asarray(picture.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except Exception as exc:  # any decoder failure becomes one clear error naming the file
        raise ValueError(f"cannot decode image {path}: {exc}") from exc
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


@dataclass(frozen=True)
class DecodeFailure:
    index: int
    path: str
    error: str


def decode_images(
    paths: Sequence[str],
    image_size: int,
    channels: int,
    out: np.ndarray | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, list[DecodeFailure]]:
    """Decode ``paths`` into ``out`` (uint8, N x C x S x S; allocated when None) with a thread pool.

    Undecodable files do not stop the batch: their rows stay zero and they are returned as failures,
    so the caller can report them and drop those rows.
    """
    n = len(paths)
    if out is None:
        out = np.zeros((n, channels, image_size, image_size), dtype=np.uint8)
    elif out.shape != (n, channels, image_size, image_size) or out.dtype != np.uint8:
        raise ValueError(
            f"out must be uint8 {(n, channels, image_size, image_size)}, got {out.dtype} {out.shape}"
        )
    failures: list[DecodeFailure] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        try:
            out[index] = decode_image_file(paths[index], image_size, channels).numpy()
        except (OSError, ValueError, RuntimeError) as exc:
            with lock:
                failures.append(DecodeFailure(index, str(paths[index]), str(exc)))

    workers = workers or min(8, os.cpu_count() or 1)
    if workers <= 1 or n < 64:
        for index in range(n):
            work(index)
    else:
        # torchvision's decoders and resize release the GIL, so threads scale without process fan-out.
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(n), chunksize=32))
    return out, sorted(failures, key=lambda f: f.index)


@dataclass(frozen=True)
class CacheSplit:
    """One split of a tensor cache: memory-mapped uint8 images, int64 labels and the item ids."""

    images: np.ndarray
    labels: np.ndarray
    item_ids: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def _split_files(folder: Path, split: str) -> tuple[Path, Path, Path]:
    return folder / f"{split}.images.npy", folder / f"{split}.labels.npy", folder / f"{split}.items.json"


def read_cache_meta(folder: str | Path) -> dict[str, Any] | None:
    """The cache's metadata, or None when the folder holds no complete cache (meta.json is written last)."""
    path = Path(folder) / CACHE_META
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def write_tensor_cache(
    folder: str | Path,
    splits: dict[str, tuple[Sequence[str], Sequence[int], Sequence[str]]],
    *,
    image_size: int,
    channels: int,
    classes: Sequence[str],
    extra_meta: dict[str, Any] | None = None,
    workers: int | None = None,
) -> tuple[dict[str, Any], dict[str, list[DecodeFailure]]]:
    """Decode each split's images once into ``<folder>/<split>.images.npy`` (uint8 memmap).

    ``splits`` maps a split name to (paths, label indices, item ids). The cache is built in a sibling
    temporary folder and swapped in whole, and ``meta.json`` is written last, so a crash never leaves
    a half cache that looks complete. Rows that fail to decode are dropped (and returned per split).
    """
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    if tmp.exists():
        _remove_tree(tmp)
    tmp.mkdir(parents=True)
    failures: dict[str, list[DecodeFailure]] = {}
    counts: dict[str, int] = {}
    class_counts: dict[str, list[int]] = {}
    for split, (paths, labels, item_ids) in splits.items():
        if not (len(paths) == len(labels) == len(item_ids)):
            raise ValueError(f"split {split!r}: paths, labels and item ids differ in length")
        images_path, labels_path, items_path = _split_files(tmp, split)
        n = len(paths)
        images = np.lib.format.open_memmap(
            images_path, mode="w+", dtype=np.uint8, shape=(n, channels, image_size, image_size)
        )
        _, bad = decode_images(list(paths), image_size, channels, out=images, workers=workers)
        keep = np.ones(n, dtype=bool)
        keep[[f.index for f in bad]] = False
        label_array = np.asarray(labels, dtype=np.int64)
        kept_ids = [item for item, ok in zip(item_ids, keep, strict=True) if ok]
        if bad:
            compact = np.ascontiguousarray(images[keep])
            del images
            np.save(images_path, compact)
        else:
            images.flush()
            del images
        np.save(labels_path, label_array[keep])
        items_path.write_text(json.dumps(kept_ids))
        failures[split] = bad
        counts[split] = int(keep.sum())
        class_counts[split] = np.bincount(label_array[keep], minlength=len(classes)).tolist()
    meta = {
        "format": CACHE_FORMAT,
        "image_size": image_size,
        "channels": channels,
        "classes": list(classes),
        "counts": counts,
        "class_counts": class_counts,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra_meta or {}),
    }
    (tmp / CACHE_META).write_text(json.dumps(meta, indent=2))
    if folder.exists():
        _remove_tree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(folder)
    return meta, failures


def _remove_tree(path: Path) -> None:
    for child in path.iterdir():
        if child.is_dir():
            _remove_tree(child)
        else:
            child.unlink()
    path.rmdir()


def load_cache_split(folder: str | Path, split: str) -> CacheSplit:
    """One split of a cache written by :func:`write_tensor_cache` (images memory-mapped, not read)."""
    folder = Path(folder)
    if read_cache_meta(folder) is None:
        raise FileNotFoundError(f"no complete tensor cache in {folder} (meta.json missing)")
    images_path, labels_path, items_path = _split_files(folder, split)
    if not images_path.is_file():
        raise FileNotFoundError(f"tensor cache {folder} has no split {split!r}")
    return CacheSplit(
        images=np.load(images_path, mmap_mode="r"),
        labels=np.load(labels_path),
        item_ids=json.loads(items_path.read_text()),
    )


def channel_stats(
    images: np.ndarray, max_images: int = 4096, seed: int = 0
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of pixels in [0, 1] over a sample of the images."""
    n = len(images)
    if n == 0:
        channels = images.shape[1]
        return [0.5] * channels, [0.25] * channels
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(n, size=min(n, max_images), replace=False))
    sample = torch.from_numpy(np.asarray(images[index])).float() / 255.0
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3)  # a constant channel must not divide by zero
    return mean.tolist(), std.tolist()


# --- loss, weights, sampling, augmentation --------------------------------------------------------


def class_weights_from_labels(labels: np.ndarray, num_classes: int) -> list[float]:
    """``total / (n_classes * count)`` per class (DESIGN §6); classes without examples get 1.0."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.tolist()


def classification_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    kind: str = "ce",
    weight: torch.Tensor | None = None,
    gamma: float = 2.0,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Class-weighted cross-entropy or focal loss, a weighted mean over the batch.

    Focal loss scales each item's cross-entropy by ``(1 - p_true) ** gamma`` so well-classified items
    (usually of the big classes) stop dominating; with ``gamma = 0`` it equals cross-entropy.

    ``targets`` are class indices (N,) or class probabilities (N, K), e.g. a consensus posterior: soft
    targets keep the crowd's doubt instead of betting on the argmax. With one-hot rows the soft path
    gives exactly the hard loss (same class weighting, smoothing and focal term).
    """
    if targets.dim() == 2:
        return _soft_target_loss(logits, targets, kind, weight, gamma, label_smoothing)
    if kind == "ce":
        return F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
    if kind != "focal":
        raise ValueError(f"unknown loss {kind!r}; choose ce or focal")
    log_probs = F.log_softmax(logits, dim=1)
    log_p_true = log_probs.gather(1, targets[:, None]).squeeze(1)
    focal = (1.0 - log_p_true.exp()).clamp_min(0.0) ** gamma
    if label_smoothing:
        ce = (1 - label_smoothing) * -log_p_true - label_smoothing * log_probs.mean(dim=1)
    else:
        ce = -log_p_true
    per_item = focal * ce
    if weight is None:
        return per_item.mean()
    item_weight = weight[targets]
    return (per_item * item_weight).sum() / item_weight.sum()


def _soft_target_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    kind: str,
    weight: torch.Tensor | None,
    gamma: float,
    label_smoothing: float,
) -> torch.Tensor:
    if kind not in ("ce", "focal"):
        raise ValueError(f"unknown loss {kind!r}; choose ce or focal")
    log_probs = F.log_softmax(logits, dim=1)
    smoothed = targets
    if label_smoothing:
        smoothed = (1 - label_smoothing) * targets + label_smoothing / targets.shape[1]
    class_weight = torch.ones_like(log_probs[0]) if weight is None else weight
    item_weight = targets @ class_weight  # the expected weight of the item's class, before smoothing
    if kind == "ce":
        # As F.cross_entropy: class weights scale each class's term (smoothing terms included).
        per_item = -(smoothed * class_weight * log_probs).sum(dim=1)
    else:
        # As the hard focal loss above: the item's weight scales its whole focal term.
        p_true = (targets * log_probs.exp()).sum(dim=1)
        focal = (1.0 - p_true).clamp_min(0.0) ** gamma
        per_item = focal * -(smoothed * log_probs).sum(dim=1) * item_weight
    return per_item.sum() / item_weight.sum()


def weighted_indices(
    sample_weights: torch.Tensor, n: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``n`` indices drawn with replacement proportionally to ``sample_weights``, on their device.

    The GPU-side equivalent of ``WeightedRandomSampler``: inverse-CDF search instead of
    ``torch.multinomial``, which caps the number of categories at 2**24.
    """
    cdf = torch.cumsum(sample_weights.double(), dim=0)
    draws = torch.rand(n, device=sample_weights.device, dtype=torch.float64, generator=generator) * cdf[-1]
    return torch.searchsorted(cdf, draws).clamp_(max=len(sample_weights) - 1)


def augment_batch(x: torch.Tensor, config: AugmentConfig) -> torch.Tensor:
    """Random per-item augmentation of a float batch in [0, 1] (N, C, H, W), entirely on x's device."""
    n = x.shape[0]
    device, dtype = x.device, x.dtype
    if config.rotation_deg:
        angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(config.rotation_deg)
        cos, sin, zero = angle.cos(), angle.sin(), torch.zeros(n, device=device)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        grid = F.affine_grid(theta.to(dtype), list(x.shape), align_corners=False)
        # Border padding repeats the edge (the background, usually) instead of inventing black corners.
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if config.brightness or config.contrast:
        scale = 1 + (torch.rand(n, 1, 1, 1, device=device, dtype=dtype) * 2 - 1) * config.contrast
        shift = (torch.rand(n, 1, 1, 1, device=device, dtype=dtype) * 2 - 1) * config.brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * scale + mean + shift
    if config.noise_std:
        sigma = torch.rand(n, 1, 1, 1, device=device, dtype=dtype) * config.noise_std
        x = x + torch.randn_like(x) * sigma
    if config.hflip:
        flip = torch.rand(n, 1, 1, 1, device=device) < 0.5
        x = torch.where(flip, x.flip(-1), x)
    return x.clamp(0.0, 1.0)


# --- device data ---------------------------------------------------------------------------------


class DeviceData:
    """The uint8 training images where the training step reaches them fast.

    Resident mode: the whole array lives on the device (uploaded once through a pinned buffer) and a
    batch is a gather by index. Streaming mode (array larger than the allowed share of GPU memory):
    chunks in shuffled order are staged by a background thread into pinned memory and copied while the
    GPU trains on the previous chunk; batches are drawn inside a chunk. On the CPU the memory map is
    used directly.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        device: torch.device,
        *,
        max_device_bytes: int | None = None,
        chunk_multiple: int = 1,
    ) -> None:
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images_np = images
        self.device = device
        self.n = len(images)
        labels = np.asarray(labels)
        # Class indices (N,), or class probabilities (N, K) for soft targets; sliced and gathered alike.
        dtype = np.float32 if labels.ndim == 2 else np.int64
        self.labels = torch.as_tensor(labels.astype(dtype, copy=False)).to(device)
        self.image_bytes = int(np.prod(images.shape[1:]))
        total = self.image_bytes * self.n
        budget = max_device_bytes if max_device_bytes is not None else _device_budget(device)
        self.resident = total <= budget
        self.upload_seconds = 0.0
        if self.resident:
            start = time.perf_counter()
            self.images = self._upload_all()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            self.upload_seconds = time.perf_counter() - start
            self.chunk_images = self.n
        else:
            per_chunk = max(1, budget // (2 * self.image_bytes))  # two chunks in flight
            self.chunk_images = max(chunk_multiple, per_chunk // chunk_multiple * chunk_multiple)

    def _upload_all(self) -> torch.Tensor:
        if self.device.type == "cpu":
            return _host_tensor(self.images_np)
        out = torch.empty(self.images_np.shape, dtype=torch.uint8, device=self.device)
        step = max(1, (256 << 20) // self.image_bytes)  # 256 MiB pieces: host memory stays flat
        staging = [
            torch.empty((step, *self.images_np.shape[1:]), dtype=torch.uint8).pin_memory() for _ in range(2)
        ]
        done = [torch.cuda.Event(), torch.cuda.Event()]
        for piece, start in enumerate(range(0, self.n, step)):
            stop = min(self.n, start + step)
            slot = piece % 2
            done[slot].synchronize()  # the copy that last used this staging buffer has finished
            staging[slot][: stop - start].numpy()[...] = self.images_np[start:stop]
            out[start:stop].copy_(staging[slot][: stop - start], non_blocking=True)
            done[slot].record()
        return out

    def chunks(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) on the device, chunk by chunk, in random chunk order."""
        if self.resident:
            yield self.images, self.labels
            return
        starts = list(range(0, self.n, self.chunk_images))
        order = torch.randperm(len(starts), generator=generator).tolist()
        if self.device.type == "cpu":
            for c in order:
                start = starts[c]
                stop = min(self.n, start + self.chunk_images)
                yield _host_tensor(self.images_np[start:stop]), self.labels[start:stop]
            return
        yield from self._stream_cuda([starts[c] for c in order])

    def _stream_cuda(self, starts: list[int]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        shape = self.images_np.shape[1:]
        staging = [torch.empty((self.chunk_images, *shape), dtype=torch.uint8).pin_memory() for _ in range(2)]
        copied = [torch.cuda.Event(), torch.cuda.Event()]
        copy_stream = torch.cuda.Stream(self.device)

        def stage(slot: int, start: int) -> int:
            stop = min(self.n, start + self.chunk_images)
            copied[slot].synchronize()  # staging buffer free again
            staging[slot][: stop - start].numpy()[...] = self.images_np[start:stop]
            return stop - start

        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(stage, 0, starts[0])
            for i, start in enumerate(starts):
                slot = i % 2
                m = pending.result()
                with torch.cuda.stream(copy_stream):
                    chunk = staging[slot][:m].to(self.device, non_blocking=True)
                    copied[slot].record(copy_stream)
                torch.cuda.current_stream(self.device).wait_stream(copy_stream)
                chunk.record_stream(torch.cuda.current_stream(self.device))
                if i + 1 < len(starts):
                    pending = pool.submit(stage, (i + 1) % 2, starts[i + 1])
                yield chunk, self.labels[start : start + m]


def _host_tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor over ``array``; read-only memory maps are copied (torch cannot wrap them safely)."""
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, order="C")
    return torch.from_numpy(array)


def _device_budget(device: torch.device) -> int:
    if device.type != "cuda":
        return 1 << 62  # the memory map is used in place
    free, _ = torch.cuda.mem_get_info(device)
    return int(free * 0.5)


# --- training -------------------------------------------------------------------------------------


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
        for name in ("val_loss", "val_accuracy", "val_macro_f1"):
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
    backbone: str
    compiled: bool
    class_weights: list[float] | None
    mean: list[float]
    std: list[float]
    upload_seconds: float
    resident: bool


class Trainer:
    """One model's optimisation step: bf16 autocast, channels_last, fused AdamW, optional compile."""

    def __init__(
        self, model: Classifier, config: TrainConfig, device: torch.device, total_steps: int
    ) -> None:
        self.config = config
        self.device = device
        self.cuda = device.type == "cuda"
        self.amp = config.amp and self.cuda
        self.channels_last = config.channels_last and self.cuda
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.input_dtype = torch.bfloat16 if self.amp else torch.float32
        self.model = model.to(device=device, memory_format=self.memory_format)
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
            self._forward_loss = torch.compile(self._forward_loss_eager)  # type: ignore[assignment]
        if self.cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels

    def _forward_loss_eager(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.model(x)
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
        self.model.train()
        loss = self._forward_loss(x, y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        return loss.detach()


def _epoch_batches(
    data: DeviceData,
    batch_size: int,
    generator: torch.Generator,
    sample_weights: torch.Tensor | None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Full batches only (static shapes for compile and cuDNN); the remainder differs every epoch."""
    for images, labels in data.chunks(generator):
        m = len(labels)
        if sample_weights is not None and data.resident:
            index = weighted_indices(sample_weights, m)
        elif sample_weights is not None:
            # Streaming: balance within the chunk (chunks are random slices of an item-hash-ordered cache).
            per_item = labels @ sample_weights if labels.dim() == 2 else sample_weights[labels]
            index = weighted_indices(per_item, m)
        else:
            index = torch.randperm(m, device=labels.device)
        for start in range(0, m - batch_size + 1, batch_size):
            batch = index[start : start + batch_size]
            yield images[batch], labels[batch]


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
    amp: bool = True,
    channels_last: bool = True,
) -> torch.Tensor:
    """Logits (float32, on ``device``) for uint8 images (N, C, H, W) held on the host or the device."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    use_amp = amp and cuda
    memory_format = torch.channels_last if channels_last and cuda else torch.contiguous_format
    model.eval()
    outputs = []
    n = len(images)
    for start in range(0, n, batch_size):
        chunk = images[start : start + batch_size]
        batch = chunk if isinstance(chunk, torch.Tensor) else _host_tensor(chunk)
        batch = batch.to(device, non_blocking=True)
        x = (batch.to(torch.bfloat16 if use_amp else torch.float32) / 255.0).contiguous(
            memory_format=memory_format
        )
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            outputs.append(model(x).float())
    if not outputs:
        num_classes = _num_outputs(model)
        return torch.empty((0, num_classes), device=device)
    return torch.cat(outputs)


def _num_outputs(model: nn.Module) -> int:
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return last[-1].out_features if last else 0


def predict_proba(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
    amp: bool = True,
) -> np.ndarray:
    """Class probabilities (float32 numpy, N x n_classes) for uint8 images (N, C, H, W)."""
    logits = predict_logits(model, images, device=device, batch_size=batch_size, amp=amp)
    return torch.softmax(logits, dim=1).cpu().numpy()


def _macro_f1_torch(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> float:
    # Same definition as core.metrics.macro_f1, computed on the device with one transfer.
    cm = torch.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).view(
        num_classes, num_classes
    )
    tp = cm.diag().double()
    support, predicted = cm.sum(1).double(), cm.sum(0).double()
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp_min(1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-12), torch.zeros_like(tp))
    present = (support > 0) | (predicted > 0)
    return float(f1[present].mean().item()) if bool(present.any()) else 0.0


def _evaluate_val(trainer: Trainer, images: Any, labels: torch.Tensor) -> tuple[float, float, float]:
    logits = predict_logits(
        trainer.model,
        images,
        device=trainer.device,
        batch_size=trainer.config.eval_batch_size,
        amp=trainer.amp,
        channels_last=trainer.channels_last,
    )
    loss = F.cross_entropy(logits, labels).item()
    pred = logits.argmax(dim=1)
    acc = (pred == labels).double().mean().item()
    return loss, acc, _macro_f1_torch(labels, pred, trainer.config.num_classes)


def fit(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray | None,
    val_labels: np.ndarray | None,
    config: TrainConfig,
    *,
    on_epoch: Callable[[EpochStats], None] | None = None,
    log: Callable[[str], None] | None = None,
    train_targets: np.ndarray | None = None,
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
        on_epoch: called after every epoch (e.g. to log metrics).
        log: receives a few human-readable lines (device, compile, cache placement).

    Returns:
        The best model and the per-epoch history.
    """
    say = log or (lambda _msg: None)
    if len(train_labels) == 0:
        raise ValueError("no training images")
    if train_images.shape[1] != config.channels or train_images.shape[2] != config.image_size:
        raise ValueError(
            f"images are {tuple(train_images.shape[1:])} but the config wants "
            f"{config.channels} x {config.image_size} x {config.image_size}"
        )
    train_labels = np.asarray(train_labels, dtype=np.int64)
    if train_labels.min() < 0 or train_labels.max() >= config.num_classes:
        raise ValueError(f"labels must be class indices in 0..{config.num_classes - 1}")
    if train_targets is not None:
        train_targets = check_soft_targets(train_targets, len(train_labels), config.num_classes)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    backbone = resolve_backbone(config.backbone, config.image_size)
    batch_size = min(config.batch_size, len(train_labels))
    mean, std = channel_stats(train_images, seed=config.seed)
    model = build_model(replace(config, backbone=backbone), mean, std)
    data = DeviceData(
        train_images,
        train_labels if train_targets is None else train_targets,
        device,
        max_device_bytes=_cache_budget(config, device),
        chunk_multiple=batch_size,
    )
    steps_per_epoch = max(1, sum(len(range(0, m - batch_size + 1, batch_size)) for m in _chunk_sizes(data)))
    trainer = Trainer(model, config, device, total_steps=steps_per_epoch * config.epochs)
    say(
        f"device={device} backbone={backbone} compiled={trainer.compiled} amp={trainer.amp} "
        f"cache={'resident' if data.resident else 'streamed'} upload={data.upload_seconds:.2f}s"
    )

    weights = config.class_weights or class_weights_from_labels(train_labels, config.num_classes)
    weight_tensor = torch.tensor(weights, dtype=torch.float32, device=device)
    sample_weights: torch.Tensor | None = None
    if config.sampler == "weighted":
        # The sampler already balances classes; weighting the loss too would correct twice.
        soft = train_targets is not None
        sample_weights = data.labels @ weight_tensor if soft else weight_tensor[data.labels]
        if not data.resident:
            sample_weights = weight_tensor
    elif config.sampler != "shuffle":
        raise ValueError(f"unknown sampler {config.sampler!r}; choose shuffle or weighted")
    elif config.class_weighted_loss:
        trainer.loss_weight = weight_tensor

    val_on_device: Any = None
    val_y: torch.Tensor | None = None
    if val_images is not None and val_labels is not None and len(val_labels):
        val_y = torch.as_tensor(np.asarray(val_labels, dtype=np.int64)).to(device)
        val_bytes = val_images.nbytes
        val_on_device = (
            _host_tensor(val_images).to(device)
            if device.type == "cuda" and val_bytes <= _cache_budget(config, device, default=1 << 62) // 4
            else val_images
        )

    generator = torch.Generator()
    generator.manual_seed(config.seed)
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
        for xb, yb in _epoch_batches(data, batch_size, generator, sample_weights):
            loss_sum += trainer.step(trainer.prepare(xb), yb)
            steps += 1
        train_loss = (loss_sum / max(1, steps)).item()  # the epoch's one host sync
        stats = EpochStats(
            epoch=epoch,
            train_loss=train_loss,
            lr=trainer.lr_at(max(0, trainer.step_count - 1)),
            train_seconds=time.perf_counter() - start,
            train_images=steps * batch_size,
        )
        if val_y is not None:
            val_start = time.perf_counter()
            stats.val_loss, stats.val_accuracy, stats.val_macro_f1 = _evaluate_val(
                trainer, val_on_device, val_y
            )
            stats.val_seconds = time.perf_counter() - val_start
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        score = stats.val_macro_f1 if stats.val_macro_f1 is not None else None
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
    )


def check_soft_targets(targets: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    """Soft targets as float32 (n, num_classes) probability rows; anything else is a clear error."""
    targets = np.asarray(targets, dtype=np.float32)
    if targets.shape != (n, num_classes):
        raise ValueError(
            f"soft targets must be ({n}, {num_classes}) class probabilities, got {targets.shape}"
        )
    if not np.isfinite(targets).all() or (targets < 0).any():
        raise ValueError("soft targets must be finite and non-negative")
    sums = targets.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-3):
        bad = int(np.flatnonzero(~np.isclose(sums, 1.0, atol=1e-3))[0])
        raise ValueError(f"soft target rows must sum to 1 (row {bad} sums to {sums[bad]:.4f})")
    return targets / sums[:, None]


def _cache_budget(config: TrainConfig, device: torch.device, default: int | None = None) -> int | None:
    if config.device_cache_max_bytes is not None:
        return config.device_cache_max_bytes
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * config.device_cache_fraction)
    return default


def _chunk_sizes(data: DeviceData) -> list[int]:
    return [min(data.chunk_images, data.n - start) for start in range(0, data.n, data.chunk_images)]


# --- throughput measurement (used by benchmarks/train_throughput.py) ---------------------------------


@dataclass(frozen=True)
class Throughput:
    backbone: str
    compiled: bool
    synthetic_images_per_s: float  # the ceiling: the same step on one static device batch
    end_to_end_images_per_s: float  # the real loop: sample, gather, augment, step
    upload_seconds: float
    compile_seconds: float
    resident: bool

    @property
    def ratio(self) -> float:
        return (
            self.end_to_end_images_per_s / self.synthetic_images_per_s if self.synthetic_images_per_s else 0.0
        )


def measure_throughput(
    images: np.ndarray,
    labels: np.ndarray,
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
    device = resolve_device(config.device)
    backbone = resolve_backbone(config.backbone, config.image_size)
    torch.manual_seed(config.seed)
    data = DeviceData(
        images,
        labels,
        device,
        max_device_bytes=_cache_budget(config, device),
        chunk_multiple=config.batch_size,
    )
    model = build_model(replace(config, backbone=backbone))
    per_epoch = sum(len(range(0, m - config.batch_size + 1, config.batch_size)) for m in _chunk_sizes(data))
    trainer = Trainer(
        model, config, device, total_steps=per_epoch * (end_to_end_epochs + 1) + synthetic_steps * 2
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
        for xb, yb in _epoch_batches(data, config.batch_size, generator, None):
            loss_sum += trainer.step(trainer.prepare(xb), yb)
            steps += 1
        loss_sum.item()
        if epoch > 0:
            rates.append(steps * config.batch_size / (time.perf_counter() - start))
    return Throughput(
        backbone=backbone,
        compiled=trainer.compiled,
        synthetic_images_per_s=synthetic,
        end_to_end_images_per_s=float(np.median(rates)),
        upload_seconds=data.upload_seconds,
        compile_seconds=compile_seconds,
        resident=data.resident,
    )


# --- checkpoints and the command line ------------------------------------------------------------


def save_checkpoint(path: str | Path, result: FitResult, config: TrainConfig, classes: Sequence[str]) -> None:
    """Weights plus everything needed to rebuild the model (config, classes, normalisation)."""
    torch.save(
        {
            "state_dict": {k: v.cpu() for k, v in result.model.state_dict().items()},
            "config": asdict(replace(config, backbone=result.backbone)),
            "classes": list(classes),
            "mean": result.mean,
            "std": result.std,
        },
        path,
    )


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> tuple[Classifier, TrainConfig, list[str]]:
    """The model, config and class names saved by :func:`save_checkpoint`."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    config = TrainConfig.from_dict(payload["config"])
    model = build_model(replace(config, weights_path=None), payload["mean"], payload["std"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, config, list(payload["classes"])


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m labeling_assets.core.training.train",
        description="Train an image classifier from a tensor cache written by the training_tensors asset "
        "(needs only torch, torchvision and numpy).",
    )
    parser.add_argument("--cache", required=True, help="folder with meta.json and train/val .npy files")
    parser.add_argument("--out", default="model.pt", help="checkpoint to write (default: model.pt)")
    parser.add_argument("--backbone", default="auto", choices=("auto", *BACKBONES))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--loss", default="ce", choices=("ce", "focal"))
    parser.add_argument("--sampler", default="shuffle", choices=("shuffle", "weighted"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--weights", default=None, help="local state_dict to start from (never downloaded)")
    parser.add_argument(
        "--hflip", action="store_true", help="enable horizontal flips (off: they change meaning)"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry: train from a cache folder, print one JSON line per epoch, save a checkpoint."""
    args = _parse_args(argv)
    meta = read_cache_meta(args.cache)
    if meta is None:
        raise SystemExit(f"{args.cache}: no complete tensor cache (meta.json missing)")
    train = load_cache_split(args.cache, "train")
    val = load_cache_split(args.cache, "val") if (Path(args.cache) / "val.images.npy").is_file() else None
    config = TrainConfig(
        num_classes=len(meta["classes"]),
        backbone=args.backbone,
        image_size=int(meta["image_size"]),
        channels=int(meta["channels"]),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        loss=args.loss,
        sampler=args.sampler,
        device=args.device,
        compile=args.compile,
        weights_path=args.weights,
        seed=args.seed,
        augment=AugmentConfig(hflip=args.hflip),
    )
    result = fit(
        train.images,
        train.labels,
        val.images if val else None,
        val.labels if val else None,
        config,
        on_epoch=lambda s: print(json.dumps({"epoch": s.epoch, **s.metrics()}), flush=True),
        log=lambda msg: print(msg, flush=True),
    )
    save_checkpoint(args.out, result, config, meta["classes"])
    print(
        json.dumps(
            {"best_epoch": result.best_epoch, "best_val_macro_f1": result.best_val_macro_f1, "out": args.out}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
