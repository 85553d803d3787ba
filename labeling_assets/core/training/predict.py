"""Predictions of a trained classifier: logits and probabilities for uint8 images or image files."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from labeling_assets.core.tasks.registry import training_head
from labeling_assets.core.training.config import resolve_device
from labeling_assets.core.training.decode import decode_images
from labeling_assets.core.training.device_data import host_tensor
from labeling_assets.core.training.types import AnyArray, FloatArray


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: AnyArray | torch.Tensor,
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
        batch = chunk if isinstance(chunk, torch.Tensor) else host_tensor(chunk)
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
    images: AnyArray | torch.Tensor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
    amp: bool = True,
    task_kind: str = "single_label",
) -> FloatArray:
    """Class probabilities (float32 numpy, N x n_classes) for uint8 images (N, C, H, W), as the training head of
    ``task_kind`` turns logits into them: a softmax, or per-class sigmoids P(class present) (rows then do not
    sum to 1)."""
    logits = predict_logits(model, images, device=device, batch_size=batch_size, amp=amp)
    probabilities: FloatArray = training_head(task_kind).probabilities(logits).cpu().numpy()
    return probabilities


def predict_files(
    model: nn.Module,
    paths: list[str],
    *,
    image_size: int,
    channels: int,
    num_classes: int,
    device: str = "auto",
    chunk: int = 4096,
    task_kind: str = "single_label",
) -> tuple[FloatArray, list[int]]:
    """Probabilities for image files, decoded at the model's size in chunks (memory stays flat).

    ``task_kind``: whose training head turns logits into probabilities (:func:`predict_proba`). Returns the (n, num_classes) probabilities and the indices of files that could not be decoded
    (their rows are NaN). The model is moved to ``device`` for the call and back to the CPU after.
    """
    target = resolve_device(device)
    model.to(target)
    out = np.full((len(paths), num_classes), np.nan, dtype=np.float64)
    failed: list[int] = []
    for start in range(0, len(paths), chunk):
        part = paths[start : start + chunk]
        images, failures = decode_images(part, image_size, channels)
        bad = {f.index for f in failures}
        failed.extend(start + i for i in sorted(bad))
        good = np.array([i for i in range(len(part)) if i not in bad], dtype=np.int64)
        if len(good):
            out[start + good] = predict_proba(model, images[good], device=target, task_kind=task_kind)
    model.cpu()
    return out, failed
