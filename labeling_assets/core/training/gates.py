"""Release gates: a model's inference latency and size, measured at evaluation and required by the champion rule.

Latency is per image at batch 1 (one uint8 image scaled to [0, 1] as prediction does, then the whole classifier,
normalisation included), p50 and p95 over ``runs`` timed calls after ``warmup`` untimed ones: on one CPU thread
always, on the GPU too when one is present. The gate reads the CPU p95: the one figure every evaluation has, on
any machine. Size is the
parameter bytes and the bytes of the saved state_dict (what is shipped and loaded).

The size budget is relative to a *baseline* model's saved state_dict: the current champion by default (a
distilled student is held to a share of the teacher it replaces), or a fixed registered version. Every gate is
off when its setting is None; no gate judges what it has no figure for (a first model against a champion
baseline, a model kind whose latency is not measured), and the reason says so.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch loads in the runs that measure, not with the definitions
    import torch
    from torch import nn

# Off by default: a CPU figure depends on the machine and its load, and a gate that flips with the neighbours'
# load would hold back good models. The budget ("inference < 500 ms per image") is the value to set where
# the evaluating machine is known: a 224 px resnet18 took 180 ms at p95 on one thread of a busy 2-core machine
# (benchmarks/latency.py, docs/model.md).
DEFAULT_MAX_LATENCY_MS_P95: float | None = None
# Off by default: against the champion as baseline, a retrain of the same architecture is 100% of it.
DEFAULT_MAX_SIZE_RATIO_TO_BASELINE: float | None = None
CHAMPION_BASELINE = "champion"
LATENCY_WARMUP = 5
LATENCY_RUNS = 30
# One thread: several threads on a shared machine make p95 a measure of oversubscription (resnet18's p95 was
# 1.8 s on 2 threads and 180 ms on 1 thread of the same loaded 2-core machine), and one thread compares across
# machines.
LATENCY_THREADS = 1


@dataclass(frozen=True)
class Latency:
    """Milliseconds per image at batch 1 on one device."""

    device: str  # "cpu" or "gpu"
    p50_ms: float
    p95_ms: float
    runs: int


@dataclass(frozen=True)
class ModelSize:
    parameter_bytes: int  # sum of numel x element size over the parameters
    state_dict_bytes: int  # the torch.save'd state_dict (parameters and buffers), as a file


@dataclass(frozen=True)
class Measurements:
    """What the gates read, stored with the model version (tags), on its run (metrics) and in the metadata."""

    size: ModelSize
    latency: tuple[Latency, ...] = ()  # CPU first; GPU when present

    def on(self, device: str) -> Latency | None:
        return next((lat for lat in self.latency if lat.device == device), None)

    def figures(self) -> dict[str, float]:
        """Flat figures: ``latency_cpu_p95_ms``, ``parameter_bytes``, ``state_dict_bytes``, ..."""
        out: dict[str, float] = {
            "parameter_bytes": float(self.size.parameter_bytes),
            "state_dict_bytes": float(self.size.state_dict_bytes),
        }
        for lat in self.latency:
            out[f"latency_{lat.device}_p50_ms"] = round(lat.p50_ms, 3)
            out[f"latency_{lat.device}_p95_ms"] = round(lat.p95_ms, 3)
        return out


@dataclass(frozen=True)
class GateSettings:
    max_latency_ms_p95: float | None = DEFAULT_MAX_LATENCY_MS_P95  # CPU p95 at batch 1; None: off
    max_size_ratio_to_baseline: float | None = DEFAULT_MAX_SIZE_RATIO_TO_BASELINE  # None: off
    size_baseline: str = CHAMPION_BASELINE  # "champion", or a registered version number ("3")

    def __post_init__(self) -> None:
        if self.size_baseline != CHAMPION_BASELINE and not self.size_baseline.isdigit():
            raise ValueError(f"size_baseline {self.size_baseline!r}: 'champion' or a registered version number")


@dataclass(frozen=True)
class Baseline:
    """The model the size budget is relative to."""

    label: str  # name/version
    state_dict_bytes: int


@dataclass(frozen=True)
class GateResult:
    failures: tuple[str, ...] = ()  # one sentence per failed gate
    notes: tuple[str, ...] = field(default=())  # gates that were on but could not judge, and why

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        if self.failures:
            return "failed: " + "; ".join(self.failures)
        return "passed" + (f" ({'; '.join(self.notes)})" if self.notes else "")


def check_gates(measured: Measurements | None, settings: GateSettings, baseline: Baseline | None) -> GateResult:
    """The gates ``settings`` turn on, applied to ``measured`` (None: nothing was measured)."""
    failures: list[str] = []
    notes: list[str] = []
    budget = settings.max_latency_ms_p95
    if budget is not None:
        cpu = measured.on("cpu") if measured is not None else None
        if cpu is None:
            notes.append("latency not measured for this model")
        elif cpu.p95_ms > budget:
            failures.append(f"CPU latency p95 {cpu.p95_ms:.1f} ms per image over the budget of {budget:g} ms")
    ratio = settings.max_size_ratio_to_baseline
    if ratio is not None:
        if measured is None:
            notes.append("size not measured for this model")
        elif baseline is None:
            notes.append(f"no size baseline ({settings.size_baseline}) to compare with")
        else:
            share = measured.size.state_dict_bytes / max(1, baseline.state_dict_bytes)
            if share > ratio:
                failures.append(
                    f"size {measured.size.state_dict_bytes / 2**20:.2f} MiB is {share:.0%} of the baseline "
                    f"{baseline.label} ({baseline.state_dict_bytes / 2**20:.2f} MiB), over the budget of {ratio:.0%}"
                )
    return GateResult(tuple(failures), tuple(notes))


def model_size(model: nn.Module) -> ModelSize:
    import torch

    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return ModelSize(int(parameter_bytes), buffer.getbuffer().nbytes)


def measure_latency(
    model: nn.Module,
    shape: tuple[int, int, int],
    device: torch.device | str = "cpu",
    *,
    warmup: int = LATENCY_WARMUP,
    runs: int = LATENCY_RUNS,
    threads: int | None = LATENCY_THREADS,
) -> Latency:
    """p50/p95 milliseconds of one uint8 image of ``shape`` (C, H, W) through ``model`` in eval mode on ``device``
    (fp32; on the CPU with ``threads`` torch threads, None: as set; the model is left on ``device``)."""
    import torch

    device = torch.device(device)
    before = torch.get_num_threads()
    if threads and device.type == "cpu":
        torch.set_num_threads(threads)
    try:
        return _timed(model, shape, device, warmup, runs)
    finally:
        torch.set_num_threads(before)


def _timed(model: nn.Module, shape: tuple[int, int, int], device: torch.device, warmup: int, runs: int) -> Latency:
    import torch

    model.to(device).eval()
    image = torch.randint(0, 256, (1, *shape), dtype=torch.uint8, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times: list[float] = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            sync()
            start = time.perf_counter()
            model(image.float() / 255.0)  # as predict_logits feeds it (fp32 path)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000.0)
    p50, p95 = np.percentile(np.asarray(times), [50, 95]) if times else (float("nan"), float("nan"))
    return Latency("gpu" if device.type == "cuda" else "cpu", float(p50), float(p95), len(times))


def measure(
    model: nn.Module,
    shape: tuple[int, int, int],
    *,
    warmup: int = LATENCY_WARMUP,
    runs: int = LATENCY_RUNS,
    gpu: bool | None = None,
    threads: int | None = LATENCY_THREADS,
) -> Measurements:
    """Size, CPU latency and (``gpu`` None: when CUDA is present) GPU latency; the model ends on the CPU."""
    import torch

    size = model_size(model)
    latency = [measure_latency(model, shape, "cpu", warmup=warmup, runs=runs, threads=threads)]
    if torch.cuda.is_available() if gpu is None else gpu:
        latency.append(measure_latency(model, shape, "cuda", warmup=warmup, runs=runs))
        model.cpu()
    return Measurements(size, tuple(latency))
