"""The box detector's images per second, training and inference, against a synthetic-input ceiling, same run.

    python benchmarks/detector_throughput.py                                  # mobilenet_v3_320, 320 px, CUDA
    python benchmarks/detector_throughput.py --backbone tiny --image-size 64 --images 8 --steps 2 --device cpu

For one detector (``core/tasks/boxes/detector.py``, random weights) and batch size:
- train ceiling: SGD steps (forward with targets, backward, step) on one static batch already on the device;
- train end-to-end: the trainer's own steps (``detector.train_detector``, what ``BoxTrainer.fit`` runs) over images
  decoded once into CPU memory as the trainer keeps them: each step draws its batch and copies it to the device;
- inference ceiling: ``detect`` on one static device batch;
- inference end-to-end: what ``BoxTrainer.predict`` does per batch of files: decode the PNGs, then ``detect``.
The inputs are synthetic scenes (dark rectangles on light noise, 1 to 4 per image, written as PNG files), so nothing
is downloaded and only torch, torchvision, numpy and Pillow are needed (a bare GPU machine). ``--json`` writes the
figures. The first steps of each phase (``--warmup``) are not timed; CUDA is synchronised around each timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a bare checkout (GPU machine)

from labeling_assets.core.tasks.boxes.detector import (  # noqa: E402
    BACKBONES,
    ImageBoxes,
    _target,
    build_detector,
    detect,
    train_detector,
)


def synthetic_scenes(folder: Path, n: int, size: int, classes: int, seed: int) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """``n`` PNG scenes of ``size`` px with 1 to 4 dark rectangles each: (path, boxes N x 4, class indices)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pixels = rng.integers(180, 256, (size, size, 3), dtype=np.uint8)
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, 5))):
            w, h = rng.integers(max(size // 8, 2), max(size // 3, 3), size=2)
            x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            pixels[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 80)
            boxes.append([x0, y0, x0 + w, y0 + h])
            labels.append(int(rng.integers(classes)))
        path = folder / f"scene-{i:05d}.png"
        Image.fromarray(pixels).save(path)
        out.append((path, np.array(boxes, dtype=np.float64), np.array(labels, dtype=np.int64)))
    return out


def decode(path: Path) -> torch.Tensor:
    """A PNG as the trainer reads it (``trainer.read_image``): RGB float in [0, 1], 3 x H x W, on the CPU."""
    array = np.array(Image.open(path).convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_ceiling(model: Any, batch: list[ImageBoxes], device: torch.device, steps: int, warmup: int) -> float:
    """Images per second of SGD steps on one static device batch (no input path)."""
    images = [e.image.to(device) for e in batch]
    targets = [_target(e, device) for e in batch]
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    model.to(device).train()
    started = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            started = time.perf_counter()
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _sync(device)
    return steps * len(batch) / (time.perf_counter() - started)


def train_end_to_end(model: Any, examples: list[ImageBoxes], device: torch.device, steps: int, warmup: int,
                     batch_size: int) -> float:  # fmt: skip
    """Images per second of the trainer's own steps (``train_detector``: draw, copy to the device, step)."""
    train_detector(model, examples, steps=warmup, batch_size=batch_size, device=device, seed=1)
    _sync(device)
    started = time.perf_counter()
    train_detector(model, examples, steps=steps, batch_size=batch_size, device=device, seed=2)
    _sync(device)
    return steps * min(batch_size, len(examples)) / (time.perf_counter() - started)


def inference_ceiling(model: Any, images: list[torch.Tensor], device: torch.device, steps: int, warmup: int) -> float:
    """Images per second of ``detect`` on one static device batch."""
    on_device = [i.to(device) for i in images]
    for _ in range(warmup):
        detect(model, on_device, device=device)
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        detect(model, on_device, device=device)
    _sync(device)
    return steps * len(images) / (time.perf_counter() - started)


def inference_end_to_end(model: Any, paths: list[Path], device: torch.device, batch_size: int, warmup: int) -> float:
    """Images per second of decoding every file and detecting, batch by batch (``BoxTrainer.predict``)."""
    detect(model, [decode(p) for p in paths[:batch_size]], device=device)  # warm-up batches, untimed
    for _ in range(max(warmup - 1, 0)):
        detect(model, [decode(p) for p in paths[:batch_size]], device=device)
    _sync(device)
    started = time.perf_counter()
    for start in range(0, len(paths), batch_size):
        detect(model, [decode(p) for p in paths[start : start + batch_size]], device=device)
    _sync(device)
    return len(paths) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", choices=BACKBONES, default="mobilenet_v3_320")
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=1024, help="synthetic scenes written as PNG files")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps (and inference passes)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="auto", help="auto: CUDA when present, else CPU")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="detector-throughput-") as folder:
        scenes = synthetic_scenes(Path(folder), args.images, args.image_size, args.classes, seed=0)
        paths = [p for p, _, _ in scenes]
        started = time.perf_counter()
        examples = [ImageBoxes(decode(p), b, k) for p, b, k in scenes]
        decode_per_s = len(examples) / (time.perf_counter() - started)
        batch = examples[: args.batch_size]
        model = build_detector(args.classes, backbone=args.backbone, image_size=args.image_size)
        figures = {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "backbone": args.backbone, "image_size": args.image_size, "batch_size": args.batch_size,
            "images": args.images, "steps": args.steps, "torch": torch.__version__,
            "decode_images_per_s": decode_per_s,
            "train_ceiling_images_per_s": train_ceiling(model, batch, device, args.steps, args.warmup),
            "train_end_to_end_images_per_s": train_end_to_end(model, examples, device, args.steps, args.warmup,
                                                              args.batch_size),
            "inference_ceiling_images_per_s": inference_ceiling(model, [e.image for e in batch], device, args.steps,
                                                                args.warmup),
            "inference_end_to_end_images_per_s": inference_end_to_end(model, paths, device, args.batch_size,
                                                                      args.warmup),
        }  # fmt: skip
    for phase in ("train", "inference"):
        ceiling, real = figures[f"{phase}_ceiling_images_per_s"], figures[f"{phase}_end_to_end_images_per_s"]
        figures[f"{phase}_ratio"] = real / ceiling if ceiling else 0.0
        print(f"{args.backbone} {args.image_size} px, batch {args.batch_size} on {figures['device']}: {phase} "
              f"{real:.1f} img/s end-to-end, ceiling {ceiling:.1f} img/s ({100 * figures[f'{phase}_ratio']:.0f}%)")  # fmt: skip
    print(f"PNG decode on the CPU: {decode_per_s:.0f} img/s (one process)")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
