"""A consensus bake-off: every method scored on gold items by cross-fitting, the best one used.

Gold items are split into folds. For each fold, every method runs with the gold of the *other* folds
(clamped, for the methods that use gold) and is scored on this fold's gold items, so a gold item's own
answer never informs the labels it is scored on. Each method's accuracy is over all gold items, with a
Wilson 95 % interval.

The winner is the *default* (the method ``auto`` would use without gold) unless another method beats it
on the same gold items by more than chance: an exact one-sided McNemar test on the items where exactly
one of the two is right, at ``ALPHA``. With ~30-60 gold items, accuracies a few points apart are noise
(a bake-off picking the best point estimate chose four different methods over 20 random draws of 33
gold items on a real crowd); the test makes a challenger earn the switch. Among challengers that pass,
the most accurate wins; ties go to the method listed first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import comb

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labeling_assets.core.consensus.encoding import Codes
from labeling_assets.core.consensus.gates import wilson_interval

# Candidates, in tie-break order.
BAKEOFF_METHODS = ("dawid_skene", "dawid_skene_pooled", "majority")
# One-sided level of the McNemar test a challenger must pass to replace the default (the upper tail of a
# two-sided 5 % test).
ALPHA = 0.025
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


def mcnemar_p(wins: int, losses: int) -> float:
    """One-sided exact McNemar p-value that a challenger right on ``wins`` items where the default is
    wrong, and wrong on ``losses`` where it is right, is better: P(X >= wins), X ~ Binomial(n, 1/2)."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(comb(n, x) for x in range(wins, n + 1)) / 2.0**n


def cross_fit(
    fit: Fit,
    gold_items: Codes,
    gold_classes: Codes,
    methods: Sequence[str] = BAKEOFF_METHODS,
    folds: int = FOLDS,
    default: str | None = None,
) -> pd.DataFrame:
    """Scoreboard: ``method, n_gold, correct, accuracy, ci_low, ci_high, gain, p_value, chosen``.

    ``gain`` is the accuracy minus the default's, ``p_value`` the McNemar test against the default
    (NaN on the default's row); ``default`` is the method to keep unless one is significantly better
    (None: the first method listed).
    """
    base_method = default if default is not None and default in methods else methods[0]
    fold = fold_of(len(gold_items), min(folds, max(len(gold_items), 1)))
    rows = []
    hits: dict[str, NDArray[np.bool_]] = {}
    for method in methods:
        hit = np.zeros(len(gold_items), dtype=bool)
        for f in np.unique(fold):
            held = fold == f
            predicted = fit(method, gold_items[~held], gold_classes[~held])
            hit[held] = predicted[gold_items[held]] == gold_classes[held]
        hits[method] = hit
        correct = int(hit.sum())
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
    base = hits[base_method]
    board["gain"] = board["accuracy"] - float(base.mean()) if len(base) else 0.0
    board["p_value"] = [
        float("nan") if m == base_method else mcnemar_p(int((hits[m] & ~base).sum()), int((~hits[m] & base).sum()))
        for m in methods
    ]
    passed = board[(board["p_value"] < ALPHA) & (board["gain"] > 0)]
    # idxmax returns the first maximum: ties go to the method listed first.
    chosen = passed["accuracy"].idxmax() if len(passed) else methods.index(base_method)
    board["chosen"] = board.index == chosen
    return board


def winner(board: pd.DataFrame) -> str:
    return str(board.loc[board["chosen"], "method"].iloc[0])
