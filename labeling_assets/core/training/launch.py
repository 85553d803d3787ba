"""Launch training on several processes with ``torchrun`` and read back what rank 0 wrote.

The trained_model asset calls this when it is asked for more than one process per node: the ordinary
distributed engine (torch's elastic launcher, DistributedDataParallel) does the work, and the launching
process only relays rank 0's epoch lines and loads its checkpoint afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from labeling_assets.core.training.checkpoint import load_fit_result
from labeling_assets.core.training.config import TrainConfig
from labeling_assets.core.training.loop import EpochStats, FitResult
from labeling_assets.core.training.types import AnyArray

_EPOCH_FIELDS = {f.name for f in fields(EpochStats)}
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


def torchrun_command(
    cache: str | Path, out: str | Path, config_path: Path, nproc_per_node: int, targets_path: Path | None
) -> list[str]:
    """``python -m torch.distributed.run --standalone ...``: torchrun, without relying on PATH."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # one node: a local rendezvous on a free port
        f"--nproc-per-node={nproc_per_node}",
        "-m",
        "labeling_assets.core.training",
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--config",
        str(config_path),
    ]
    if targets_path is not None:
        command += ["--targets", str(targets_path)]
    return command


def epoch_from_line(line: str) -> EpochStats | None:
    """The epoch line rank 0 prints (one JSON object with ``epoch``), or None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "epoch" not in data:
        return None
    return EpochStats(**{k: v for k, v in data.items() if k in _EPOCH_FIELDS})


def fit_with_torchrun(
    cache: str | Path,
    config: TrainConfig,
    *,
    nproc_per_node: int,
    train_targets: AnyArray | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    log: Callable[[str], None] | None = None,
    timeout_s: float | None = None,
) -> FitResult:
    """Train on the tensor cache ``cache`` with ``nproc_per_node`` DDP processes; the result as ``fit``'s.

    Raises RuntimeError with the tail of the processes' stderr when torchrun fails.
    """
    if nproc_per_node < 1:
        raise ValueError(f"nproc_per_node must be at least 1, got {nproc_per_node}")
    say = log or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="torchrun-") as tmp:
        folder = Path(tmp)
        config_path = folder / "config.json"
        config_path.write_text(json.dumps(asdict(config)))
        targets_path = None
        if train_targets is not None:
            targets_path = folder / "targets.npy"
            np.save(targets_path, np.asarray(train_targets, dtype=np.float32))
        out = folder / "model.pt"
        command = torchrun_command(cache, out, config_path, nproc_per_node, targets_path)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        say(f"torchrun: {nproc_per_node} processes on this node")
        stderr_path = folder / "stderr.log"
        with (
            stderr_path.open("w") as stderr,
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env) as process,
        ):
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.rstrip("\n")
                stats = epoch_from_line(line)
                if stats is not None and on_epoch is not None:
                    on_epoch(stats)
                elif stats is None and line:
                    say(line)
            code = process.wait(timeout=timeout_s)
        if code != 0 or not out.is_file():
            tail = stderr_path.read_text()[-3000:]
            raise RuntimeError(f"torchrun with {nproc_per_node} processes failed (exit {code}):\n{tail}")
        result, _, _ = load_fit_result(out)
        return result
