"""A consensus bake-off: every method scored on gold items by cross-fitting, the best one used.

Gold items are split into folds. For each fold, every method runs with the gold of the *other* folds
(clamped, for the methods that use gold) and is scored on this fold's gold items, so a gold item's own
answer never informs the labels it is scored on. Each method's accuracy is over all gold items, with a
Wilson 95 % interval. The winner has the highest accuracy; a tie goes to the method listed first
(``dawid_skene``, the rule ``auto`` uses without gold, before the alternatives).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.encoding import Codes

# Candidates, in tie-break order: the no-gold default first.
BAKEOFF_METHODS = ("dawid_skene", "dawid_skene_pooled", "majority")
# Below this many annotated gold items a bake-off's accuracies are too noisy to choose by (a 95 %
# interval of about ±15 points at 30 items); auto then keeps its no-gold rule.
MIN_GOLD_FOR_BAKEOFF = 30
FOLDS = 5

# fit(method, gold item codes, gold class codes) -> predicted class code per item
Fit = Callable[[str, Codes, Codes], Codes]


def fold_of(n_gold: int, folds: int = FOLDS, seed: int = 0) -> Codes:
    """Fold number per gold item: a seeded permutation, so the same gold gives the same folds."""
    order = np.random.default_rng(seed).permutation(n_gold)
    fold: Codes = np.empty(n_gold, dtype=np.int64)
    fold[order] = np.arange(n_gold) % folds
    return fold


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def cross_fit(
    fit: Fit,
    gold_items: Codes,
    gold_classes: Codes,
    methods: Sequence[str] = BAKEOFF_METHODS,
    folds: int = FOLDS,
) -> pd.DataFrame:
    """Scoreboard: ``method, n_gold, correct, accuracy, ci_low, ci_high, chosen`` (one row per method)."""
    fold = fold_of(len(gold_items), min(folds, max(len(gold_items), 1)))
    rows = []
    for method in methods:
        correct = 0
        for f in np.unique(fold):
            held = fold == f
            predicted = fit(method, gold_items[~held], gold_classes[~held])
            correct += int((predicted[gold_items[held]] == gold_classes[held]).sum())
        low, high = wilson_interval(correct, len(gold_items))
        rows.append(
            {
                "method": method,
                "n_gold": len(gold_items),
                "correct": correct,
                "accuracy": correct / max(len(gold_items), 1),
                "ci_low": low,
                "ci_high": high,
            }
        )
    board = pd.DataFrame(rows)
    # idxmax returns the first maximum: ties go to the method listed first.
    board["chosen"] = board.index == board["accuracy"].idxmax()
    return board


def winner(board: pd.DataFrame) -> str:
    return str(board.loc[board["chosen"], "method"].iloc[0])
