"""The bundled demo set: scikit-learn's handwritten digits (real 8x8 scans) rendered once to PNG files.

Beside the PNGs: ``labels.csv`` (the true class of every file: ground truth for the simulated crowd and
for measuring consensus and model accuracy, never loaded as annotations) and ``gold.csv`` (the small
expert-labelled subset used as hidden gold items). Rendering is deterministic: the same bytes every time,
so re-creating the folder does not create new items.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

LABELS_FILE = "labels.csv"
GOLD_FILE = "gold.csv"


@dataclass(frozen=True)
class DemoSet:
    folder: Path
    n_images: int
    n_gold: int

    @property
    def labels_csv(self) -> Path:
        return self.folder / LABELS_FILE

    @property
    def gold_csv(self) -> Path:
        return self.folder / GOLD_FILE


def render_digits(
    folder: Path, *, size: int = 32, limit: int | None = None, gold_fraction: float = 0.05, seed: int = 0
) -> DemoSet:
    """Write the digits as ``size``x``size`` grayscale PNGs under ``folder`` (idempotent)."""
    from sklearn.datasets import load_digits  # shipped with scikit-learn: nothing is downloaded

    digits = load_digits()
    images = digits.images if limit is None else digits.images[:limit]
    targets = digits.target if limit is None else digits.target[:limit]
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, (pixels, target) in enumerate(zip(images, targets, strict=True)):
        name = f"digit_{index:04d}.png"
        path = folder / name
        if not path.exists():
            # 0..16 ink levels -> white paper, dark ink, as a scan looks.
            gray = (255 - np.asarray(pixels) * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
            picture = Image.fromarray(gray, mode="L").resize((size, size), Image.Resampling.BICUBIC)
            tmp = path.with_suffix(".tmp")
            picture.save(tmp, format="PNG", optimize=False)
            tmp.replace(path)
        rows.append((name, str(int(target))))
    _write_csv(folder / LABELS_FILE, rows)
    gold = _stratified_subset(rows, gold_fraction, seed)
    _write_csv(folder / GOLD_FILE, gold)
    return DemoSet(folder=folder, n_images=len(rows), n_gold=len(gold))


def _stratified_subset(rows: list[tuple[str, str]], fraction: float, seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    chosen: list[tuple[str, str]] = []
    for label in sorted({label for _, label in rows}):
        members = [row for row in rows if row[1] == label]
        k = max(1, round(len(members) * fraction))
        picks = rng.choice(len(members), size=min(k, len(members)), replace=False)
        chosen.extend(members[i] for i in sorted(picks))
    return sorted(chosen)


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "label"])
        writer.writerows(rows)
    tmp.replace(path)


def load_truth(folder: Path) -> dict[str, str]:
    """{file name: true class} of a rendered demo set."""
    with open(folder / LABELS_FILE, newline="") as fh:
        return {row["filename"]: row["label"] for row in csv.DictReader(fh)}
