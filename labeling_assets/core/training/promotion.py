"""The champion rule: which registered model pre-labels, decided on the frozen test split.

Every trained model is registered; it becomes the champion only when it is not worse than the current
champion on the SAME test items (the champion is re-scored on the current split, never compared by a number
from another split), within a tolerance. The items are scored on their hidden gold labels when the test
split holds enough gold items (gold is known truth; consensus is the crowd's estimate, which a model that
learnt the crowd's mistakes would be rewarded for matching), else on their consensus labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from labeling_assets.core.training.metrics import macro_f1
from labeling_assets.core.training.types import AnyArray

# Below this many gold test items a gold macro-F1 swings too much between two models to decide by it
# (one item flips about 1/n of the accuracy); then the (larger) consensus-labeled test split is used.
MIN_GOLD_TEST_ITEMS = 30
# A candidate may score this much macro-F1 below the champion and still replace it: retraining on more
# labels is preferred over keeping an older model for a difference within noise.
PROMOTION_TOLERANCE = 0.01

Basis = Literal["gold", "consensus"]
# failed_gates: it would have been promoted, but a release gate (core/training/gates.py) holds it back.
Outcome = Literal["first", "already_champion", "not_comparable", "not_worse", "worse", "failed_gates"]


@dataclass(frozen=True)
class ScoringSet:
    """The test items a promotion is decided on, with the labels they are scored against."""

    basis: Basis
    rows: npt.NDArray[np.int64]  # positions in the test split
    labels: AnyArray  # the answer per row, as the task kind encodes it (a class index; a 0/1 row per set)
    n_gold: int  # gold items in the test split, used or not

    @property
    def n_items(self) -> int:
        return len(self.rows)


def scoring_set(
    consensus_labels: Sequence[int] | AnyArray, gold_labels: Sequence[int | None], min_gold: int
) -> ScoringSet:
    """Gold labels of the gold test items when there are at least ``min_gold``, else every item's consensus.

    Args:
        consensus_labels: the class index of every test item (its versioned consensus label).
        gold_labels: per test item, its gold class index, or None when it is not gold (or its gold label
            is not one class of the model).
        min_gold: the fewest gold items to score on gold.
    """
    consensus = np.asarray(consensus_labels, dtype=np.int64)
    if len(gold_labels) != len(consensus):
        raise ValueError(f"{len(consensus)} consensus labels but {len(gold_labels)} gold entries")
    gold_rows = np.array([i for i, g in enumerate(gold_labels) if g is not None], dtype=np.int64)
    if len(gold_rows) and len(gold_rows) >= min_gold:
        labels = np.array([gold_labels[i] for i in gold_rows], dtype=np.int64)
        return ScoringSet("gold", gold_rows, labels, len(gold_rows))
    return ScoringSet("consensus", np.arange(len(consensus), dtype=np.int64), consensus, len(gold_rows))


def answer_scoring_set(
    item_ids: Sequence[str], gold: Any, encode: Callable[[list[Any]], Any], consensus: Any,
    min_gold: int,
) -> ScoringSet:
    """:func:`scoring_set`'s rule for a kind whose answers are objects (boxes, spans, regions, texts): the gold
    answers (``gold``: item id -> its valid gold answer, a pandas Series or a dict: ``in`` and ``[]``) of the gold test items, encoded by
    ``encode``, when there are at least ``min_gold``, else every item's ``consensus`` (already encoded)."""
    rows = np.array([i for i, item in enumerate(item_ids) if item in gold], dtype=np.int64)
    if len(rows) and len(rows) >= min_gold:
        return ScoringSet("gold", rows, encode([gold[item_ids[i]] for i in rows]), len(rows))
    return ScoringSet("consensus", np.arange(len(consensus), dtype=np.int64), consensus, len(rows))


def top_class_macro_f1(probs: AnyArray, labels: AnyArray) -> float:
    """Macro-F1 of the most probable class against class indices (the single-label score)."""
    predicted = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    return macro_f1(labels, predicted, probs.shape[1])


def score(
    probs: AnyArray,
    scoring: ScoringSet,
    failed: Sequence[int] = (),
    metric: Callable[[AnyArray, AnyArray], float] = top_class_macro_f1,
) -> tuple[float, int]:
    """``metric`` (default: macro-F1 of the most probable class) of ``probs`` (one row per test item) on the
    scoring set, leaving out undecodable rows.

    Returns:
        (score, number of items scored).
    """
    probs = np.asarray(probs)
    keep = ~np.isin(scoring.rows, np.asarray(list(failed), dtype=np.int64))
    return metric(probs[scoring.rows[keep]], scoring.labels[keep]), int(keep.sum())


@dataclass(frozen=True)
class Decision:
    """Whether the candidate becomes the champion, and why."""

    outcome: Outcome
    candidate: str
    candidate_score: float
    champion: str | None  # the champion before the decision
    champion_score: float | None  # the champion re-scored on the same items (None when not compared)
    basis: Basis
    n_items: int
    tolerance: float
    metric: str = "macro-F1"  # what both scores are (the kind's test score)
    gate_failures: tuple[str, ...] = ()  # the release gates it failed, one sentence each

    @property
    def promote(self) -> bool:
        return self.outcome not in ("worse", "failed_gates")

    @property
    def alias(self) -> Literal["champion", "challenger"]:
        return "champion" if self.promote else "challenger"

    def reason(self) -> str:
        """One sentence naming both models, both scores, the scoring basis and the number of items (and the
        release gates it failed)."""
        gates = "; ".join(self.gate_failures)
        if self.outcome == "failed_gates":
            mine = f"{self.candidate} scores {self.candidate_score:.4f} {self.metric} on {self.n_items} {self.basis}-labeled test items"
            if self.champion_score is not None:
                mine += f", the champion {self.champion} {self.champion_score:.4f} on the same items"
            kept = f"{self.champion} stays champion" if self.champion else "there is no champion yet"
            return f"{mine}, but it fails the release gates ({gates}): registered as challenger, never promoted; {kept}"
        said = self._score_reason()
        return f"{said}. It also fails the release gates ({gates})" if gates else said

    def _score_reason(self) -> str:
        scored = f"{self.metric} on {self.n_items} {self.basis}-labeled test items"
        mine = f"{self.candidate} scores {self.candidate_score:.4f} {scored}"
        if self.outcome == "first":
            return f"{mine}; there was no champion: it becomes the first champion"
        if self.outcome == "already_champion":
            return f"{mine}; it is already the champion"
        if self.outcome == "not_comparable":
            return (
                f"{mine}; the champion {self.champion} predicts other classes, so it cannot be compared "
                "and cannot pre-label this project: the candidate becomes the champion"
            )
        theirs = f"the champion {self.champion} scores {self.champion_score:.4f} on the same items"
        if self.outcome == "not_worse":
            return f"{mine}, {theirs}: not worse within the tolerance {self.tolerance}, it becomes the champion"
        return (
            f"{mine}, {theirs}: worse by more than the tolerance {self.tolerance}, so it stays challenger "
            f"and {self.champion} stays champion"
        )


def decide(
    *,
    candidate: str,
    candidate_score: float,
    champion: str | None,
    champion_score: float | None,
    basis: Basis,
    n_items: int,
    tolerance: float = PROMOTION_TOLERANCE,
    comparable: bool = True,
    metric: str = "macro-F1",
    gate_failures: Sequence[str] = (),
) -> Decision:
    """The champion rule: promote unless the champion scores more than ``tolerance`` higher or the candidate
    fails a release gate (``gate_failures``, from core.training.gates: a gated model is never promoted).

    Args:
        candidate, champion: model labels (``name/version``); champion None when there is none yet.
        candidate_score, champion_score: the test score (``metric``: macro-F1, mAP) of both on the same scoring set.
        comparable: False when the champion predicts other classes (it is then replaced).
    """
    outcome: Outcome
    if champion is None:
        outcome = "first"
    elif champion == candidate:
        outcome = "already_champion"
    elif not comparable or champion_score is None:
        outcome = "not_comparable"
    elif candidate_score >= champion_score - tolerance - 1e-9:  # 0.79 vs 0.80 - 0.01 is within
        outcome = "not_worse"
    else:
        outcome = "worse"
    compared = outcome in ("not_worse", "worse", "already_champion")
    if gate_failures and outcome in ("first", "not_comparable", "not_worse"):
        outcome = "failed_gates"
    return Decision(
        outcome=outcome,
        candidate=candidate,
        candidate_score=candidate_score,
        champion=champion,
        champion_score=champion_score if compared else None,
        basis=basis,
        n_items=n_items,
        tolerance=tolerance,
        metric=metric,
        gate_failures=tuple(gate_failures),
    )
