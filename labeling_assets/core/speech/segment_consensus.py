"""Consensus of time regions from several labelers: ours (labeler-aware) and the frame-wise majority baseline.

Ours, ``labeler_aware``, alternates two steps a few times, starting from the frame majority:

1. *Learn each labeler* against the current consensus (against gold on the items that have it): its regions are
   matched to the reference regions (same label, IoU >= 0.5); from the matched pairs it learns a start offset
   and an end offset (median signed error: a labeler who marks late, or wide) and a jitter (the sd of the
   errors left); the reference regions it has no match for give its miss rate, its own unmatched regions its
   false-region rate (offsets: on gold alone once it has three matched gold regions); its frame error rate
   against the reference gives a vote weight ``log((1 - e) / e)`` (a spammer's is about 0).
2. *Fuse*: a weighted frame vote over the labelers' offset-corrected regions decides which regions exist and
   their labels (``none`` is a class; a run under 0.15 s is dropped). A gap that a labeler keeps between two of
   its regions, where another's one region spans both (a missed switch), is kept when its keepers are at least
   as many as its spanners, the spanners' votes left out from the gap on (``kept_gaps``): the frame weight
   cannot settle it, as with two trusted labelers on an item the heavier would take every frame. Then each
   region's start and end are the precision-weighted mean (weight ``1 / jitter^2``) of the offset-corrected
   boundaries of the labelers' matching regions (IoU >= 0.3) that lie within 0.15 s of the vote's boundary (the
   end of a region that merged two phrases is not fused). Two neighbours that now overlap meet halfway.

Offsets are relative: with no gold they are centred on the median labeler among those with a positive weight (the
crowd as a whole is taken to be on time, so a crowd that is late as a whole stays late); gold anchors them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from labeling_assets.core.speech.regions import (
    HOP,
    MIN_IOU,
    NONE,
    Region,
    from_frames,
    match_regions,
    n_frames,
    to_frames,
)

ItemRegions = Mapping[str, Sequence[Region]]  # labeler -> regions, for one item
METHODS = ("labeler_aware", "frame_majority")
MIN_DURATION = 0.15  # seconds: a fused run shorter than this is dropped (a sliver where votes split)
JITTER_PRIOR = 0.1  # seconds: the jitter of a labeler with few matched boundaries shrinks from this
PRIOR_BOUNDARIES = 4  # pseudo-boundaries of that prior
ABSTAIN = -2  # the frame code of a labeler's frame left out of the vote (kept_gaps)
GATE = 0.15  # seconds: a labeler's boundary further than this from the vote's is not fused
MIN_GOLD_MATCHES = 3  # matched gold regions from which a labeler's offsets are learnt on gold alone


@dataclass(frozen=True)
class SegmentLabelerStats:
    labeler: str
    start_offset: float  # seconds, labeler minus reference
    end_offset: float
    jitter: float  # seconds
    miss_rate: float  # reference regions it has no match for
    false_rate: float  # its regions that match no reference region
    frame_error: float
    weight: float  # the frame vote's weight
    matched: int  # matched regions the offsets were learnt from


@dataclass(frozen=True)
class SegmentConsensus:
    regions: list[list[Region]]  # per item
    labelers: dict[str, SegmentLabelerStats]
    confidence: list[float]  # per item: the winner's mean share of the weighted frame vote over its frames


def frame_majority(
    items: Sequence[ItemRegions], durations: Sequence[float], labels: Sequence[str], hop: float = HOP
) -> list[list[Region]]:
    """The baseline: per frame the label most labelers gave (``none`` counts as a label; a tie goes to none)."""
    out = []
    for answers, duration in zip(items, durations, strict=True):
        frames = [to_frames(r, labels, duration, hop) for r in answers.values()]
        weights = {name: 1.0 for name in answers}
        out.append(from_frames(_vote(frames, list(weights.values()), len(labels))[0], labels, hop))
    return out


def labeler_aware(
    items: Sequence[ItemRegions],
    durations: Sequence[float],
    labels: Sequence[str],
    gold: Mapping[int, Sequence[Region]] | None = None,
    hop: float = HOP,
    iterations: int = 4,
) -> SegmentConsensus:
    """Ours (module docstring). ``gold`` maps an item's index to its true regions."""
    gold = gold or {}
    consensus = frame_majority(items, durations, labels, hop)
    stats: dict[str, SegmentLabelerStats] = {}
    confidence = [1.0] * len(items)
    for _ in range(iterations):
        reference = [list(gold.get(k, consensus[k])) for k in range(len(items))]
        stats = learn_labelers(items, reference, durations, labels, hop)
        stats = _gold_offsets(stats, items, gold, durations, labels, hop) if gold else _centred(stats)
        fused = [
            _fuse(answers, duration, labels, stats, hop)
            for answers, duration in zip(items, durations, strict=True)
        ]
        consensus = [regions for regions, _ in fused]
        confidence = [c for _, c in fused]
    return SegmentConsensus(consensus, stats, confidence)


def learn_labelers(
    items: Sequence[ItemRegions],
    reference: Sequence[Sequence[Region]],
    durations: Sequence[float],
    labels: Sequence[str],
    hop: float = HOP,
) -> dict[str, SegmentLabelerStats]:
    starts: dict[str, list[float]] = {}
    ends: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}  # matched, reference regions, own regions, frames wrong, frames
    for answers, ref, duration in zip(items, reference, durations, strict=True):
        ref_frames = to_frames(ref, labels, duration, hop)
        for name, regions in answers.items():
            pairs = match_regions(regions, ref, MIN_IOU)
            starts.setdefault(name, []).extend(regions[i].start - ref[j].start for i, j in pairs)
            ends.setdefault(name, []).extend(regions[i].end - ref[j].end for i, j in pairs)
            wrong = int(np.sum(to_frames(regions, labels, duration, hop) != ref_frames))
            c = counts.setdefault(name, [0, 0, 0, 0, 0])
            for k, v in enumerate((len(pairs), len(ref), len(regions), wrong, ref_frames.size)):
                c[k] += v
    out = {}
    for name, (matched, n_ref, n_own, wrong, frames) in counts.items():
        s, e = np.asarray(starts[name]), np.asarray(ends[name])
        start_offset = float(np.median(s)) if s.size else 0.0
        end_offset = float(np.median(e)) if e.size else 0.0
        residuals = np.concatenate([s - start_offset, e - end_offset])
        # Shrunk towards the prior so that two lucky boundaries do not make a labeler the only voice.
        var = (float(np.sum(residuals**2)) + PRIOR_BOUNDARIES * JITTER_PRIOR**2) / (
            residuals.size + PRIOR_BOUNDARIES
        )
        frame_error = min(max((wrong + 1) / (frames + 2), 0.01), 0.5)
        out[name] = SegmentLabelerStats(
            labeler=name,
            start_offset=start_offset,
            end_offset=end_offset,
            jitter=float(np.sqrt(var)),
            miss_rate=1 - matched / n_ref if n_ref else 0.0,
            false_rate=1 - matched / n_own if n_own else 0.0,
            frame_error=frame_error,
            weight=float(np.log((1 - frame_error) / frame_error)),
            matched=matched,
        )
    return out


def _gold_offsets(
    stats: dict[str, SegmentLabelerStats],
    items: Sequence[ItemRegions],
    gold: Mapping[int, Sequence[Region]],
    durations: Sequence[float],
    labels: Sequence[str],
    hop: float,
) -> dict[str, SegmentLabelerStats]:
    """Offsets learnt on gold alone for the labelers with enough matched gold regions: against the consensus a
    labeler's offset is relative to the crowd's, against gold it is absolute."""
    keys = sorted(gold)
    on_gold = learn_labelers(
        [items[k] for k in keys], [gold[k] for k in keys], [durations[k] for k in keys], labels, hop
    )
    out = dict(stats)
    for name, g in on_gold.items():
        if g.matched >= MIN_GOLD_MATCHES:
            out[name] = replace(stats[name], start_offset=g.start_offset, end_offset=g.end_offset)
    return out


def _centred(stats: Mapping[str, SegmentLabelerStats]) -> dict[str, SegmentLabelerStats]:
    trusted = [s for s in stats.values() if s.weight > 0] or list(stats.values())
    if not trusted:
        return dict(stats)
    start = float(np.median([s.start_offset for s in trusted]))
    end = float(np.median([s.end_offset for s in trusted]))
    return {
        name: replace(s, start_offset=s.start_offset - start, end_offset=s.end_offset - end)
        for name, s in stats.items()
    }


def _vote(
    frames: Sequence[npt.NDArray[np.int64]], weights: Sequence[float], n_labels: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Weighted frame vote: the winner per frame (class ``n_labels`` is none, and it wins ties) and its share.
    A frame coded ``ABSTAIN`` casts no vote."""
    if not frames:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    scores = np.zeros((n_labels + 1, frames[0].size))
    for f, w in zip(frames, weights, strict=True):
        code = np.where(f == NONE, n_labels, f)
        cast = f != ABSTAIN
        np.add.at(scores, (code[cast], np.flatnonzero(cast)), w)
    scores[n_labels] += 1e-9
    best = np.argmax(scores[::-1], axis=0)
    winner = n_labels - best
    total = scores.sum(axis=0)
    share = np.where(total > 0, scores[winner, np.arange(winner.size)] / np.where(total > 0, total, 1), 1.0)
    return np.where(winner == n_labels, NONE, winner).astype(np.int64), share


def _shifted(regions: Sequence[Region], s: SegmentLabelerStats, duration: float) -> list[Region]:
    out = []
    for r in regions:
        start = min(max(r.start - s.start_offset, 0.0), duration)
        end = min(max(r.end - s.end_offset, 0.0), duration)
        if end > start:
            out.append(Region(start, end, r.label))
    return out


def _weighted_mean(values: Sequence[tuple[float, float]], default: float) -> float:
    total = sum(w for _, w in values)
    return sum(v * w for v, w in values) / total if total > 0 else default


def _covers(region: Region, other: Region) -> bool:
    return min(region.end, other.end) - max(region.start, other.start) >= other.duration / 2


def kept_gaps(
    corrected: Mapping[str, Sequence[Region]], trusted: Sequence[str]
) -> list[tuple[str, float, float]]:
    """The gaps to keep against a missed switch: ``(labeler, from, to)``, a stretch where that labeler's vote is
    left out because one region of its own spans a gap the others keep.

    A *keeper* ends a region (``a``) and starts another (``b``) after a gap; a *spanner* has one region covering
    most of both ``a`` and ``b``. The weighted vote cannot settle between them (a frame weight measures boundary
    error; the one-region answer is the missed switch of the crowd model, a careful labeler's common slip,
    while a gap and a fresh region where there is neither is rare), so the gap is kept when its keepers are at
    least as many as its spanners (ties go to the gap as they go to none in the vote), and each spanner's
    region is left out of the vote from the gap on: it spoke for the first phrase, not the second."""
    out: list[tuple[str, float, float]] = []
    own = {name: sorted(corrected[name], key=lambda r: r.start) for name in trusted}
    for keeper in trusted:
        for a, b in zip(own[keeper], own[keeper][1:], strict=False):
            if b.start <= a.end:
                continue
            middle = (a.end + b.start) / 2
            spans = [(n, r) for n in trusted for r in own[n] if _covers(r, a) and _covers(r, b)]
            keepers = [
                n
                for n in trusted
                if not any(r.start <= middle < r.end for r in own[n])
                and any(_covers(r, a) for r in own[n])
                and any(_covers(r, b) for r in own[n])
            ]
            if spans and len(keepers) >= len({n for n, _ in spans}):
                out += [(n, a.end, r.end) for n, r in spans]
    return out


def _fuse(
    answers: ItemRegions,
    duration: float,
    labels: Sequence[str],
    stats: Mapping[str, SegmentLabelerStats],
    hop: float,
) -> tuple[list[Region], float]:
    """The fused regions and the item's confidence: the winner's mean share of the weighted frame vote."""
    corrected = {name: _shifted(regions, stats[name], duration) for name, regions in answers.items()}
    frames = {name: to_frames(r, labels, duration, hop) for name, r in corrected.items()}
    weights = [max(stats[name].weight, 0.0) for name in corrected]
    if not any(weights):
        weights = [1.0] * len(weights)
    trusted = [name for name, w in zip(corrected, weights, strict=True) if w > 0]
    centres = (np.arange(n_frames(duration, hop)) + 0.5) * hop
    for name, start, end in kept_gaps(corrected, trusted):
        frames[name][(centres >= start) & (centres < end)] = ABSTAIN
    winners, share = _vote(list(frames.values()), weights, len(labels))
    skeleton = from_frames(winners, labels, hop, MIN_DURATION)
    fused = []
    for region in skeleton:
        starts: list[tuple[float, float]] = []  # (boundary, weight)
        ends: list[tuple[float, float]] = []
        for name, regions in corrected.items():
            pairs = match_regions(regions, [region], min_iou=0.3)
            if not pairs or stats[name].weight <= 0:
                continue
            own = regions[pairs[0][0]]
            w = 1.0 / stats[name].jitter ** 2
            # A boundary far from the vote's is another region's (a missed switch merges two): it is left out.
            if abs(own.start - region.start) <= GATE:
                starts.append((own.start, w))
            if abs(own.end - region.end) <= GATE:
                ends.append((own.end, w))
        start, end = _weighted_mean(starts, region.start), _weighted_mean(ends, region.end)
        fused.append(Region(round(start, 4), round(end, 4), region.label) if end > start else region)
    for k in range(1, len(fused)):  # neighbours that overlap meet halfway
        a, b = fused[k - 1], fused[k]
        if a.end > b.start:
            mid = round((a.end + b.start) / 2, 4)
            fused[k - 1], fused[k] = Region(a.start, mid, a.label), Region(mid, b.end, b.label)
    return [r for r in fused if r.end > r.start], float(share.mean()) if share.size else 1.0
