"""Per-labeler span precision, recall and F1 against a reference (gold, or the consensus), with intervals.

Two ways to match a labeler's span to a reference span: ``strict``, the same offsets and type; ``partial``, the
same type and at least one shared character (each reference span matched at most once, largest overlap first).
Precision and recall are binomial rates (their intervals are Wilson's, ``consensus.gates.wilson_interval``); F1
is not one, so its interval is a percentile bootstrap over the labeler's items (seeded: the same answers give
the same interval).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from labeling_assets.core.consensus.gates import wilson_interval
from labeling_assets.core.tasks.text_spans.spans import Span
from labeling_assets.core.tasks.text_spans.votes import SpanVote

Mode = Literal["strict", "partial"]
MODES: tuple[Mode, ...] = ("strict", "partial")
BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class SpanScore:
    """One labeler's spans against the reference on the items both have (None: nothing to divide by)."""

    n_items: int
    tp: int
    fp: int  # the labeler's spans that match none
    fn: int  # reference spans the labeler did not match
    precision: float | None
    recall: float | None
    f1: float | None
    precision_ci: tuple[float, float]
    recall_ci: tuple[float, float]
    f1_ci: tuple[float, float]


def match_counts(spans: Sequence[Span], reference: Sequence[Span], mode: Mode = "strict") -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of ``spans`` against ``reference``."""
    if mode == "strict":
        tp = len(set(spans) & set(reference))
        return tp, len(set(spans)) - tp, len(set(reference)) - tp
    pairs = sorted(
        ((min(s.end, r.end) - max(s.start, r.start), i, j)
         for i, s in enumerate(spans) for j, r in enumerate(reference) if s.label == r.label and s.overlaps(r)),
        key=lambda x: (-x[0], x[1], x[2]),
    )  # fmt: skip
    used_s: set[int] = set()
    used_r: set[int] = set()
    for _, i, j in pairs:
        if i not in used_s and j not in used_r:
            used_s.add(i)
            used_r.add(j)
    tp = len(used_s)
    return tp, len(spans) - tp, len(reference) - tp


def _f1(tp: float, fp: float, fn: float) -> float | None:
    return None if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def span_score(counts: Sequence[tuple[int, int, int]]) -> SpanScore:
    """The score of per-item (tp, fp, fn) counts."""
    table = np.asarray(counts, dtype=np.int64).reshape(-1, 3)
    tp, fp, fn = (int(v) for v in table.sum(axis=0))
    f1 = _f1(tp, fp, fn)
    f1_ci = (0.0, 1.0)
    if f1 is not None:
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        weights = rng.multinomial(len(table), np.full(len(table), 1 / len(table)), size=BOOTSTRAP_ROUNDS)
        tps, fps, fns = (weights @ table).T
        denominator = 2 * tps + fps + fns
        samples = np.where(denominator > 0, 2 * tps / np.maximum(denominator, 1), np.nan)
        low, high = np.nanpercentile(samples, [2.5, 97.5])
        f1_ci = (float(low), float(high))
    return SpanScore(
        len(table), tp, fp, fn,
        tp / (tp + fp) if tp + fp else None, tp / (tp + fn) if tp + fn else None, f1,
        wilson_interval(tp, tp + fp), wilson_interval(tp, tp + fn), f1_ci,
    )  # fmt: skip


def labeler_span_scores(
    votes: Sequence[SpanVote], reference: Mapping[str, Sequence[Span]], mode: Mode = "strict"
) -> dict[str, SpanScore]:
    """Each labeler's score against ``reference`` (gold, or consensus labels) on the items the reference has; a
    labeler's later vote on an item replaces the earlier one. Labelers with no such item are left out."""
    latest: dict[tuple[str, str], tuple[Span, ...]] = {}
    for vote in votes:
        if vote.item_id in reference:
            latest[(vote.labeler_id, vote.item_id)] = vote.spans
    per: dict[str, list[tuple[int, int, int]]] = {}
    for (labeler, item), spans in sorted(latest.items()):
        per.setdefault(labeler, []).append(match_counts(spans, reference[item], mode))
    return {labeler: span_score(counts) for labeler, counts in per.items()}


@dataclass(frozen=True)
class SpanAgreement:
    """Inter-annotator agreement on spans: pairwise F1 (each pair of labelers who answered the same item, one
    taken as the reference of the other; F1 is symmetric), micro-averaged over pairs, with the bootstrap interval
    over items. The usual agreement measure for entity spans, where chance agreement (kappa) is ill-defined."""

    f1: float | None
    f1_ci: tuple[float, float]
    n_items: int  # items with at least two labelers
    n_pairs: int


def span_agreement(votes: Sequence[SpanVote], mode: Mode = "strict") -> SpanAgreement:
    """Pairwise span F1 over the items two or more labelers answered (a labeler's later vote replaces its
    earlier one)."""
    by_item: dict[str, dict[str, tuple[Span, ...]]] = {}
    for vote in votes:
        by_item.setdefault(vote.item_id, {})[vote.labeler_id] = vote.spans
    counts: list[tuple[int, int, int]] = []
    n_pairs = 0
    for answers in by_item.values():
        if len(answers) < 2:
            continue
        ordered = [answers[name] for name in sorted(answers)]
        total = np.zeros(3, np.int64)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                total += match_counts(a, b, mode)
                n_pairs += 1
        counts.append((int(total[0]), int(total[1]), int(total[2])))
    if not counts:
        return SpanAgreement(None, (0.0, 1.0), 0, 0)
    score = span_score(counts)
    return SpanAgreement(score.f1, score.f1_ci, len(counts), n_pairs)
