"""The bundled demo set: scikit-learn's handwritten digits (real 8x8 scans) rendered once to PNG files.

Beside the PNGs: ``labels.csv`` (the true class of every file: ground truth for the simulated crowd and
for measuring consensus and model accuracy, never loaded as annotations) and ``gold.csv`` (the small
expert-labelled subset used as hidden gold items). Rendering is deterministic: the same bytes every time,
so re-creating the folder does not create new items.

The multi-label demo (:func:`render_digit_grids`, issue 16) draws 2x2 grids of the same scans; an image's
label set is the digits present. Its distribution (``label_distribution`` over 20,000 layouts, seed 0):
35% of images are empty, 32% hold one digit, 24% two, 9% three or four (mean set size 1.08); prevalence
falls from "0" 23.5%, "1" 17.6%, "3" 13.6%, "2" 13.2%, "6" 10.8%, "4" 8.1%, "7" 7.0%, "5" 6.1% to the rare
"8" 4.6% and "9" 3.6%; the most frequent pairs are the partners 0+6, 1+7, 2+3 (and 9 appears mostly beside 4).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# -- the multi-label demo: 2x2 grids of digit scans -----------------------------------------------------------

GRID_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
# How many of the 4 cells hold a digit: most images show nothing or one digit (as most chest X-rays show no
# finding or one), a few show three or four.
FILLED_CELLS_P: tuple[float, ...] = (0.35, 0.30, 0.20, 0.10, 0.05)
# Digit d is drawn with weight DIGIT_DECAY**d: "0" is the most frequent finding, "9" the rarest (a long tail).
DIGIT_DECAY = 0.75
# Each further digit of an image is, with this probability, the first digit's partner instead of a free draw:
# a skewed co-occurrence (e.g. "9" appears mostly beside "4", as effusion beside cardiomegaly).
PARTNER_P = 0.45
PARTNER: dict[int, int] = {0: 6, 1: 7, 2: 3, 3: 8, 4: 9, 5: 6, 6: 0, 7: 1, 8: 3, 9: 4}
# Paper noise of a scan (gray levels): without it every empty grid would have the same bytes, and the
# content-addressed store would keep one item for all of them.
PAPER_NOISE = 6.0


@dataclass(frozen=True)
class GridDemoSet(DemoSet):
    """A rendered multi-label demo set; ``labels.csv`` holds each file's true set as a JSON list."""

    classes: tuple[str, ...] = GRID_CLASSES


def grid_layouts(n_images: int, *, seed: int = 0) -> list[list[int | None]]:
    """The digit (or None for a blank cell) in each of the 4 cells of each image, row-major; deterministic.

    The generative process is the module constants': the number of filled cells from
    :data:`FILLED_CELLS_P`, the first digit from weights ``DIGIT_DECAY**d``, each further digit the first
    digit's :data:`PARTNER` with probability :data:`PARTNER_P`, else a free draw; filled cells at random
    positions. A digit may fill two cells; the image's label set names it once.
    """
    rng = np.random.default_rng(seed)
    weights = DIGIT_DECAY ** np.arange(len(GRID_CLASSES))
    weights /= weights.sum()
    layouts: list[list[int | None]] = []
    for _ in range(n_images):
        filled = int(rng.choice(len(FILLED_CELLS_P), p=FILLED_CELLS_P))
        digits: list[int] = []
        for _cell in range(filled):
            if digits and rng.random() < PARTNER_P:
                digits.append(PARTNER[digits[0]])
            else:
                digits.append(int(rng.choice(len(weights), p=weights)))
        cells: list[int | None] = [None] * 4
        for position, digit in zip(rng.permutation(4)[:filled], digits, strict=True):
            cells[int(position)] = digit
        layouts.append(cells)
    return layouts


def grid_label_set(cells: list[int | None]) -> list[str]:
    """The true label set of a grid: the digits present, sorted, each once ([] for an empty grid)."""
    return sorted({str(d) for d in cells if d is not None})


def render_digit_grids(
    folder: Path, *, n_images: int = 1000, cell: int = 32, gold_fraction: float = 0.05, seed: int = 0
) -> GridDemoSet:
    """Write ``n_images`` 2x2 grids of real scikit-learn digit scans (``2*cell`` px square, grayscale PNG).

    ``labels.csv`` (``filename,label``; label = the true set as a sorted JSON list, ``[]`` for an empty grid)
    is ground truth for the simulated crowd and for measuring consensus and models, never loaded as
    annotations; ``gold.csv`` is a random ``gold_fraction`` of it, the hidden gold items. Same arguments,
    same bytes (re-rendering creates no new items); an image already there is not rewritten.
    """
    from sklearn.datasets import load_digits  # shipped with scikit-learn: nothing is downloaded

    digits = load_digits()
    rng = np.random.default_rng([seed, 1])  # the scans and noise: a stream apart from the layouts'
    # Each digit's scans in a shuffled cycle: consecutive uses of a digit take different scans.
    scans = {d: rng.permutation(np.flatnonzero(digits.target == d)) for d in range(len(GRID_CLASSES))}
    used = dict.fromkeys(scans, 0)
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []
    for index, cells in enumerate(grid_layouts(n_images, seed=seed)):
        ink = np.zeros((16, 16))  # the 2x2 grid at the scans' own 8x8 resolution, 0..16 ink levels
        for position, digit in enumerate(cells):
            if digit is not None:
                scan = scans[digit][used[digit] % len(scans[digit])]
                used[digit] += 1
                r, c = divmod(position, 2)
                ink[8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = digits.images[scan]
        noise = rng.normal(
            0.0, PAPER_NOISE, size=(2 * cell, 2 * cell)
        )  # drawn for every image: stable streams
        name = f"grid_{index:04d}.png"
        rows.append((name, json.dumps(grid_label_set(cells))))
        path = folder / name
        if path.exists():
            continue
        gray = (255 - ink * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        upscaled = np.asarray(
            Image.fromarray(gray, mode="L").resize((2 * cell, 2 * cell), Image.Resampling.BICUBIC)
        )
        picture = Image.fromarray((upscaled + noise).clip(0, 255).astype(np.uint8), mode="L")
        tmp = path.with_suffix(".tmp")
        picture.save(tmp, format="PNG", optimize=False)
        tmp.replace(path)
    _write_csv(folder / LABELS_FILE, rows)
    picks = np.random.default_rng([seed, 2]).choice(
        len(rows), size=round(len(rows) * gold_fraction), replace=False
    )
    gold = [rows[i] for i in sorted(picks)]
    _write_csv(folder / GOLD_FILE, gold)  # written last: its presence says the set is complete
    return GridDemoSet(folder=folder, n_images=len(rows), n_gold=len(gold))


def load_truth_sets(folder: Path) -> dict[str, list[str]]:
    """{file name: true label set} of a rendered grid set."""
    return {name: list(json.loads(label)) for name, label in load_truth(folder).items()}


def label_distribution(sets: list[list[str]], classes: Sequence[str] = GRID_CLASSES) -> dict[str, Any]:
    """Prevalence per class, the share of empty sets, set sizes and the most frequent pairs (for docs and cards)."""
    n = max(len(sets), 1)
    pairs: dict[str, int] = {}
    for labels in sets:
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                pairs[f"{a}+{b}"] = pairs.get(f"{a}+{b}", 0) + 1
    return {
        "n": len(sets),
        "prevalence": {c: sum(c in s for s in sets) / n for c in classes},
        "empty": sum(not s for s in sets) / n,
        "mean_set_size": sum(len(s) for s in sets) / n,
        "top_pairs": dict(sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:5]),
    }
