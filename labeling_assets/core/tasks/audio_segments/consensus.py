"""Audio segment consensus per item: one entry point over ``core.speech.segment_consensus``.

``auto`` is ``labeler_aware`` (ours): it beat frame majority on boundary error, segment F1 and frame accuracy on
every crowd mix of ``benchmarks/speech.py`` (docs/speech.md); ``frame_majority`` stays selectable by name. A voted
gold item's answer is its gold regions (confidence 1) whatever the method; ``labeler_aware`` also learns each
labeler's offsets, jitter, miss and false-region rates against them (on gold alone once it has three matched gold
regions: gold anchors the offsets, which the crowd alone only knows relative to its median labeler).

Confidence per item: ``labeler_aware``'s own (the winner's mean share of the weighted frame vote, none counted as
a label); frame majority's is the unweighted share, the same measure without the weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from labeling_assets.core.speech.regions import HOP, Region, to_frames
from labeling_assets.core.speech.segment_consensus import SegmentLabelerStats, frame_majority, labeler_aware

METHODS = ("auto", "labeler_aware", "frame_majority")


@dataclass(frozen=True)
class SegmentRun:
    """What an aggregation decides per item (regions, confidence in [0, 1], labelers who answered) and, for ours,
    what it learned of each labeler."""

    method: str
    labels: dict[str, list[Region]]
    confidence: dict[str, float]
    n_annotators: dict[str, int]
    labelers: dict[str, SegmentLabelerStats] = field(default_factory=dict)


def frame_share(answers: Mapping[str, Sequence[Region]], decided: Sequence[Region], duration: float,
                classes: Sequence[str], hop: float = HOP) -> float:  # fmt: skip
    """The mean over the item's frames of the share of its labelers whose frame (a label, or none) is the
    decided one; 1.0 for an item without labelers or frames."""
    truth = to_frames(decided, classes, duration, hop)
    if not answers or not truth.size:
        return 1.0
    agree = np.mean([to_frames(r, classes, duration, hop) == truth for r in answers.values()], axis=0)
    return float(np.mean(agree))


def aggregate_segments(
    items: Mapping[str, Mapping[str, Sequence[Region]]], durations: Mapping[str, float], classes: Sequence[str],
    method: str = "auto", *, gold: Mapping[str, Sequence[Region]] | None = None,
) -> SegmentRun:  # fmt: skip
    """Each voted item's regions by ``method`` (one of :data:`METHODS`; module docstring)."""
    if method not in METHODS:
        raise ValueError(f"unknown audio segment consensus method {method!r}; choose one of {', '.join(METHODS)}")
    gold = dict(gold or {})
    keys = sorted(items)
    answers = [items[k] for k in keys]
    lengths = [durations[k] for k in keys]
    labels = [str(c) for c in classes]
    learned: dict[str, SegmentLabelerStats] = {}
    if method == "frame_majority":
        decided = frame_majority(answers, lengths, labels)
        confidence = [frame_share(a, d, n, labels) for a, d, n in zip(answers, decided, lengths, strict=True)]
        name = "frame_majority"
    else:
        on_gold = {n: list(gold[k]) for n, k in enumerate(keys) if k in gold}
        run = labeler_aware(answers, lengths, labels, gold=on_gold or None)
        decided, confidence, learned, name = run.regions, run.confidence, run.labelers, "labeler_aware"
    out = {k: list(d) for k, d in zip(keys, decided, strict=True)}
    sure = {k: float(c) for k, c in zip(keys, confidence, strict=True)}
    for k in gold.keys() & out.keys():
        out[k], sure[k] = sorted(gold[k], key=lambda r: (r.start, r.end, r.label)), 1.0
    return SegmentRun(name, out, sure, {k: len(items[k]) for k in keys}, learned)
