"""Demo data for boxes: scenes of the bundled digit scans (scikit-learn's real 8x8 handwritten digits; nothing is
downloaded) at random places and sizes on a larger canvas, some scenes empty.

Beside the PNGs: ``labels.csv`` (``filename,label``; label = the true boxes as a JSON list of ``{label, x0, y0,
x1, y1}`` in pixels, ``[]`` for an empty scene) is ground truth for the simulated crowd and for measuring consensus
and models, never loaded as annotations; ``gold.csv`` is a random ``gold_fraction`` of it in the gold file format
(:func:`.gold.parse_gold_boxes` reads each entry). A true box is the digit's ink, not the square it was scanned in
(what a person draws around). Same arguments, same bytes: re-rendering creates no new items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from labeling_assets.core.ingest.demo_data import GOLD_FILE, LABELS_FILE, PAPER_NOISE, _write_csv, load_truth
from labeling_assets.core.tasks.boxes.geometry import iou_matrix

SCENE_CLASSES = [str(d) for d in range(10)]
INK_LEVEL = 3  # of 16: a scan's cells at least this dark are ink (what bounds the true box)


@dataclass(frozen=True)
class SceneDemoSet:
    folder: Path
    n_images: int
    n_gold: int
    n_boxes: int


def scene_layouts(
    n_images: int, *, canvas: int, max_digits: int, empty_share: float, sizes: tuple[int, int], seed: int
) -> list[list[tuple[int, int, int, int]]]:
    """Per scene, the digits placed: ``(digit, x, y, side)`` of each scan's square; squares do not overlap."""
    rng = np.random.default_rng([seed, 0])
    layouts = []
    for _ in range(n_images):
        k = 0 if rng.random() < empty_share else int(rng.integers(1, max_digits + 1))
        placed: list[tuple[int, int, int, int]] = []
        for _ in range(20 * k):
            if len(placed) == k:
                break
            side = int(rng.integers(sizes[0], sizes[1] + 1))
            x, y = (int(v) for v in rng.integers(0, canvas - side + 1, size=2))
            square = np.array([[x, y, x + side, y + side]], dtype=float)
            others = np.array([[px, py, px + ps, py + ps] for _, px, py, ps in placed], dtype=float)
            if placed and iou_matrix(square, others).max() > 0:
                continue
            placed.append((int(rng.integers(10)), x, y, side))
        layouts.append(placed)
    return layouts


def render_digit_scenes(
    folder: Path, *, n_images: int = 500, canvas: int = 160, max_digits: int = 4, empty_share: float = 0.1,
    sizes: tuple[int, int] = (24, 56), gold_fraction: float = 0.05, seed: int = 0,
) -> SceneDemoSet:
    """Write ``n_images`` grayscale ``canvas`` px square scenes of 0 to ``max_digits`` digit scans (sides ``sizes``
    px, ``empty_share`` of scenes empty) under ``folder``, with ``labels.csv`` and ``gold.csv`` (module docstring)."""
    from sklearn.datasets import load_digits  # shipped with scikit-learn: nothing is downloaded

    digits = load_digits()
    rng = np.random.default_rng([seed, 1])  # scans and noise: a stream apart from the layouts'
    scans = {d: rng.permutation(np.flatnonzero(digits.target == d)) for d in range(10)}
    used = dict.fromkeys(scans, 0)
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []
    n_boxes = 0
    layouts = scene_layouts(n_images, canvas=canvas, max_digits=max_digits, empty_share=empty_share, sizes=sizes,
                            seed=seed)  # fmt: skip
    for index, placed in enumerate(layouts):
        paper = np.full((canvas, canvas), 255.0)
        boxes = []
        for digit, x, y, side in placed:
            scan = digits.images[scans[digit][used[digit] % len(scans[digit])]]
            used[digit] += 1
            gray = Image.fromarray((255 - scan * (255.0 / 16.0)).clip(0, 255).astype(np.uint8), mode="L")
            patch = np.asarray(gray.resize((side, side), Image.Resampling.BICUBIC), dtype=float)
            paper[y : y + side, x : x + side] = np.minimum(paper[y : y + side, x : x + side], patch)
            rows_ink = np.flatnonzero((scan >= INK_LEVEL).any(axis=1))
            cols_ink = np.flatnonzero((scan >= INK_LEVEL).any(axis=0))
            scale = side / 8.0
            boxes.append({"label": str(digit), "x0": x + cols_ink[0] * scale, "y0": y + rows_ink[0] * scale,
                          "x1": x + (cols_ink[-1] + 1) * scale, "y1": y + (rows_ink[-1] + 1) * scale})  # fmt: skip
        noise = rng.normal(0.0, PAPER_NOISE, size=(canvas, canvas))  # drawn for every scene: stable streams
        name = f"scene_{index:04d}.png"
        rows.append((name, json.dumps(boxes)))
        n_boxes += len(boxes)
        path = folder / name
        if path.exists():
            continue
        tmp = path.with_suffix(".tmp")
        Image.fromarray((paper + noise).clip(0, 255).astype(np.uint8), mode="L").save(tmp, format="PNG")
        tmp.replace(path)
    _write_csv(folder / LABELS_FILE, rows)
    picks = np.random.default_rng([seed, 2]).choice(len(rows), size=round(len(rows) * gold_fraction), replace=False)
    gold = [rows[i] for i in sorted(picks)]
    _write_csv(folder / GOLD_FILE, gold)  # written last: its presence says the set is complete
    return SceneDemoSet(folder=folder, n_images=len(rows), n_gold=len(gold), n_boxes=n_boxes)


def load_scene_truth(folder: Path) -> dict[str, list[dict[str, float | str]]]:
    """{file name: true boxes} of a rendered scene set."""
    return {name: list(json.loads(label)) for name, label in load_truth(folder).items()}
