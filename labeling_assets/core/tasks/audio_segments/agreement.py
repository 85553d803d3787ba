"""Agreement between labelers of audio segments, on 10 ms frames.

Each frame of an item answered by two or more labelers is a unit; its values are the labelers' labels there, "no
region" one of them. Krippendorff's alpha (nominal) over those units corrects the observed disagreement for the
disagreement the labels' overall shares would give by chance: 1 is perfect agreement, 0 chance. Per class, the
same alpha on "this class or not". An item's own agreement is the mean pairwise share of frames two of its
labelers agree on (1.0 with one labeler, as a lone vote agrees with itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from labeling_assets.core.speech.regions import HOP, NONE, Region, to_frames


@dataclass(frozen=True)
class FrameAgreement:
    alpha: float  # nan without a unit of two values or without any disagreement expected by chance
    per_class: dict[str, float]
    observed: float  # the share of agreeing ordered pairs of values within units
    expected: float
    n_items: int  # items with two or more labelers
    per_item: dict[str, float]


def _alpha(counts: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    """(alpha, observed agreement, expected agreement) of a units x values count matrix (units of >= 2 values)."""
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    n = float(m.sum())
    if n < 2:
        return float("nan"), float("nan"), float("nan")
    disagree = float(np.sum((m**2 - np.sum(counts**2, axis=1)) / (m - 1)))
    totals = counts.sum(axis=0)
    expected_disagree = float((n**2 - np.sum(totals**2)) / (n * (n - 1)))
    observed = 1 - disagree / n
    if expected_disagree <= 0:
        return float("nan"), observed, 1.0
    return 1 - (disagree / n) / expected_disagree, observed, 1 - expected_disagree


def frame_agreement(
    items: Mapping[str, Mapping[str, Sequence[Region]]], durations: Mapping[str, float], classes: Sequence[str],
    hop: float = HOP,
) -> FrameAgreement:  # fmt: skip
    """Krippendorff's alpha over the frames of ``items`` (item -> labeler -> regions), overall and per class."""
    k = len(classes)
    blocks = []
    per_item: dict[str, float] = {}
    for item, answers in sorted(items.items()):
        frames = [to_frames(r, classes, durations[item], hop) for r in answers.values()]
        if len(frames) < 2:
            per_item[item] = 1.0
            continue
        stack = np.where(np.asarray(frames) == NONE, k, np.asarray(frames))  # labelers x frames, none = k
        counts = np.zeros((stack.shape[1], k + 1))
        for row in stack:
            counts[np.arange(stack.shape[1]), row] += 1
        blocks.append(counts)
        pairs = [float(np.mean(a == b)) for i, a in enumerate(stack) for b in stack[i + 1 :]]
        per_item[item] = float(np.mean(pairs))
    if not blocks:
        nan = float("nan")
        return FrameAgreement(nan, {str(c): nan for c in classes}, nan, nan, 0, per_item)
    table: npt.NDArray[np.float64] = np.concatenate(blocks)
    alpha, observed, expected = _alpha(table)
    per_class = {}
    for j, name in enumerate(classes):
        binary = np.stack([table[:, j], table.sum(axis=1) - table[:, j]], axis=1)
        per_class[str(name)] = _alpha(binary)[0]
    return FrameAgreement(alpha, per_class, observed, expected, len(blocks), per_item)
