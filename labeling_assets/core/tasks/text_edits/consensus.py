"""Consensus of corrected texts: ``labeler_aware_rover`` (ours, ``auto``) and plain ``rover`` (the baseline), over
``core.speech.text_consensus``; per item a confidence and the agreement of its answers (mean pairwise 1 - WER).

Gold items: their answer is the gold text (confidence 1) whatever the method; ours also learns each labeler's
error rate on them. An item whose machine output is not known (its stored document unreadable) is voted on
with no answer counted unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from labeling_assets.core.speech.text_consensus import TextConsensus, labeler_aware_rover, rover, word_errors
from labeling_assets.core.tasks.text_edits.answers import words

METHODS = ("auto", "labeler_aware_rover", "rover")


@dataclass(frozen=True)
class EditConsensusResult:
    """What the kind's consensus hands back: ``labels`` as the class kinds have it (``item_id, label,
    confidence, agreement, n_annotators``; ``label`` the consensus text), the labelers' estimates (ours only) and
    each labeler's unchanged answers (answers equal to the machine output; counted whatever the method)."""

    labels: pd.DataFrame
    method: str
    unchanged: dict[str, tuple[int, int]]  # labeler -> (unchanged answers, answers on items with a known machine)
    machine_right: float | None  # share of items whose consensus is the machine output
    run: TextConsensus | None = None
    notes: list[str] = field(default_factory=list)
    scoreboard: None = None  # no bake-off


def pairwise_agreement(answers: Mapping[str, list[str]]) -> float:
    """Mean over pairs of labelers of 1 - WER of one against the other (symmetrised, at least 0); 1 alone."""
    names = sorted(answers)
    scores = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            x, y = answers[a], answers[b]
            errors = word_errors(x, y)
            scores.append(max(1.0 - errors / max(len(x), len(y), 1), 0.0))
    return float(np.mean(scores)) if scores else 1.0


def aggregate_edits(
    votes: pd.DataFrame, machine: Mapping[str, str], method: str = "auto", gold: Mapping[str, str] | None = None
) -> EditConsensusResult:
    """Each voted item's consensus text by ``method`` (``votes``: ``item_id, labeler_id, label`` text answers;
    ``machine``: item -> machine output where known)."""
    if method not in METHODS:
        raise ValueError(f"unknown text edit consensus method {method!r}; choose one of {', '.join(METHODS)}")
    gold = gold or {}
    by_item: dict[str, dict[str, list[str]]] = {}
    for item, labeler, text in zip(votes["item_id"], votes["labeler_id"], votes["label"], strict=True):
        by_item.setdefault(str(item), {})[str(labeler)] = words(str(text))
    items = sorted(by_item)
    outs = [words(machine[i]) if i in machine else None for i in items]
    unchanged: dict[str, tuple[int, int]] = {}
    for item, out in zip(items, outs, strict=True):
        if out is None:
            continue
        for name, answer in by_item[item].items():
            same, n = unchanged.get(name, (0, 0))
            unchanged[name] = (same + (answer == out), n + 1)
    run = None
    if method in ("auto", "labeler_aware_rover"):
        # An unknown machine output: a token no answer holds, so nothing counts unchanged there.
        sentinel = [["\x00unknown machine output"] if out is None else out for out in outs]
        gold_words = {k: words(gold[i]) for k, i in enumerate(items) if i in gold}
        run = labeler_aware_rover([by_item[i] for i in items], sentinel, gold_words)
        texts, confidence = run.texts, run.confidence
        used = "labeler_aware_rover"
    else:
        found = [rover(by_item[i]) for i in items]
        texts, confidence = [f[0] for f in found], [f[1] for f in found]
        used = "rover"
    rows, decided = [], []
    for k, item in enumerate(items):
        text, conf = (words(gold[item]), 1.0) if item in gold else (list(texts[k]), confidence[k])
        decided.append(text)
        rows.append((item, " ".join(text), float(conf), pairwise_agreement(by_item[item]), len(by_item[item])))
    labels = pd.DataFrame(rows, columns=["item_id", "label", "confidence", "agreement", "n_annotators"])
    known = [text == out for text, out in zip(decided, outs, strict=True) if out is not None]
    right = float(np.mean(known)) if known else None
    notes = [f"{used} over {len(votes)} text answers on {len(items)} items"]
    return EditConsensusResult(labels, used, unchanged, right, run, notes)
