"""Per-labeler statistics of text edits: word error rate against gold and against the consensus (pooled, with a
95% bootstrap interval over items, ``core.speech.text_metrics.labeler_wer``), and unchanged answers.

An *unchanged* answer is the machine output submitted as is. It is counted apart from the edits: a labeler who
never edits has a WER against the consensus no worse than the machine's, which can look fine; their unchanged
share beside the share of items whose consensus is the machine output shows it, and the leaderboard flags it
(``class_usage``: unchanged answers ``overuses``, as a class used twice as often as the consensus suggests). The machine output is read from
each item's stored document (a ``uri`` column of the votes: ``load_quality_inputs`` adds it for this kind).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from labeling_assets.core.consensus.labeler_stats import (
    ALL_WINDOW,
    ClassUsage,
    LabelerStats,
    labels_per_day,
    time_stats,
)
from labeling_assets.core.display import md_text
from labeling_assets.core.speech.text_metrics import LabelerWer, labeler_wer
from labeling_assets.core.tasks.text_edits.answers import normal, skip_reason, valid_texts, word_counts, words
from labeling_assets.core.tasks.text_edits.items import machine_texts

CONSENSUS_BASIS = "the current consensus of every labeler, this labeler's own answers included"


UNCHANGED = "unchanged machine output"  # the "class" the leaderboard flags: answers left as the machine gave them


def unchanged_counts(labels: pd.DataFrame, consensus: pd.Series | None = None) -> tuple[int, int, int]:
    """(answers equal to the machine output, answers on items whose machine output is known, of those the items
    whose consensus is the machine output: how many unchanged answers a labeler who is right would give)."""
    if "uri" not in labels or labels.empty:
        return 0, 0, 0
    machine = machine_texts(zip(labels["item_id"].astype(str), labels["uri"], strict=True))
    agreed = consensus if consensus is not None else pd.Series(dtype=object)
    same = n = right = 0
    for item, value in zip(labels["item_id"].astype(str), labels["label"], strict=True):
        if item in machine and skip_reason(value) is None:
            n += 1
            same += normal(str(value)) == normal(machine[item])
            right += item in agreed.index and normal(str(agreed[item])) == normal(machine[item])
    return same, n, right


def unchanged_usage(same: int, right: int, min_count: float = 5.0, high_ratio: float = 2.0) -> ClassUsage:
    """Unchanged answers against the items where the consensus kept the machine output, flagged ``overuses`` as
    ``class_usage`` flags a class (at least ``min_count`` given, over ``high_ratio`` times the expectation): the
    leaderboard's flag for a labeler who does not edit."""
    ratio = same / right if right else (float("inf") if same else 1.0)
    return ClassUsage(UNCHANGED, same, float(right), ratio, "overuses" if same >= min_count and ratio > high_ratio else "")


def wer_against(labels: pd.DataFrame, reference: pd.Series, seed: int = 0) -> dict[str, LabelerWer]:
    """Each labeler's pooled WER against ``reference`` (item -> text) on the items it answered that have one."""
    ref = valid_texts(reference)
    items = sorted(set(labels["item_id"].astype(str)) & set(ref.index.astype(str)))
    index = {item: k for k, item in enumerate(items)}
    answers: list[dict[str, list[str]]] = [{} for _ in items]
    for item, labeler, value in zip(labels["item_id"].astype(str), labels["labeler_id"].astype(str),
                                    labels["label"], strict=True):  # fmt: skip
        if item in index and skip_reason(value) is None:
            answers[index[item]][labeler] = words(str(value))
    refs = {k: words(str(ref[item])) for item, k in index.items()}
    return labeler_wer(answers, refs, seed=seed)


def _wer_fields(prefix: str, found: LabelerWer | None) -> dict[str, Any]:
    if found is None:
        return {f"{prefix}_items": 0}
    return {f"{prefix}_items": found.items, f"{prefix}_wer": round(found.wer, 4),
            f"{prefix}_wer_ci": [round(found.low, 4), round(found.high, 4)]}  # fmt: skip


def edit_labeler_window(
    labels: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series | None = None,
    consensus: pd.Series | None = None, window: str = ALL_WINDOW,
) -> LabelerStats:
    """A labeler's statistics in one window: ``gold_accuracy`` is 1 - WER against gold (pooled over reference
    words, each item floored at 0: what the gold gate judges); ``kappa_vs_consensus`` None (WER is in
    ``vs_consensus``, with the unchanged answers); ``class_distribution`` counts answers edited and unchanged."""
    truth = valid_texts(gold if gold is not None else pd.Series(dtype=object))
    current = valid_texts(consensus if consensus is not None else pd.Series(dtype=object))
    on_gold = labels[labels["item_id"].astype(str).isin(set(truth.index.astype(str)))]
    right, total = word_counts(on_gold, dict(truth.items())) if len(on_gold) else (0, 0)
    median, p90 = time_stats(labels["lead_time_s"]) if "lead_time_s" in labels else (None, None)
    same, known, kept = unchanged_counts(labels, current)
    vs: dict[str, Any] = {**_wer_fields("consensus", wer_against(labels, current).get(labeler_id)),
                          **_wer_fields("gold", wer_against(labels, truth).get(labeler_id)),
                          "unchanged_answers": same, "answers_with_known_machine_output": known,
                          "unchanged_rate": round(same / known, 4) if known else None,
                          "consensus_basis": CONSENSUS_BASIS}  # fmt: skip
    return LabelerStats(
        labeler_id=labeler_id, window=window, n_labels=len(labels),
        gold_accuracy=right / total if total else None, n_gold=len(on_gold), kappa_vs_consensus=None,
        n_with_consensus=int(labels["item_id"].astype(str).isin(set(current.index.astype(str))).sum()),
        median_time_s=median, p90_time_s=p90,
        labels_per_day=labels_per_day(labels["created_at"]) if "created_at" in labels else None,
        class_distribution={"edited": known - same, "unchanged": same, "machine_output_unknown": len(labels) - known},
        class_usage=[unchanged_usage(same, kept)] if known else [], vs_consensus=vs,
    )  # fmt: skip


def wer_table(found: Mapping[str, LabelerWer], names: Mapping[str, str], unchanged: Mapping[str, tuple[int, int]],
              what: str) -> str:  # fmt: skip
    """Markdown: each labeler's WER against ``what`` with its interval, and its unchanged answers."""
    lines = [f"| labeler | WER vs {what} | 95% interval | items | unchanged answers |", "|---|---:|---|---:|---:|"]
    for labeler in sorted(found, key=lambda x: names.get(x, x)):
        w = found[labeler]
        same, n = unchanged.get(labeler, (0, 0))
        shown = f"{same}/{n}" if n else "n/a"
        lines.append(f"| {md_text(names.get(labeler, labeler))} | {w.wer:.4f} | [{w.low:.4f}, {w.high:.4f}] | "
                     f"{w.items} | {shown} |")  # fmt: skip
    return "\n".join(lines)
