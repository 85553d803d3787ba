"""Grad-CAM as the evaluation and the review project use it: a grid of test items, and one item's overlay file.

The image classifier of both class kinds (single-label, multi-label) is explained; the caller skips other models
(a detector, a text model) with a reason. Images are decoded at the model's size as training saw them, and the
maps are computed on the CPU: a handful of items, never the whole split.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from labeling_assets.core.training.decode import decode_images
from labeling_assets.core.training.gradcam import (
    Tile,
    class_activation_maps,
    grid_png,
    overlay_png,
    target_layer,
)
from labeling_assets.core.training.gradcam_sample import MAX_ITEMS, Pick, caption, one_hot, pick_items
from labeling_assets.core.training.types import AnyArray


@dataclass(frozen=True)
class Explanation:
    png: bytes  # the grid: per item the image, its overlay, why it is there and its label
    picks: list[Pick]  # in grid order
    item_ids: list[str]  # of the picks


def truth_and_decisions(answers: AnyArray, probs: AnyArray, thresholds: Sequence[float] | None) -> tuple[AnyArray, AnyArray]:
    """(N, K) labels and decisions: class indices (N,) are one-hot and decided by the top class; label sets (N, K)
    are decided per class at ``thresholds`` (0.5 where there are none)."""
    answers, probs = np.asarray(answers), np.asarray(probs, dtype=np.float64)
    if answers.ndim == 1:
        return one_hot(answers, probs.shape[1]), one_hot(np.nan_to_num(probs).argmax(axis=1), probs.shape[1])
    cut = np.asarray(thresholds if thresholds is not None else [0.5] * probs.shape[1], dtype=np.float64)
    return answers.astype(bool), np.nan_to_num(probs) >= cut


def explain_test_items(
    model: nn.Module,
    *,
    image_size: int,
    channels: int,
    classes: list[str],
    item_ids: Sequence[str],
    paths: Sequence[str],
    answers: AnyArray,
    probs: AnyArray,
    thresholds: Sequence[float] | None,
    failed: Collection[int] = (),
    label_issues: Collection[str] = (),
    max_items: int = MAX_ITEMS,
) -> Explanation:
    """The grid of up to ``max_items`` test items (:func:`pick_items`); ``label_issues``: item ids flagged as likely
    mislabeled. Raises ``NotConvolutional`` for a model without a spatial feature map."""
    layer = target_layer(model)
    truth, decided = truth_and_decisions(answers, probs, thresholds)
    rows = {item: n for n, item in enumerate(item_ids)}
    flagged = {rows[i] for i in label_issues if i in rows}
    picks = pick_items(truth, probs, decided, label_issues=flagged, skip=failed, max_items=max_items)
    images, failures = decode_images([paths[p.index] for p in picks], image_size, channels)
    bad = {f.index for f in failures}  # a file that changed since prediction: left out, not fatal
    picks = [p for n, p in enumerate(picks) if n not in bad]
    images = images[[n for n in range(len(images)) if n not in bad]] if bad else images
    maps = class_activation_maps(model, images, [p.class_index for p in picks], layer=layer)
    tiles = [Tile(image, cam, caption(p, classes, truth[p.index])) for image, cam, p in zip(images, maps, picks, strict=True)]
    return Explanation(grid_png(tiles), picks, [str(item_ids[p.index]) for p in picks])


def write_overlay(
    model: nn.Module, path: str, class_index: int, out: Path, *, image_size: int, channels: int
) -> Path:
    """The Grad-CAM overlay of the item at ``path`` for ``class_index`` (224 px) written to ``out`` (a PNG, replaced
    atomically: Label Studio may be reading the old one). Raises ``ValueError`` for a file that cannot be
    decoded and ``NotConvolutional`` for a model without a spatial feature map."""
    images, failures = decode_images([path], image_size, channels)
    if failures:
        raise ValueError(failures[0].error)
    cam = class_activation_maps(model, images, [class_index])[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(overlay_png(images[0], cam))
    tmp.replace(out)
    return out



def review_overlays(
    model: nn.Module,
    wanted: Mapping[str, tuple[str, int]],
    folder: Path,
    *,
    image_size: int,
    channels: int,
) -> tuple[dict[str, Path], dict[str, str]]:
    """The overlay of each wanted item (item_id -> (its image file, the class index to explain)) written to
    ``folder/<item_id>.png``; returns (item_id -> file, item_id -> why it has none)."""
    written: dict[str, Path] = {}
    problems: dict[str, str] = {}
    for item_id, (path, class_index) in sorted(wanted.items()):
        try:
            written[item_id] = write_overlay(model, path, class_index, folder / f"{item_id}.png",
                                             image_size=image_size, channels=channels)  # fmt: skip
        except (OSError, ValueError) as exc:  # NotConvolutional is a ValueError too
            problems[item_id] = str(exc)[:200]
    return written, problems
