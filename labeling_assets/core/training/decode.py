"""Image files to uint8 tensors at training resolution, decoded by ``core.images.decode``: the same pixels the
labelers saw (EXIF orientation applied, 16-bit grey scaled, palette converted, an animated file's first frame)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from labeling_assets.core.images import decode
from labeling_assets.core.training.types import UInt8Array

if TYPE_CHECKING:  # torch is imported where it runs: a run process that never trains skips its seconds of import
    import torch


def decode_image_file(path: str | Path, image_size: int, channels: int) -> torch.Tensor:
    """Decode one image file to uint8 (channels, image_size, image_size); the picture is resized to a square.

    Raises ``ValueError`` naming the file when it cannot be decoded.
    """
    import torch
    import torch.nn.functional as F
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        picture = decode(path, at_least=image_size)
    except (OSError, ValueError) as exc:  # any decoder failure becomes one clear error naming the file
        raise ValueError(f"cannot decode image {path}: {exc}") from exc
    wanted = "L" if channels == 1 else "RGB"
    array = np.array(picture if picture.mode == wanted else picture.convert(wanted), dtype=np.uint8)  # writable
    if array.ndim == 2:
        array = array[:, :, None]
    image = torch.from_numpy(array).permute(2, 0, 1).contiguous()
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


@dataclass(frozen=True)
class DecodeFailure:
    index: int
    path: str
    error: str


def decode_images(
    paths: Sequence[str],
    image_size: int,
    channels: int,
    out: UInt8Array | None = None,
    workers: int | None = None,
) -> tuple[UInt8Array, list[DecodeFailure]]:
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
        # Pillow's decoders and torch's resize release the GIL, so threads scale without process fan-out.
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(n), chunksize=32))
    return out, sorted(failures, key=lambda f: f.index)
