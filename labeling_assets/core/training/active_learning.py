"""Active learning: which unlabeled items to send to annotators next (numpy only).

Scores (higher = more informative), the same definitions as :mod:`labeling_assets.core.labelstudio.tasks`:

- ``least_confidence``: ``1 - max p``;
- ``margin``: ``1 - (p1 - p2)`` (the two most probable classes);
- ``entropy``: Shannon entropy divided by ``log(n_classes)``, in [0, 1];
- multi-label (independent per-class marginals, rows need not sum to 1): :func:`mean_binary_entropy`, the
  binary entropy of each class in bits averaged over classes, in [0, 1].

Uncertainty alone picks near-duplicates: a batch of the ten most confusing items is often ten copies of
one confusion. ``k_center_greedy`` picks items that cover feature space (Sener & Savarese's core-set
greedy: each pick is the item farthest from everything labeled or picked so far); ``hybrid`` keeps the
most uncertain ``candidate_factor * k`` items and spreads the batch over them with k-center greedy.
Deep active learning often barely beats random sampling, so every strategy is benchmarked against
``random`` (benchmarks/active_learning.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labeling_assets.core.training.types import AnyArray

STRATEGIES: tuple[str, ...] = ("random", "least_confidence", "margin", "entropy", "k_center", "hybrid")
UNCERTAINTY_STRATEGIES: tuple[str, ...] = ("least_confidence", "margin", "entropy")


def _check_probs(probs: AnyArray) -> AnyArray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise ValueError(f"probs must be (n_items, n_classes), got shape {probs.shape}")
    if probs.size and (not np.isfinite(probs).all() or probs.min() < 0):
        raise ValueError("probs must be finite and non-negative")
    return probs


def least_confidence(probs: AnyArray) -> AnyArray:
    """``1 - max p`` per item."""
    probs = _check_probs(probs)
    return 1.0 - probs.max(axis=1) if len(probs) else np.zeros(0)


def margin(probs: AnyArray) -> AnyArray:
    """``1 - (p1 - p2)`` per item: 1 when the top two classes tie, 0 when one class has all the mass."""
    probs = _check_probs(probs)
    if probs.shape[1] < 2:
        return np.zeros(len(probs))
    top2 = np.partition(probs, -2, axis=1)[:, -2:]
    scores: AnyArray = 1.0 - (top2[:, 1] - top2[:, 0])
    return scores


def entropy(probs: AnyArray) -> AnyArray:
    """Shannon entropy normalised by ``log(n_classes)`` (0: certain, 1: uniform)."""
    probs = _check_probs(probs)
    k = probs.shape[1]
    if k < 2:
        return np.zeros(len(probs))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probs > 0, probs * np.log(probs), 0.0)
    scores: AnyArray = -terms.sum(axis=1) / np.log(k)
    return scores


def mean_binary_entropy(marginals: AnyArray) -> AnyArray:
    """Per item, the mean over classes of the binary entropy ``H(p_k)`` in bits: 0 when the model is sure of
    every class (each ``p_k`` is 0 or 1), 1 when every class is a coin flip.

    For multi-label models whose ``(n, K)`` outputs are independent per-class probabilities (sigmoids): the
    single-label scores above renormalise a row over classes, which would call an image sure of two findings
    (0.99, 0.99) as unsure as a coin flip between them.
    """
    p = _check_probs(marginals)
    if p.size and p.max() > 1:
        raise ValueError("per-class probabilities must be in [0, 1]")
    if not len(p):
        return np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bits = -(np.where(p > 0, p * np.log2(p), 0.0) + np.where(p < 1, (1 - p) * np.log2(1 - p), 0.0))
    scores: AnyArray = bits.mean(axis=1)
    return scores


def uncertainty_scores(probs: AnyArray, strategy: str) -> AnyArray:
    """The score of ``strategy`` (one of :data:`UNCERTAINTY_STRATEGIES`) for every item."""
    if strategy == "least_confidence":
        return least_confidence(probs)
    if strategy == "margin":
        return margin(probs)
    if strategy == "entropy":
        return entropy(probs)
    raise ValueError(
        f"unknown uncertainty strategy {strategy!r}; choose one of {', '.join(UNCERTAINTY_STRATEGIES)}"
    )


def top_k(scores: AnyArray, k: int) -> AnyArray:
    """Indices of the ``k`` highest scores, best first; ties broken by index (deterministic)."""
    scores = np.asarray(scores, dtype=np.float64)
    k = max(0, min(k, len(scores)))
    # lexsort: last key is primary; -scores descending, index ascending among equals.
    order: AnyArray = np.lexsort((np.arange(len(scores)), -scores))
    return order[:k]


def k_center_greedy(
    features: AnyArray,
    k: int,
    *,
    labeled_features: AnyArray | None = None,
    seed: int = 0,
) -> AnyArray:
    """Pick ``k`` rows of ``features`` that cover the space: each pick is the row farthest (Euclidean)
    from every labeled row and every row picked so far.

    Without labeled rows the first pick is random (``seed``). O(n * (k + n_labeled)) time, O(n) memory.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (n_items, n_features), got shape {x.shape}")
    n = len(x)
    k = max(0, min(k, n))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    nearest = np.full(n, np.inf)
    if labeled_features is not None and len(labeled_features):
        labeled = np.asarray(labeled_features, dtype=np.float64)
        if labeled.ndim != 2 or labeled.shape[1] != x.shape[1]:
            raise ValueError(f"labeled_features must be (m, {x.shape[1]}), got shape {labeled.shape}")
        sq_x = (x * x).sum(axis=1)
        for start in range(0, len(labeled), 1024):  # blocks keep memory at n * 1024
            block = labeled[start : start + 1024]
            d2 = sq_x[:, None] - 2.0 * x @ block.T + (block * block).sum(axis=1)[None, :]
            nearest = np.minimum(nearest, np.maximum(d2, 0.0).min(axis=1))
    chosen = np.empty(k, dtype=np.int64)
    taken = np.zeros(n, dtype=bool)
    for i in range(k):
        if i == 0 and not np.isfinite(nearest).any():
            pick = int(np.random.default_rng(seed).integers(n))
        else:
            candidates = np.where(taken, -np.inf, nearest)
            pick = int(np.argmax(candidates))
        chosen[i] = pick
        taken[pick] = True
        d2 = ((x - x[pick]) ** 2).sum(axis=1)
        nearest = np.minimum(nearest, d2)
    return chosen


def select(
    strategy: str,
    k: int,
    *,
    probs: AnyArray | None = None,
    features: AnyArray | None = None,
    labeled_features: AnyArray | None = None,
    candidate_factor: int = 5,
    uncertainty: str = "margin",
    seed: int = 0,
) -> AnyArray:
    """Indices (into the unlabeled pool) of the ``k`` items to label next.

    Args:
        strategy: one of :data:`STRATEGIES`.
        k: batch size (capped at the pool size).
        probs: model probabilities for the pool (uncertainty strategies and hybrid).
        features: embeddings (or downsampled pixels) of the pool (k_center and hybrid).
        labeled_features: embeddings of already labeled items (k_center and hybrid avoid their neighbourhood).
        candidate_factor: hybrid keeps this many times ``k`` most uncertain items before spreading.
        uncertainty: the score hybrid ranks by.
        seed: for random and the first k-center pick.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    n = _pool_size(probs, features)
    k = max(0, min(k, n))
    if strategy == "random":
        return np.random.default_rng(seed).permutation(n)[:k]
    if strategy in UNCERTAINTY_STRATEGIES:
        if probs is None:
            raise ValueError(f"strategy {strategy!r} needs probs")
        return top_k(uncertainty_scores(probs, strategy), k)
    if features is None:
        raise ValueError(f"strategy {strategy!r} needs features")
    if strategy == "k_center":
        return k_center_greedy(features, k, labeled_features=labeled_features, seed=seed)
    if probs is None:
        raise ValueError("strategy 'hybrid' needs probs")
    pool = top_k(uncertainty_scores(probs, uncertainty), max(k, candidate_factor * k))
    picked = k_center_greedy(np.asarray(features)[pool], k, labeled_features=labeled_features, seed=seed)
    chosen: AnyArray = pool[picked]
    return chosen


def _pool_size(probs: AnyArray | None, features: AnyArray | None) -> int:
    sizes: Sequence[int] = [len(a) for a in (probs, features) if a is not None]
    if not sizes:
        raise ValueError("select needs probs or features (or both)")
    if len(set(sizes)) > 1:
        raise ValueError(f"probs and features describe different pools: {sizes[0]} vs {sizes[1]} items")
    return sizes[0]
