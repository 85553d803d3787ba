"""Several processes, one model: torch DistributedDataParallel when launched by ``torchrun``.

``torchrun --nproc-per-node N -m labeling_assets.core.training ...`` starts N processes and sets RANK,
LOCAL_RANK and WORLD_SIZE; :func:`init_distributed` joins them (NCCL on CUDA, gloo on the CPU). Each rank
trains on its own contiguous shard of the memory-mapped cache (equal sizes, so every rank runs the same
number of steps and no collective waits forever), gradients are averaged by DDP, and epoch metrics are
summed over ranks, so every rank takes the same early-stopping decision. Only rank 0 writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    """Where this process stands in the run: rank r of world_size (1: a plain single-process run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that prints metrics and writes checkpoints."""
        return self.rank == 0

    def device(self, requested: torch.device) -> torch.device:
        """One GPU per process: cuda becomes cuda:LOCAL_RANK under torchrun."""
        if self.active and requested.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return requested

    def shard(self, n: int) -> slice:
        """This rank's rows of n: contiguous (a memory-map view, no copy) and the same size on every rank.

        The last ``n % world_size`` rows are left out (as DistributedSampler's drop_last does): equal
        shards mean equal steps per epoch, and a rank with one step more would wait forever in backward.
        """
        per = n // self.world_size
        if self.active and per == 0:
            raise ValueError(f"{n} training images cannot be split over {self.world_size} processes")
        return slice(self.rank * per, (self.rank + 1) * per)

    def val_shard(self, n: int) -> slice:
        """This rank's validation rows: every row exactly once over all ranks (metrics are summed)."""
        per = -(-n // self.world_size)
        return slice(min(n, self.rank * per), min(n, (self.rank + 1) * per))

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over ranks (in place; unchanged in a single-process run)."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def from_environment() -> Distributed:
    """The rank, world size and local rank ``torchrun`` set (a plain process: rank 0 of 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Distributed(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group torchrun prepared (idempotent); a single process joins nothing."""
    info = from_environment()
    if info.active and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def shutdown() -> None:
    """Leave the process group (torchrun warns about a group left open at exit)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def parameter_spread(model: torch.nn.Module, info: Distributed) -> float:
    """Max minus min over ranks of the sum of all parameters: 0 when DDP kept the replicas identical."""
    with torch.no_grad():
        total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    if not info.active:
        return 0.0
    gathered = [torch.zeros_like(total) for _ in range(info.world_size)]
    dist.all_gather(gathered, total)
    values = torch.cat(gathered)
    return float((values.max() - values.min()).item())
