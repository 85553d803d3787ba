"""The order of the regular (non-gold) items in a queue run, by the run's strategy (pure).

- ``uncertainty`` / ``margin`` / ``entropy``: the kind's informativeness of the item's newest pre-label.
- ``random``: a seeded shuffle (the baseline every strategy must beat).
- ``diversity``: k-center greedy (``core/training/active_learning.py``) on each item's embedding, away from the items
  already queued: each pick is the item farthest from everything queued or picked so far, so a batch covers the
  pool instead of repeating one confusion. The embedding is the item's 64-bit perceptual hash as a 0/1 vector
  (stored at ingest for every decodable image; the squared distance is the Hamming distance).
- ``hybrid``: the ``HYBRID_FACTOR`` x batch most uncertain items, spread by the same k-center greedy.
- ``committee``: query-by-committee over the pre-labels the item has from different models (the prelabels table
  keeps one row per item and model version: each pixel baseline, each champion; the newest ``COMMITTEE_SIZE``): their
  disagreement, the
  generalized Jensen-Shannon divergence ``H(mean) - mean(H)`` with ``H`` the kind's entropy score (normalized
  Shannon entropy for one class, the mean binary entropy of the per-class marginals for label sets), in [0, 1].

Items without what the strategy needs come after those that have it, in the uncertainty order (scored first, most
uncertain first, then unscored in the seeded shuffle), each counted by its reason (:data:`NO_EMBEDDING`,
:data:`ONE_MODEL`, :data:`NOT_CLASS_PROBS`). Boxes and text spans have no class distribution to compare, so
``committee`` falls back for them; an image kind (boxes too) has embeddings, a text kind none, so ``diversity``
and ``hybrid`` fall back for text items (``hybrid`` then is the uncertainty order).
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labeling_assets.core.tasks.kind import TaskKind
from labeling_assets.core.training.active_learning import k_center_greedy
from labeling_assets.core.training.types import AnyArray

UNCERTAINTY_ORDERS = ("uncertainty", "margin", "entropy", "random")
EMBEDDING_STRATEGIES = ("diversity", "hybrid")
HYBRID_FACTOR = 5  # hybrid spreads the batch over this many times its size of the most uncertain items
POOL_CAP = 5000  # diversity: k-center over at most this many candidates (a seeded sample), O(pool x batch)
QUEUED_CAP = 5000  # ... kept away from at most this many already queued items (the newest)
COMMITTEE_SIZE = 5  # committee: the newest pre-labels of this many model versions
NO_EMBEDDING = "no embedding (a text item, or an image whose copy did not decode): uncertainty order"
ONE_MODEL = "fewer than two models' pre-labels: uncertainty order"
NOT_CLASS_PROBS = "pre-labels are not class probabilities (boxes, spans): uncertainty order"


@dataclass(frozen=True)
class SelectionInputs:
    """What the strategies beyond uncertainty read: embeddings and the committee's pre-labels."""

    embeddings: Mapping[str, AnyArray] = field(default_factory=dict)  # item_id -> vector (candidates)
    queued: AnyArray | None = None  # embeddings of the items already queued (diversity keeps away from them)
    committees: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)  # item_id -> each model's


@dataclass
class Ordered:
    """The regular candidates in queue order with their priority (the strategy's score in [0, 1]; for the
    k-center picks 1 - rank / batch), and why chosen items fell back."""

    items: list[tuple[Any, float]]
    fallbacks: Counter[str]


def uncertainty_score(kind: TaskKind, probs: Mapping[str, Any] | None, strategy: str) -> float:
    """The kind's informativeness; the new strategies rank their fall-back items by plain ``uncertainty``."""
    return kind.informativeness(probs, strategy if strategy in UNCERTAINTY_ORDERS else "uncertainty")


def committee_disagreement(kind: TaskKind, members: Sequence[Mapping[str, Any]]) -> float | None:
    """``H(mean) - mean(H)`` over the members' class probabilities (see the module docstring); None when fewer than
    two members or a member is not a class -> probability map."""
    if len(members) < 2 or not all(_class_probs(m) for m in members):
        return None
    classes = sorted({c for m in members for c in m})
    matrix = np.array([[float(m.get(c, 0.0)) for c in classes] for m in members])
    mean = dict(zip(classes, matrix.mean(axis=0), strict=True))
    spread = kind.informativeness(mean, "entropy") - float(np.mean([kind.informativeness(m, "entropy") for m in members]))
    return float(min(max(spread, 0.0), 1.0))


def _class_probs(probs: Mapping[str, Any]) -> bool:
    return bool(probs) and all(isinstance(v, numbers.Real) and np.isfinite(float(v)) for v in probs.values())


def order_regular(
    candidates: Sequence[Any], n: int, strategy: str, kind: TaskKind, rng: np.random.Generator,
    inputs: SelectionInputs | None = None,
) -> Ordered:  # fmt: skip
    """The first ``n`` of ``candidates`` (objects with ``item_id`` and ``probs``, already in a seeded shuffle) in
    queue order for ``strategy``."""
    inputs = inputs or SelectionInputs()
    base = _uncertainty_order(candidates, strategy, kind)
    if strategy in UNCERTAINTY_ORDERS or n <= 0:
        return Ordered(base[:n], Counter())
    if strategy == "committee":
        return _committee(base, n, kind, inputs)
    if strategy == "hybrid":
        pool_size = min(len(base), HYBRID_FACTOR * n)
        scored = [pair for pair in base if pair[0].probs is not None]
        pool = scored[:pool_size] if scored else base[:pool_size]
        return _spread(pool, base, n, inputs, rng)
    if strategy == "diversity":
        pool = base if len(base) <= POOL_CAP else [base[i] for i in sorted(rng.choice(len(base), POOL_CAP, replace=False))]
        return _spread(pool, base, n, inputs, rng)
    raise ValueError(f"unknown strategy {strategy!r}")


def _uncertainty_order(candidates: Sequence[Any], strategy: str, kind: TaskKind) -> list[tuple[Any, float]]:
    """Scored before unscored, most informative first; stable, so ties keep the caller's seeded shuffle."""
    scores = [uncertainty_score(kind, c.probs, strategy) for c in candidates]
    order = sorted(range(len(candidates)), key=lambda i: (candidates[i].probs is None, -scores[i]))
    return [(candidates[i], scores[i]) for i in order]


def _committee(base: list[tuple[Any, float]], n: int, kind: TaskKind, inputs: SelectionInputs) -> Ordered:
    scored, rest, why = [], [], {}
    for pair in base:
        members = inputs.committees.get(pair[0].item_id, ())
        value = committee_disagreement(kind, members)
        if value is None:
            rest.append(pair)
            why[pair[0].item_id] = NOT_CLASS_PROBS if len(members) >= 2 else ONE_MODEL
        else:
            scored.append((pair[0], value))
    scored.sort(key=lambda pair: -pair[1])  # stable: equal disagreement keeps the uncertainty order
    chosen = (scored + rest)[:n]
    return Ordered(chosen, Counter(why[c.item_id] for c, _ in chosen if c.item_id in why))


def _spread(
    pool: list[tuple[Any, float]], base: list[tuple[Any, float]], n: int, inputs: SelectionInputs, rng: np.random.Generator
) -> Ordered:  # fmt: skip
    """k-center picks among the pool items that have an embedding, then the rest of ``base`` in its order."""
    embedded = [pair for pair in pool if pair[0].item_id in inputs.embeddings]
    picks: list[tuple[Any, float]] = []
    if embedded:
        features = np.stack([np.asarray(inputs.embeddings[c.item_id], dtype=np.float64) for c, _ in embedded])
        queued = inputs.queued if inputs.queued is not None and len(inputs.queued) else None
        k = min(n, len(embedded))
        order = k_center_greedy(features, k, labeled_features=queued, seed=int(rng.integers(2**31)))
        picks = [(embedded[int(i)][0], 1.0 - rank / max(k, 1)) for rank, i in enumerate(order)]
    taken = {c.item_id for c, _ in picks}
    rest = [pair for pair in base if pair[0].item_id not in taken]
    chosen = (picks + rest)[:n]
    return Ordered(chosen, Counter(NO_EMBEDDING for c, _ in chosen if c.item_id not in inputs.embeddings))


def phash_embedding(phash_hex: str) -> AnyArray:
    """A 64-bit perceptual hash (16 hex digits) as a 0/1 vector: squared Euclidean distance = Hamming distance."""
    value = int(phash_hex, 16)
    return np.array([(value >> (63 - b)) & 1 for b in range(64)], dtype=np.float64)
