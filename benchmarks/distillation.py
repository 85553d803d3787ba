"""Distillation on the demo digits: a small student trained from a big teacher (Hinton loss) against the same student
trained alone, and the teacher itself: test macro-F1, size and CPU latency side by side (docs/model.md).

    python benchmarks/distillation.py                          # docs/model.md figures: 3 seeds
    python benchmarks/distillation.py --seeds 0 --epochs 8     # a quick look
    python benchmarks/distillation.py --json out.json
    # one process per seed (a busy machine), then the table of all of them:
    for s in 0 1 2; do python benchmarks/distillation.py --seeds $s --threads 1 --json seed$s.json & done; wait
    python benchmarks/distillation.py --combine seed0.json seed1.json seed2.json

The data: scikit-learn's 1,797 handwritten digits rendered as the demo renders them (core.ingest.demo_data:
8x8 scans, inverted, bicubic to 32x32 grayscale), split 70/15/15 per class once (seed 0), labels = the truth.
Per seed: the teacher (small_cnn, the demo champion's backbone, by default) trains with early stopping on val macro-F1; each student backbone trains
alone and distilled from that teacher (T, alpha); everything is scored once on the test split. Size: parameters and
the float32 state_dict in MiB; latency: batch-1 CPU inference p50/p95 over --latency-runs images (one thread).
Needs only torch, numpy, Pillow and scikit-learn.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.training.config import TrainConfig  # noqa: E402
from labeling_assets.core.training.distill import DistillSettings, distill, parameter_count  # noqa: E402
from labeling_assets.core.training.loop import fit  # noqa: E402
from labeling_assets.core.training.metrics import macro_f1  # noqa: E402
from labeling_assets.core.training.predict import predict_proba  # noqa: E402

IMAGE_SIZE = 32


def demo_digits() -> tuple[np.ndarray, np.ndarray]:
    """The demo's digits in memory: (n, 1, 32, 32) uint8 and labels, rendered as demo_data.render_digits does."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.empty((len(digits.images), 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for i, pixels in enumerate(digits.images):
        gray = (255 - np.asarray(pixels) * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        picture = Image.fromarray(gray, mode="L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
        images[i, 0] = np.asarray(picture)
    return images, digits.target.astype(np.int64)


def split(labels: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """70/15/15 of every class, shuffled with ``seed``."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_train, n_val = round(0.7 * len(members)), round(0.15 * len(members))
        parts["train"] += members[:n_train].tolist()
        parts["val"] += members[n_train : n_train + n_val].tolist()
        parts["test"] += members[n_train + n_val :].tolist()
    return {k: np.array(sorted(v)) for k, v in parts.items()}


def size_mib(model: torch.nn.Module) -> float:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 2**20


@torch.no_grad()
def latency_ms(model: torch.nn.Module, images: np.ndarray, runs: int) -> tuple[float, float]:
    """Batch-1 CPU inference p50 and p95 in milliseconds (after 5 warm-up images)."""
    model = model.cpu().eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what one request gets on a busy CPU server, and steadier on a shared machine
    times = []
    for i in range(runs + 5):
        x = torch.from_numpy(images[i % len(images)][None])
        start = time.perf_counter()
        model(x)
        if i >= 5:
            times.append((time.perf_counter() - start) * 1000)
    torch.set_num_threads(threads)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def score(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    probs = predict_proba(model, images, device="cpu")
    return float(macro_f1(labels, probs.argmax(1), 10))


def run_seed(seed: int, args: argparse.Namespace, x: np.ndarray, y: np.ndarray, parts: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    tr, va, te = parts["train"], parts["val"], parts["test"]
    base = TrainConfig(num_classes=10, image_size=IMAGE_SIZE, channels=1, epochs=args.epochs, batch_size=64,
                       patience=args.patience, device="cpu", seed=seed)  # fmt: skip
    rows = []

    def record(name: str, model: torch.nn.Module, seconds: float, epochs: int) -> None:
        p50, p95 = latency_ms(model, x[te], args.latency_runs)
        rows.append({"seed": seed, "model": name, "test_macro_f1": score(model, x[te], y[te]),
                     "parameters": parameter_count(model), "mib": size_mib(model), "p50_ms": p50, "p95_ms": p95,
                     "train_s": seconds, "epochs": epochs})  # fmt: skip
        print(f"  seed {seed} {name:<34} F1 {rows[-1]['test_macro_f1']:.4f}  {rows[-1]['parameters']:>11,} params  "
              f"p50 {p50:.2f} ms  ({seconds:.0f} s, {epochs} epochs)", flush=True)  # fmt: skip

    started = time.perf_counter()
    teacher = fit(x[tr], y[tr], x[va], y[va], _with(base, args.teacher))
    record(f"teacher {args.teacher}", teacher.model, time.perf_counter() - started, len(teacher.history))
    settings = DistillSettings(temperature=args.temperature, alpha=args.alpha)
    for student in args.students:
        config = _with(base, student)
        started = time.perf_counter()
        alone = fit(x[tr], y[tr], x[va], y[va], config)
        record(f"{student} alone", alone.model, time.perf_counter() - started, len(alone.history))
        started = time.perf_counter()
        taught = distill(x[tr], y[tr], x[va], y[va], config, teacher.model, settings)
        record(f"{student} distilled (T={args.temperature:g}, a={args.alpha:g})", taught.model,
               time.perf_counter() - started, len(taught.history))  # fmt: skip
    return rows


def _with(config: TrainConfig, backbone: str) -> TrainConfig:
    from dataclasses import replace

    return replace(config, backbone=backbone)  # type: ignore[arg-type]


def summarise(rows: list[dict[str, Any]]) -> str:
    names = list(dict.fromkeys(r["model"] for r in rows))
    teacher = [r for r in rows if r["model"] == names[0]]
    t_f1 = float(np.mean([r["test_macro_f1"] for r in teacher]))
    t_params = teacher[0]["parameters"]
    lines = ["| model | test macro-F1 (mean ± std) | vs teacher | parameters | size vs teacher | MiB | CPU p50 / p95 ms |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in names:
        mine = [r for r in rows if r["model"] == name]
        f1 = np.array([r["test_macro_f1"] for r in mine])
        lines.append(f"| {name} | {f1.mean():.4f} ± {f1.std():.4f} | {100 * (f1.mean() - t_f1):+.2f} pts | "
                     f"{mine[0]['parameters']:,} | {mine[0]['parameters'] / t_params:.1%} | {mine[0]['mib']:.2f} | "
                     f"{np.median([r['p50_ms'] for r in mine]):.2f} / {np.median([r['p95_ms'] for r in mine]):.2f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--teacher", default="small_cnn", help="default: the demo champion's backbone")
    parser.add_argument("--students", nargs="+", default=["tiny_cnn"])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.7)
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for training (latency: 1)")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument("--combine", type=Path, nargs="+", help="print the table of these --json files; train nothing")
    args = parser.parse_args()
    if args.combine:
        print(summarise([row for path in args.combine for row in json.loads(path.read_text())]))
        return
    x, y = demo_digits()
    parts = split(y)
    print(f"demo digits: {len(y)} images at {IMAGE_SIZE}px, train {len(parts['train'])} / val {len(parts['val'])} / "
          f"test {len(parts['test'])}; teacher {args.teacher}, students {', '.join(args.students)}")  # fmt: skip
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        torch.set_num_threads(args.threads)
        rows += run_seed(seed, args, x, y, parts)
    print()
    print(summarise(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
