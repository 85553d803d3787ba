"""The allocator in the live queue: what the queue knows, turned into the allocator's inputs and back into actions.

``ProjectSettings.allocation = "allocator"`` makes ``labeling_tasks`` (``core/labelstudio/queue.py``) ask
:func:`plan_slots` what to do with its slots instead of running its two rules side by side (new items by the
active-learning order; one more labeler for every item consensus calls unsure, ``plan_overlap_raises``). The
queue then carries the plan out through its existing paths: a new item is queued, one more label is an
``allocator`` review request the overlap raise acts on, an expert review is an ``allocator_expert`` request
the adjudication project picks up.

Every kind of task gives the two numbers the allocator needs: a new item's model score (the kind's
``informativeness``: under the ``uncertainty`` strategy it is the chance that the model's answer is wrong,
so ``1 -`` it is the model's accuracy on the item) and a labeled item's consensus confidence. A kind whose answer
is one class of the project's list (:data:`CLASS_KINDS`) is valued over those classes (a wrong answer is one of
the others); any other kind (label sets, boxes, spans) over "the consensus is right or not" (two outcomes).
What falls back is counted by reason (``fallbacks``), never silent. Pure: no store, no Dagster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from labeling_assets.core.allocation.allocator import (
    DEFAULT_EXPERT_ACCURACY,
    DEFAULT_RANDOM_SHARE,
    Costs,
    Decision,
    LabeledItem,
    NewItem,
    allocate,
    posterior_from_confidence,
)
from labeling_assets.core.tasks.kind import TaskKind

# Kinds whose answer is one class of the list: a labeler's wrong answer is another class.
CLASS_KINDS: Final = frozenset({"single_label", "text_classes"})
DEFAULT_LABELER_ACCURACY: Final = 0.8  # before any gold is answered (the class kinds' gold gate)
LABELER_PRIOR_ANSWERS: Final = 4  # gold answers' worth of that default in the estimate (shrinkage)
# The default value of a label (docs/allocation.md): under this consensus confidence it is worth nothing yet.
DEFAULT_USABLE_CONFIDENCE: Final = 0.0
ALLOCATOR_SOURCE: Final = "allocator"  # review_requests.source of the allocator's one-more-label requests
ALLOCATOR_EXPERT_SOURCE: Final = "allocator_expert"  # ... and of its expert reviews


@dataclass(frozen=True)
class LabeledRow:
    """An item with a task in the project and a live consensus (what the store holds about it)."""

    item_id: str
    label: Any
    confidence: float
    n_annotators: int
    required_annotations: int
    probabilities: Mapping[str, float] | None = None


@dataclass(frozen=True)
class NewRow:
    """A regular item the active-learning order put in this run's queue, with its pre-label (None: none)."""

    item_id: str
    priority: float  # the selected strategy's score (higher = more informative)
    probs: Mapping[str, Any] | None


@dataclass(frozen=True)
class AllocatorSettings:
    """The project's allocator settings (``ProjectSettings.allocation_*``)."""

    random_share: float = DEFAULT_RANDOM_SHARE
    expert_accuracy: float | None = DEFAULT_EXPERT_ACCURACY  # None: no expert reviews
    usable_confidence: float = DEFAULT_USABLE_CONFIDENCE
    wrong_label_cost: float = 0.0
    seed: int = 0


@dataclass
class SlotPlan:
    """What the allocator chose for the run's slots, split by what the queue does with each."""

    decisions: list[Decision]
    new_items: list[str] = field(default_factory=list)
    more_labels: dict[str, str] = field(default_factory=dict)  # item -> reason
    experts: dict[str, str] = field(default_factory=dict)  # item -> reason
    fallbacks: Counter[str] = field(default_factory=Counter)  # reason -> count
    n_classes: int = 2
    labeler_accuracy: float = DEFAULT_LABELER_ACCURACY


def outcome_classes(kind: TaskKind, classes: Sequence[str]) -> int:
    """How many outcomes an answer has for the allocator: the classes for a class kind, else right or wrong."""
    return len(classes) if kind.name in CLASS_KINDS and len(classes) >= 2 else 2


def labeler_accuracy(correct: int, answered: int, n_classes: int) -> float:
    """The crowd's accuracy on gold, shrunk toward :data:`DEFAULT_LABELER_ACCURACY` and kept above chance."""
    estimate = (correct + LABELER_PRIOR_ANSWERS * DEFAULT_LABELER_ACCURACY) / (answered + LABELER_PRIOR_ANSWERS)
    return float(np.clip(estimate, 1.0 / n_classes + 0.02, 0.99))


def _new_item(row: NewRow, kind: TaskKind, classes: Sequence[str], n: int, fallbacks: Counter[str]) -> NewItem:
    if not row.probs:
        fallbacks["new item without a pre-label: flat prior"] += 1
        return NewItem(row.item_id, row.priority, None)
    if kind.name in CLASS_KINDS and n == len(classes):
        p = np.array([float(row.probs.get(c, 0.0)) for c in classes])
        if np.isfinite(p).all() and p.min() >= 0 and p.sum() > 0:
            return NewItem(row.item_id, row.priority, (p / p.sum()).tolist())
        fallbacks["pre-label names none of the classes: flat prior"] += 1
        return NewItem(row.item_id, row.priority, None)
    wrong = float(kind.informativeness(row.probs, "uncertainty"))
    right = float(np.clip(1.0 - wrong, 0.0, 1.0)) if np.isfinite(wrong) else 0.5
    # Two outcomes (the model's answer is right or not): at least a coin flip, or the "right" side is the other one.
    return NewItem(row.item_id, row.priority, posterior_from_confidence(0, max(right, 0.5), 2).tolist())


def _labeled_item(row: LabeledRow, kind: TaskKind, classes: Sequence[str], n: int, max_overlap: int,
                  fallbacks: Counter[str]) -> LabeledItem | None:  # fmt: skip
    if row.n_annotators < row.required_annotations:
        return None  # the answers asked so far are still coming: nothing to decide for it until they have
    more = row.required_annotations < max_overlap
    votes = max(row.n_annotators, 0)
    if kind.name in CLASS_KINDS and n == len(classes):
        if row.probabilities:
            p = np.array([float(row.probabilities.get(c, 0.0)) for c in classes])
            if np.isfinite(p).all() and p.min() >= 0 and p.sum() > 0:
                return LabeledItem(row.item_id, (p / p.sum()).tolist(), votes, more)
        if isinstance(row.label, str) and row.label in classes:
            post = posterior_from_confidence(list(classes).index(row.label), row.confidence, n)
            return LabeledItem(row.item_id, post.tolist(), votes, more)
        fallbacks["consensus label outside the class list: right-or-wrong view"] += 1
    conf = float(np.clip(row.confidence, 0.0, 1.0))
    post = posterior_from_confidence(0, max(conf, 0.5), 2)
    if n == 2:
        return LabeledItem(row.item_id, post.tolist(), votes, more)
    flat = posterior_from_confidence(0, max(conf, 1.0 / n), n)
    return LabeledItem(row.item_id, flat.tolist(), votes, more)


def plan_slots(
    slots: int,
    new_rows: Sequence[NewRow],
    labeled_rows: Sequence[LabeledRow],
    *,
    kind: TaskKind,
    classes: Sequence[str],
    gold_correct: int,
    gold_answered: int,
    costs: Costs,
    max_overlap: int,
    settings: AllocatorSettings,
) -> SlotPlan:
    """The allocator's choice for ``slots`` slots among the queue's new items and its labeled items."""
    n = outcome_classes(kind, classes)
    fallbacks: Counter[str] = Counter()
    if kind.name not in CLASS_KINDS:
        fallbacks[f"{kind.name}: valued as right-or-wrong (two outcomes)"] += 1
    if gold_answered == 0:
        fallbacks[f"no gold answered yet: labeler accuracy {DEFAULT_LABELER_ACCURACY}"] += 1
    accuracy = labeler_accuracy(gold_correct, gold_answered, n)
    new = [_new_item(r, kind, classes, n, fallbacks) for r in new_rows]
    offered = (_labeled_item(r, kind, classes, n, max_overlap, fallbacks) for r in labeled_rows)
    old = [item for item in offered if item is not None]
    decisions = allocate(
        slots, new, old, n_classes=n, labeler_accuracy=accuracy, costs=costs,
        expert_accuracy=settings.expert_accuracy, max_votes=max_overlap, random_share=settings.random_share,
        wrong_label_cost=settings.wrong_label_cost, usable_confidence=settings.usable_confidence, seed=settings.seed,
    )  # fmt: skip
    plan = SlotPlan(decisions, fallbacks=fallbacks, n_classes=n, labeler_accuracy=accuracy)
    for d in decisions:
        if d.action == "new_item":
            plan.new_items.append(d.item_id)
        elif d.action == "more_label":
            plan.more_labels[d.item_id] = d.reason
        else:
            plan.experts[d.item_id] = d.reason
    return plan
