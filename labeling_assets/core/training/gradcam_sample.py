"""Which test items the evaluation explains with Grad-CAM, and for which class: a small, deterministic sample.

Both class kinds come in as (N, K) arrays: the labels (one-hot for single-label, the set for multi-label), the
probabilities and the model's decisions (the top class; multi-label: P >= the class's threshold). The sample is
the most confident errors first (the class explained is the model's most confident false positive, its
predicted class for single-label; else the class it missed most confidently), then the label-issue items, then the most confident correct items of each class
in turn. Ties go to the lower index, so a rerun picks the same items. No torch: it is plain numpy.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from labeling_assets.core.training.types import AnyArray

MAX_ITEMS = 16  # each costs a forward and a backward pass on the CPU at evaluation
ERROR = "error"
LABEL_ISSUE = "label issue"
CORRECT = "correct"


@dataclass(frozen=True)
class Pick:
    index: int  # row of the test arrays
    class_index: int  # the class whose map is drawn
    why: str  # ERROR, LABEL_ISSUE or CORRECT
    confidence: float  # the model's probability of that class


def one_hot(indices: AnyArray, num_classes: int) -> AnyArray:
    """(N, K) booleans from class indices (N,)."""
    out = np.zeros((len(indices), num_classes), dtype=bool)
    out[np.arange(len(indices)), np.asarray(indices, dtype=np.int64)] = True
    return out


def pick_items(
    truth: AnyArray,
    probs: AnyArray,
    decided: AnyArray,
    *,
    label_issues: Collection[int] = (),
    skip: Collection[int] = (),
    max_items: int = MAX_ITEMS,
    correct_per_class: int = 2,
) -> list[Pick]:
    """Up to ``max_items`` picks: errors (at most half), label issues (at most a quarter), then correct items, one
    per class per round, at most ``correct_per_class`` each; ``skip``: rows not to use (undecodable files)."""
    truth, decided = np.asarray(truth, dtype=bool), np.asarray(decided, dtype=bool)
    probs = np.nan_to_num(np.asarray(probs, dtype=np.float64))
    usable = np.ones(len(truth), dtype=bool)
    usable[list(skip)] = False
    wrong = (truth != decided) & usable[:, None]
    # How confidently wrong each decision is: P for a false positive, 1 - P for a missed class (ranks the errors).
    error_margin = np.where(wrong, np.where(decided, probs, 1 - probs), -1.0)
    # The class explained: the most confident false positive (single-label: the predicted class; Grad-CAM shows the
    # evidence FOR a class, so a class the model did not see has little to show), else the most confidently missed.
    explained = np.where(wrong & decided, 2 + probs, error_margin).argmax(axis=1) if len(truth) else np.zeros(0)
    picks: list[Pick] = []
    taken: set[int] = set()

    def take(index: int, class_index: int, why: str) -> None:
        picks.append(Pick(index, class_index, why, round(float(probs[index, class_index]), 4)))
        taken.add(index)

    worst = error_margin.max(axis=1) if len(truth) else np.zeros(0)
    errors = [i for i in np.lexsort((np.arange(len(truth)), -worst)) if worst[i] >= 0]
    for i in errors[: max_items // 2]:
        take(int(i), int(explained[i]), ERROR)
    for i in sorted(set(label_issues) - taken)[: max_items // 4]:
        if 0 <= i < len(truth) and usable[i]:
            # The class the model is most sure of: what it sees in an item the crowd may have mislabeled.
            take(int(i), int(probs[i].argmax()), LABEL_ISSUE)
    right = usable & ~(truth != decided).any(axis=1) if len(truth) else np.zeros(0, dtype=bool)
    queues = []
    for k in range(truth.shape[1] if truth.ndim == 2 else 0):
        rows = np.flatnonzero(right & truth[:, k])
        queues.append([int(i) for i in rows[np.lexsort((rows, -probs[rows, k]))]])
    for _ in range(correct_per_class):  # round-robin: every class gets one before any gets two
        for k, queue in enumerate(queues):
            fresh = next((i for i in queue if i not in taken), None)
            if fresh is not None and len(picks) < max_items:
                take(fresh, k, CORRECT)
    return picks[:max_items]


def caption(pick: Pick, classes: list[str], truth_row: AnyArray) -> str:
    """Two lines under a tile: why it is there and the class explained, then the label it has."""
    labels = ", ".join(c for c, on in zip(classes, np.asarray(truth_row, dtype=bool), strict=True) if on) or "none"
    return f"{pick.why}: {classes[pick.class_index]} p={pick.confidence:.2f}\nlabel: {labels}"
