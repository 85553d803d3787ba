"""What the span kind (:mod:`.kind`) reads its answers with: a Label Studio result read without the stored text,
stored answers as spans and votes, gold counts, a labeler's statistics in one window, and the items' texts.

A stored answer is a sorted list of ``[start, end, type]`` (``[]``: "no entity"; :func:`.spans.stored`).
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pandas as pd

from labeling_assets.core.consensus.labeler_stats import ALL_WINDOW, LabelerStats, labels_per_day, time_stats
from labeling_assets.core.consensus.votes import SKIP_UNKNOWN_CLASS, Votes, _newest_per_labeler
from labeling_assets.core.display import md_text
from labeling_assets.core.ingest.text import read_stored_text
from labeling_assets.core.label_sets import SKIP_UNREADABLE
from labeling_assets.core.labelstudio.answers import Answer
from labeling_assets.core.tasks.text_spans.spans import (
    FROM_NAME,
    SKIP_OVERLAP,
    Span,
    from_stored,
    overlapping,
    read_spans,
    stored,
)
from labeling_assets.core.tasks.text_spans.stats import MODES, labeler_span_scores, match_counts
from labeling_assets.core.tasks.text_spans.votes import SpanVote

SKIP_NOT_SPANS = "not_spans"  # a stored value that is not a list of [start, end, type]
SPAN_VOTE_SKIPS = (SKIP_NOT_SPANS, SKIP_UNKNOWN_CLASS, SKIP_UNREADABLE, SKIP_OVERLAP)
_FILLER = "\x1f"  # a character no selection holds: positions no region spells


def read_result(result: Any) -> Answer:
    """The spans a result marks, checked against the text its own regions spell (each region's ``value.text`` at
    its offsets), as :func:`.spans.read_spans` checks them against the stored text: offsets, one type each,
    whitespace trimmed, "no entity" alone; overlapping spans are kept (whether the project allows them is decided
    where answers become votes, :func:`span_votes`). The sync has no stored text to hand; a region whose text
    is not the stored slice is not caught here (every type is taken: an unknown one is skipped as a vote)."""
    if not isinstance(result, list):
        reading = read_spans(result, "", [])
        return Answer(None, reading.problem, reading.detail)
    ours = [r for r in result if isinstance(r, Mapping) and r.get("from_name", FROM_NAME) == FROM_NAME]
    values: list[Mapping[str, Any]] = [r["value"] for r in ours if isinstance(r.get("value"), Mapping)]
    ends = [v["end"] for v in values if isinstance(v.get("end"), int) and not isinstance(v.get("end"), bool)]
    chars = [_FILLER] * max([0, *ends])
    for value in values:
        start, end, said = value.get("start"), value.get("end"), value.get("text")
        if isinstance(start, int) and isinstance(end, int) and isinstance(said, str) and 0 <= start < end == start + len(said):
            chars[start:end] = list(said)
    reading = read_spans(result, "".join(chars), result_types(result), allow_overlap=True)
    if reading.spans is None:
        return Answer(None, reading.problem, reading.detail)
    return Answer(cast(Any, stored(reading.spans)))


def result_types(result: Any) -> list[str]:
    """Every entity type a result's regions name (each read as a type of the project: votes check them)."""
    regions = [r for r in result if isinstance(r, Mapping)] if isinstance(result, list) else []
    values = [r["value"] for r in regions if isinstance(r.get("value"), Mapping)]
    return sorted({x for v in values if isinstance(v.get("labels"), list) for x in v["labels"] if isinstance(x, str)})


def answer_spans(value: Any, types: Sequence[str]) -> tuple[tuple[Span, ...] | None, str | None]:
    """(the spans of a stored answer, None) or (None, why it is no vote of the project)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, SKIP_UNREADABLE
    spans = from_stored(value)
    if spans is None:
        return None, SKIP_NOT_SPANS
    if any(s.label not in set(types) for s in spans):
        return None, SKIP_UNKNOWN_CLASS
    return spans, None


def valid_span_answers(stored_answers: pd.Series, types: Sequence[str]) -> pd.Series:
    """The stored values that are span answers of the project ("no entity" included), as sorted lists."""
    keep = {item: stored(spans) for item, value in stored_answers.items()
            if (spans := answer_spans(value, types)[0]) is not None}  # fmt: skip
    return pd.Series(keep, dtype=object)


def span_votes(
    annotations: pd.DataFrame, types: Sequence[str], *, allow_overlap: bool = False
) -> tuple[Votes, list[SpanVote]]:
    """Each labeler's newest answer per item, kept when it is a span answer of the project, else skipped and
    counted by reason (``overlapping_span``: two of its spans overlap and the project forbids it; the answer stays
    stored); and the kept ones as :class:`.votes.SpanVote`."""
    frame = _newest_per_labeler(annotations)
    skipped: Counter[str] = Counter()
    examples: dict[str, list[Any]] = {}
    keep, found = [], []
    for item, labeler, value in zip(frame["item_id"], frame["labeler_id"], frame["label"], strict=True):
        spans, why = answer_spans(value, types)
        if spans is not None and not allow_overlap and overlapping(spans):
            spans, why = None, SKIP_OVERLAP
        keep.append(spans is not None)
        if spans is None:
            assert why is not None
            skipped[why] += 1
            if len(examples.setdefault(why, [])) < 5:
                examples[why].append(str(value)[:80])
        else:
            found.append(SpanVote(str(item), str(labeler), spans))
    frame = frame[keep] if len(frame) else frame
    frame = frame.assign(label=pd.Series([stored(v.spans) for v in found], index=frame.index, dtype=object)) if len(frame) else frame
    frame = frame.sort_values(["item_id", "labeler_id"], kind="stable").reset_index(drop=True)
    found.sort(key=lambda v: (v.item_id, v.labeler_id))
    return Votes(frame, dict(skipped), examples), found


def gold_counts(labels: pd.DataFrame, truth: pd.Series, types: Sequence[str], only: str | None = None) -> tuple[int, int]:
    """(matched spans, gold spans + false spans) of the answers to gold items (strict: same offsets and type); an
    item both call "no entity" counts as one of one. ``only``: one type's spans."""
    gold = {str(k): answer_spans(v, types)[0] for k, v in truth.items()}
    correct = trials = 0
    for item, value in zip(labels["item_id"].astype(str), labels["label"], strict=True):
        reference, (spans, _) = gold.get(item), answer_spans(value, types)
        if reference is None or spans is None:
            continue
        if only is not None:
            reference, spans = tuple(s for s in reference if s.label == only), tuple(s for s in spans if s.label == only)
            if not reference and not spans:
                continue
        if not reference and not spans:
            correct, trials = correct + 1, trials + 1
            continue
        tp, fp, fn = match_counts(spans, reference)
        correct, trials = correct + tp, trials + tp + fp + fn
    return correct, trials


def span_labeler_window(
    labels: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series | None = None,
    consensus: pd.Series | None = None, window: str = ALL_WINDOW,
) -> LabelerStats:
    """A labeler's statistics in one window: ``gold_accuracy`` is the span gold score (:func:`gold_counts`);
    ``kappa_vs_consensus`` is None (span agreement is an F1, ``stats.labeler_span_scores``); ``class_distribution``
    counts spans per type."""
    truth = valid_span_answers(gold if gold is not None else pd.Series(dtype=object), classes)
    on_gold = labels[labels["item_id"].astype(str).isin(set(truth.index.astype(str)))]
    correct, trials = gold_counts(on_gold, truth, classes) if len(on_gold) else (0, 0)
    current = valid_span_answers(consensus if consensus is not None else pd.Series(dtype=object), classes)
    median, p90 = time_stats(labels["lead_time_s"]) if "lead_time_s" in labels else (None, None)
    counts: Counter[str] = Counter(s.label for v in labels["label"] for s in (answer_spans(v, classes)[0] or ()))
    return LabelerStats(
        labeler_id=labeler_id, window=window, n_labels=len(labels),
        gold_accuracy=correct / trials if trials else None, n_gold=len(on_gold), kappa_vs_consensus=None,
        n_with_consensus=int(labels["item_id"].astype(str).isin(set(current.index.astype(str))).sum()),
        median_time_s=median, p90_time_s=p90,
        labels_per_day=labels_per_day(labels["created_at"]) if "created_at" in labels else None,
        class_distribution={str(c): int(counts.get(str(c), 0)) for c in classes},
        vs_consensus=consensus_scores(labels, current, classes),
    )  # fmt: skip


# Said with the scores: the reference is the crowd's answer this labeler helped make, not an independent truth.
CONSENSUS_BASIS = "the current consensus of every labeler, this labeler's own votes included"


def consensus_scores(labels: pd.DataFrame, consensus: pd.Series, types: Sequence[str]) -> dict[str, Any]:
    """One labeler's spans (``labels``: their answers) against the consensus spans of the items they answered,
    strict and partial (:func:`.stats.labeler_span_scores`): precision and recall with 95% Wilson intervals, F1
    with its bootstrap interval (None: nothing to divide by)."""
    # Votes as loaded (load_votes applied the project's overlap rule): an overlap left in them is allowed.
    _, found = span_votes(labels, types, allow_overlap=True) if len(labels) else (None, [])
    answered = {vote.item_id for vote in found}  # only their items' consensus is read (one call per labeler)
    reference = {str(k): from_stored(v) or () for k, v in consensus.items() if str(k) in answered}
    out: dict[str, Any] = {"consensus_items": 0}
    for mode in MODES:
        scores = list(labeler_span_scores(found, reference, mode).values())
        if not scores:
            continue
        [score] = scores
        out["consensus_items"] = score.n_items
        for name in ("precision", "recall", "f1"):
            value, ci = getattr(score, name), getattr(score, f"{name}_ci")
            out[f"consensus_span_{mode}_{name}"] = None if value is None else round(float(value), 4)
            out[f"consensus_span_{mode}_{name}_ci"] = [round(float(ci[0]), 4), round(float(ci[1]), 4)]
    return {**out, "consensus_basis": CONSENSUS_BASIS}


def presence_manifest(manifest: pd.DataFrame, types: Sequence[str]) -> pd.DataFrame:
    """A span manifest as the multi-label split checks read it: ``label`` the types each item has a span of."""
    present = [sorted({s.label for s in (answer_spans(a, types)[0] or ())}) for a in manifest["label"]]
    return manifest.assign(label=pd.Series(present, index=manifest.index, dtype=object))


def item_texts(eligible: pd.DataFrame, votes: Sequence[SpanVote]) -> dict[str, str]:
    """Each voted item's text: its stored copy where the frame has a ``uri`` column (``run_consensus`` gives it),
    else one punctuation mark per character any span covers (every character a token of its own: consensus then
    decides on characters instead of words)."""
    texts: dict[str, str] = {}
    if "uri" in eligible:
        for item, uri in zip(eligible["item_id"].astype(str), eligible["uri"], strict=True):
            if item not in texts and isinstance(uri, str) and uri:
                with contextlib.suppress(OSError, ValueError):  # unreadable: read as the spans' own extent below
                    texts[item] = read_stored_text(uri)
    for vote in votes:
        if vote.item_id in texts:
            continue
        covered = {i for v in votes if v.item_id == vote.item_id for s in v.spans for i in range(s.start, s.end)}
        texts[vote.item_id] = "".join("." if i in covered else " " for i in range(max(covered, default=-1) + 1))
    return texts


def gold_span_table(labels: pd.DataFrame, truth: pd.Series, types: Sequence[str], names: Mapping[str, str]) -> str:
    """Each labeler of ``names`` against the gold spans, strict (same offsets and type) and partial (same type,
    overlapping): precision and recall with 95% Wilson intervals, F1 with its bootstrap interval
    (:func:`.stats.labeler_span_scores`), over the gold items each answered."""
    gold = {str(k): from_stored(v) or () for k, v in valid_span_answers(truth, types).items()}
    mine = labels[labels["labeler_id"].astype(str).isin(set(names))]
    # Votes as loaded (load_votes applied the project's overlap rule): an overlap left in them is allowed.
    _, found = span_votes(mine, types, allow_overlap=True) if len(mine) else (None, [])
    scores = {mode: labeler_span_scores(found, gold, mode) for mode in MODES}
    lines = ["| labeler | strict precision | strict recall | strict F1 | partial precision | partial recall | "
             "partial F1 | gold items |", "|---|---|---|---|---|---|---|---:|"]  # fmt: skip
    for labeler in sorted(scores["strict"], key=lambda x: names[x]):
        cells = [_rate(getattr(scores[m][labeler], f), getattr(scores[m][labeler], f"{f}_ci"))
                 for m in MODES for f in ("precision", "recall", "f1")]  # fmt: skip
        lines.append(f"| {md_text(names[labeler])} | {' | '.join(cells)} | {scores['strict'][labeler].n_items} |")
    return "\n".join(lines)


def _rate(value: float | None, ci: tuple[float, float]) -> str:
    return "n/a" if value is None else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
