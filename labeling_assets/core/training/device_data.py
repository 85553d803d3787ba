"""The uint8 training images on the training device: resident when they fit, streamed when not."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from labeling_assets.core.training.config import TrainConfig
from labeling_assets.core.training.types import AnyArray, UInt8Array


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
        images: UInt8Array,
        labels: AnyArray,
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
            return host_tensor(self.images_np)
        out = torch.empty(self.images_np.shape, dtype=torch.uint8, device=self.device)
        step = max(1, (256 << 20) // self.image_bytes)  # 256 MiB pieces: host memory stays flat
        staging = [
            torch.empty((step, *self.images_np.shape[1:]), dtype=torch.uint8).pin_memory() for _ in range(2)
        ]
        done = [torch.cuda.Event(), torch.cuda.Event()]  # type: ignore[no-untyped-call]
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
                yield host_tensor(self.images_np[start:stop]), self.labels[start:stop]
            return
        yield from self._stream_cuda([starts[c] for c in order])

    def _stream_cuda(self, starts: list[int]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        shape = self.images_np.shape[1:]
        staging = [torch.empty((self.chunk_images, *shape), dtype=torch.uint8).pin_memory() for _ in range(2)]
        copied = [torch.cuda.Event(), torch.cuda.Event()]  # type: ignore[no-untyped-call]
        copy_stream = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]

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


def host_tensor(array: AnyArray) -> torch.Tensor:
    """A CPU tensor over ``array``; read-only memory maps are copied (torch cannot wrap them safely)."""
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, order="C")
    return torch.from_numpy(array)


def _device_budget(device: torch.device) -> int:
    if device.type != "cuda":
        return 1 << 62  # the memory map is used in place
    free, _ = torch.cuda.mem_get_info(device)
    return int(free * 0.5)


def cache_budget(config: TrainConfig, device: torch.device) -> int | None:
    """Bytes of device memory the uint8 cache may take (None: no limit, the CPU uses the memory map)."""
    if config.device_cache_max_bytes is not None:
        return config.device_cache_max_bytes
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * config.device_cache_fraction)
    return None


def chunk_sizes(data: DeviceData) -> list[int]:
    return [min(data.chunk_images, data.n - start) for start in range(0, data.n, data.chunk_images)]
