"""Per-labeler statistics of audio segments against a reference (gold regions, or the consensus).

A labeler's region *matches* a reference region when the labels agree and their IoU on the time axis is at least
0.5 (``core.speech.regions.match_regions``, one to one). From the matched pairs: the start and end offsets (median
signed error in seconds, labeler minus reference: a labeler who marks late or wide) and the jitter (the sd of the
errors left after the offsets); the miss rate is the reference regions left unmatched, the false-region rate the
labeler's own regions left unmatched, each with its 95% Wilson interval.

The gold score the gate judges is matched / (gold regions + false regions), as for spans and boxes: one region
off by more than half its length costs a missed and a false one; an item both call "no region" scores one of one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.gates import wilson_interval
from labeling_assets.core.consensus.labeler_stats import ALL_WINDOW, LabelerStats, labels_per_day, time_stats
from labeling_assets.core.display import md_text
from labeling_assets.core.speech.regions import Region, match_regions
from labeling_assets.core.tasks.audio_segments.answers import answer_regions, from_stored
from labeling_assets.core.tasks.audio_segments.votes import SegmentVote, audio_votes


@dataclass(frozen=True)
class RegionScore:
    """One labeler's regions against the reference on the items both have (None: nothing to measure)."""

    n_items: int
    n_regions: int  # the labeler's
    n_reference: int
    matched: int
    start_offset: float | None  # seconds
    end_offset: float | None
    jitter: float | None
    miss_rate: float | None
    miss_ci: tuple[float, float]
    false_rate: float | None
    false_ci: tuple[float, float]
    gold_score: float | None  # matched / (reference + false), "no region" both ways 1 of 1
    gold_ci: tuple[float, float]

    def plain(self, prefix: str = "") -> dict[str, Any]:
        """The figures as rounded plain values (metadata), intervals as [low, high]."""
        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 4)

        out: dict[str, Any] = {f"{prefix}items": self.n_items, f"{prefix}regions": self.n_regions,
                               f"{prefix}reference_regions": self.n_reference, f"{prefix}matched": self.matched}  # fmt: skip
        for name in ("start_offset", "end_offset", "jitter", "miss_rate", "false_rate", "gold_score"):
            out[f"{prefix}{name}"] = r(getattr(self, name))
        for name, ci in (("miss_rate", self.miss_ci), ("false_rate", self.false_ci), ("gold_score", self.gold_ci)):
            out[f"{prefix}{name}_ci"] = [round(ci[0], 4), round(ci[1], 4)]
        return out


def match_counts(regions: Sequence[Region], reference: Sequence[Region], only: str | None = None) -> tuple[int, int]:
    """(matched regions, reference + false regions) of one answer against its reference (``only``: one label's
    regions); "no region" on both sides counts one of one, and zero of zero with ``only``."""
    if only is not None:
        regions, reference = [r for r in regions if r.label == only], [r for r in reference if r.label == only]
        if not regions and not reference:
            return 0, 0
    if not regions and not reference:
        return 1, 1
    matched = len(match_regions(regions, reference))
    return matched, len(reference) + len(regions) - matched


def region_score(votes: Sequence[SegmentVote], reference: Mapping[str, Sequence[Region]]) -> RegionScore:
    """Pooled over one labeler's ``votes`` on the items ``reference`` has."""
    starts: list[float] = []
    ends: list[float] = []
    n_items = n_regions = n_ref = matched = correct = trials = 0
    for vote in votes:
        if vote.item_id not in reference:
            continue
        ref = list(reference[vote.item_id])
        mine = list(vote.regions)
        pairs = match_regions(mine, ref)
        starts += [mine[i].start - ref[j].start for i, j in pairs]
        ends += [mine[i].end - ref[j].end for i, j in pairs]
        n_items, n_regions, n_ref, matched = n_items + 1, n_regions + len(mine), n_ref + len(ref), matched + len(pairs)
        c, t = match_counts(mine, ref)
        correct, trials = correct + c, trials + t
    s, e = np.asarray(starts), np.asarray(ends)
    start_offset = float(np.median(s)) if s.size else None
    end_offset = float(np.median(e)) if e.size else None
    jitter = float(np.sqrt(np.mean(np.concatenate([s - start_offset, e - end_offset]) ** 2))) if s.size else None
    missed_ci = wilson_interval(n_ref - matched, n_ref)
    false_ci = wilson_interval(n_regions - matched, n_regions)
    return RegionScore(
        n_items, n_regions, n_ref, matched, start_offset, end_offset, jitter,
        (n_ref - matched) / n_ref if n_ref else None, missed_ci,
        (n_regions - matched) / n_regions if n_regions else None, false_ci,
        correct / trials if trials else None, wilson_interval(correct, trials),
    )  # fmt: skip


def gold_counts(labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str], only: str | None = None) -> tuple[int, int]:
    """(matched regions, gold + false regions) of the answers (``item_id, label``) to the gold items of ``truth``."""
    gold = {str(k): answer_regions(v, classes)[0] for k, v in truth.items()}
    correct = trials = 0
    for item, value in zip(labels["item_id"].astype(str), labels["label"], strict=True):
        reference, (mine, _) = gold.get(item), answer_regions(value, classes)
        if reference is None or mine is None:
            continue
        c, t = match_counts(mine, reference, only)
        correct, trials = correct + c, trials + t
    return correct, trials


def labeler_scores(labels: pd.DataFrame, reference: pd.Series, classes: Sequence[str]) -> dict[str, RegionScore]:
    """Each labeler's :class:`RegionScore` against ``reference`` (item -> stored answer), labelers without an item
    of it left out."""
    ref = {str(k): from_stored(v) or [] for k, v in reference.items()}
    _, found = audio_votes(labels, classes) if len(labels) else (None, [])
    per: dict[str, list[SegmentVote]] = {}
    for vote in found:
        if vote.item_id in ref:
            per.setdefault(vote.labeler_id, []).append(vote)
    return {labeler: region_score(mine, ref) for labeler, mine in sorted(per.items())}


def _cell(value: float | None, ci: tuple[float, float] | None = None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:+.3f}{unit}" if unit else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def gold_table(labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str], names: Mapping[str, str]) -> str:
    """Each labeler of ``names`` against the gold regions: offsets, jitter, miss and false-region rates and gold
    score (95% Wilson intervals), over the gold items each answered."""
    scores = labeler_scores(labels[labels["labeler_id"].astype(str).isin(set(names))], truth, classes)
    lines = ["| labeler | start offset | end offset | jitter | miss rate | false-region rate | gold score | gold items |",
             "|---|---|---|---|---|---|---|---:|"]  # fmt: skip
    for labeler in sorted(scores, key=lambda x: names[x]):
        s = scores[labeler]
        cells = [_cell(s.start_offset, unit=" s"), _cell(s.end_offset, unit=" s"),
                 "n/a" if s.jitter is None else f"{s.jitter:.3f} s", _cell(s.miss_rate, s.miss_ci),
                 _cell(s.false_rate, s.false_ci), _cell(s.gold_score, s.gold_ci)]  # fmt: skip
        lines.append(f"| {md_text(names[labeler])} | {' | '.join(cells)} | {s.n_items} |")
    return "\n".join(lines)


# Said with the scores: the reference is the crowd's answer this labeler helped make, not an independent truth.
CONSENSUS_BASIS = "the current consensus of every labeler, this labeler's own votes included"


def segment_labeler_window(
    labels: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series | None = None,
    consensus: pd.Series | None = None, window: str = ALL_WINDOW,
) -> LabelerStats:
    """A labeler's statistics in one window: ``gold_accuracy`` is the gold score (:func:`gold_counts`);
    ``kappa_vs_consensus`` is None; ``class_distribution`` counts regions per label; ``vs_consensus`` holds
    the region figures against the consensus and against gold (:class:`RegionScore`)."""
    truth = gold if gold is not None else pd.Series(dtype=object)
    current = consensus if consensus is not None else pd.Series(dtype=object)
    on_gold = labels[labels["item_id"].astype(str).isin({str(k) for k in truth.index})]
    correct, trials = gold_counts(on_gold, truth, classes) if len(on_gold) else (0, 0)
    median, p90 = time_stats(labels["lead_time_s"]) if "lead_time_s" in labels else (None, None)
    counts: dict[str, int] = {str(c): 0 for c in classes}
    for value in labels["label"]:
        for region in answer_regions(value, classes)[0] or ():
            counts[region.label] += 1
    answered = set(labels["item_id"].astype(str))
    vs: dict[str, Any] = {}
    for prefix, reference in (("consensus_", current), ("gold_", truth)):
        mine = reference[[str(k) in answered for k in reference.index]] if len(reference) else reference
        score = labeler_scores(labels, mine, classes).get(str(labeler_id)) if len(mine) else None
        if score is not None:
            vs.update(score.plain(prefix))
    return LabelerStats(
        labeler_id=labeler_id, window=window, n_labels=len(labels),
        gold_accuracy=correct / trials if trials else None, n_gold=len(on_gold), kappa_vs_consensus=None,
        n_with_consensus=int(labels["item_id"].astype(str).isin({str(k) for k in current.index}).sum()),
        median_time_s=median, p90_time_s=p90,
        labels_per_day=labels_per_day(labels["created_at"]) if "created_at" in labels else None,
        class_distribution=counts, vs_consensus={**vs, "consensus_basis": CONSENSUS_BASIS} if vs else {},
    )  # fmt: skip
