"""Unsupervised model choice: which Dawid-Skene prior explains the crowd, judged by held-out answers.

Our Dawid-Skene variants differ only in the prior each labeler's confusion matrix is pulled toward:
their own "one coin" (right or wrong, the same for every true class), the whole crowd's pooled
confusion (a class-dependent lean every labeler shares, as real crowds have: most say "safe" or "no"
for a borderline item), or barely anything (the pooled confusion at one pseudo-label per row: each
labeler's full confusion is their own, for crowds whose labelers lean each their own way). Which one fits is a property of the crowd, not of the task, and can be read
off the answers without any gold: hide some answers, fit each model on the rest, and score how
probable each model finds the hidden answers (the held-out log-likelihood, i.e. cross-validation of
the answer model). The model that predicts unseen answers better is the better description of how
these labelers err, so its posteriors are used (the weak prior only when clearly better: ``CHALLENGER``).

Hold-out: each item's annotations are dealt to ``FOLDS`` folds in a random order starting at a random
fold, and fold 0 is held out (about a third of the answers). An item with n >= 2 annotations loses at
most ceil(n / folds) < n of them and always keeps one to be predicted from; items with a single
annotation are never held out (nothing would predict them). One split, not all three folds: on every
real and simulated crowd of the benchmarks, four different seeds of one split made the same choice as
three-fold cross-validation, at a third of the cost (three extra Dawid-Skene fits on 2/3 of the
data, so ``auto`` stays a few seconds at 10^6 annotations).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from labeling_assets.core.consensus.encoding import Codes, Encoded, Floats

# The candidates, in tie-break order (the first wins a tie), and the share held out (one fold of three).
CANDIDATES = ("dawid_skene", "dawid_skene_pooled", "dawid_skene_weak")
FOLDS = 3
SEED = 0
# The weak prior has the most free numbers, so on a small crowd it can win the held-out score by chance
# (on a 200-item crowd with a shared lean it did, and labeled worse than the pooled prior).
# It replaces the best of the others only when its mean held-out log-likelihood per answer is higher by
# more than Z standard errors of the paired per-answer difference.
CHALLENGER = "dawid_skene_weak"
Z = 2.0

# fit(encoded annotations) -> (posteriors (n_items, k), confusion (n_labelers, k, k))
Fit = Callable[[Encoded], tuple[Floats, Floats]]


def heldout_folds(enc: Encoded, folds: int = FOLDS, seed: int = SEED) -> Codes:
    """Fold per annotation (0..folds-1), or -1 for annotations never held out (an item's only one)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(enc.item)), enc.item))  # by item, random within an item
    by_item = enc.item[order]
    rank: Codes = np.empty(len(enc.item), dtype=np.int64)
    rank[order] = np.arange(len(enc.item)) - np.searchsorted(by_item, by_item, side="left")
    start = rng.integers(0, folds, enc.n_items)
    fold: Codes = (rank + start[enc.item]) % folds
    per_item = np.bincount(enc.item, minlength=enc.n_items)
    fold[per_item[enc.item] < 2] = -1
    return fold


def _subset(enc: Encoded, keep: NDArray[np.bool_]) -> Encoded:
    return Encoded(
        enc.item[keep], enc.labeler[keep], enc.label[keep], enc.item_ids, enc.labeler_ids, enc.classes, []
    )


def heldout_answer_log_likelihoods(enc: Encoded, fit: Fit, folds: int = FOLDS, seed: int = SEED) -> Floats:
    """Log-probability of each held-out answer (fold 0) given the model fitted on the other answers.

    p(labeler j answers l on item i) = sum_c posterior_i(c) * confusion_j(c, l), where item i's posterior
    comes from its remaining answers. Empty when no item has two annotations (nothing can be held out).
    """
    held = heldout_folds(enc, folds, seed) == 0
    if not held.any():
        return np.empty(0)
    posteriors, confusion = fit(_subset(enc, ~held))
    items, labelers, labels = enc.item[held], enc.labeler[held], enc.label[held]
    p = np.einsum("ac,ac->a", posteriors[items], confusion[labelers, :, labels])
    scores: Floats = np.log(np.maximum(p, 1e-300))
    return scores


def heldout_log_likelihood(enc: Encoded, fit: Fit, folds: int = FOLDS, seed: int = SEED) -> float:
    """Mean of :func:`heldout_answer_log_likelihoods`; NaN when nothing can be held out."""
    scores = heldout_answer_log_likelihoods(enc, fit, folds, seed)
    return float(scores.mean()) if len(scores) else float("nan")


def select(
    enc: Encoded, fits: dict[str, Fit], candidates: Sequence[str] = CANDIDATES, folds: int = FOLDS
) -> tuple[str, dict[str, float]]:
    """(the candidate with the highest held-out log-likelihood, its score per candidate); ``CHALLENGER``
    must beat the best of the others by ``Z`` standard errors."""
    per_answer = {name: heldout_answer_log_likelihoods(enc, fits[name], folds) for name in candidates}
    scores = {name: float(v.mean()) if len(v) else float("nan") for name, v in per_answer.items()}
    finite = [name for name in candidates if np.isfinite(scores[name])]
    if not finite:
        return candidates[0], scores
    others = [name for name in finite if name != CHALLENGER] or finite
    best = max(others, key=lambda name: scores[name])  # max returns the first of equal scores
    if CHALLENGER in finite and best != CHALLENGER:
        gain = per_answer[CHALLENGER] - per_answer[best]
        if gain.mean() > Z * gain.std(ddof=1) / np.sqrt(len(gain)):
            best = CHALLENGER
    return best, scores
