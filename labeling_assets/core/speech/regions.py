"""Time regions with a label (``vi``, ``en``, ``noise``) and how a set of them is scored against the truth.

A region is ``[start, end)`` in seconds. Frames are ``hop`` seconds long; frame ``k`` covers
``[k * hop, (k + 1) * hop)`` and takes the label of the last region (in list order) that covers its centre, or
none. Two regions *match* when their labels agree and their intersection over union (IoU) on the time axis is at
least ``min_iou`` (0.5 by default); matching is one-to-one, the pair with the highest IoU first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

HOP = 0.01  # seconds per frame
MIN_IOU = 0.5
NONE = -1  # the frame code of "no region"


@dataclass(frozen=True)
class Region:
    start: float
    end: float
    label: str

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class SegmentScore:
    precision: float
    recall: float
    f1: float
    boundary_error: (
        float  # mean absolute seconds over the starts and ends of matched pairs; nan without a pair
    )
    matched: int


def iou(a: Region, b: Region) -> float:
    inter = min(a.end, b.end) - max(a.start, b.start)
    if inter <= 0:
        return 0.0
    union = max(a.end, b.end) - min(a.start, b.start)
    return inter / union


def match_regions(
    found: Sequence[Region], truth: Sequence[Region], min_iou: float = MIN_IOU, same_label: bool = True
) -> list[tuple[int, int]]:
    """One-to-one pairs ``(i in found, j in truth)`` with IoU >= ``min_iou`` (and the same label), best IoU first."""
    pairs = sorted(
        (
            (iou(a, b), i, j)
            for i, a in enumerate(found)
            for j, b in enumerate(truth)
            if (not same_label or a.label == b.label) and iou(a, b) >= min_iou
        ),
        reverse=True,
    )
    used_i: set[int] = set()
    used_j: set[int] = set()
    out = []
    for _, i, j in pairs:
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            out.append((i, j))
    return sorted(out)


def segment_score(found: Sequence[Region], truth: Sequence[Region], min_iou: float = MIN_IOU) -> SegmentScore:
    pairs = match_regions(found, truth, min_iou)
    return _score(len(found), len(truth), [(found[i], truth[j]) for i, j in pairs])


def pooled_segment_score(
    found: Sequence[Sequence[Region]], truth: Sequence[Sequence[Region]], min_iou: float = MIN_IOU
) -> SegmentScore:
    """Segment F1 and boundary error over many items: counts and matched boundaries pooled, not item means."""
    matched: list[tuple[Region, Region]] = []
    for f, t in zip(found, truth, strict=True):
        matched += [(f[i], t[j]) for i, j in match_regions(f, t, min_iou)]
    return _score(sum(len(f) for f in found), sum(len(t) for t in truth), matched)


def _score(n_found: int, n_truth: int, matched: list[tuple[Region, Region]]) -> SegmentScore:
    m = len(matched)
    precision = m / n_found if n_found else 1.0
    recall = m / n_truth if n_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    errors = [abs(a.start - b.start) for a, b in matched] + [abs(a.end - b.end) for a, b in matched]
    return SegmentScore(precision, recall, f1, float(np.mean(errors)) if errors else float("nan"), m)


def n_frames(duration: float, hop: float = HOP) -> int:
    return int(np.ceil(duration / hop - 1e-9))


def to_frames(
    regions: Sequence[Region], labels: Sequence[str], duration: float, hop: float = HOP
) -> npt.NDArray[np.int64]:
    """The label index per frame (``NONE`` where no region covers the frame's centre)."""
    index = {label: k for k, label in enumerate(labels)}
    centres = (np.arange(n_frames(duration, hop)) + 0.5) * hop
    frames = np.full(centres.shape, NONE, dtype=np.int64)
    for r in regions:
        frames[(centres >= r.start) & (centres < r.end)] = index[r.label]
    return frames


def from_frames(
    frames: npt.NDArray[np.int64], labels: Sequence[str], hop: float = HOP, min_duration: float = 0.0
) -> list[Region]:
    """Runs of one label as regions (boundaries on frame edges); runs shorter than ``min_duration`` are dropped."""
    out: list[Region] = []
    if frames.size == 0:
        return out
    change = np.flatnonzero(np.diff(frames)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [frames.size]])
    for s, e in zip(starts, ends, strict=True):
        code = int(frames[s])
        if code != NONE and (e - s) * hop >= min_duration - 1e-9:
            out.append(Region(round(float(s * hop), 6), round(float(e * hop), 6), labels[code]))
    return out


def frame_accuracy(
    found: Sequence[Region], truth: Sequence[Region], labels: Sequence[str], duration: float, hop: float = HOP
) -> float:
    """The share of frames whose label (or none) agrees with the truth's."""
    a = to_frames(found, labels, duration, hop)
    b = to_frames(truth, labels, duration, hop)
    return float(np.mean(a == b)) if a.size else 1.0
