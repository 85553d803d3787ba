"""Our span consensus: a span-level crowd model that learns each labeler's habits by EM.

Marks are matched across labelers into clusters (:mod:`.clusters`), one candidate entity each. A cluster is an
entity or not (``z``); if it is, it has a type ``t`` and token boundaries. Each labeler ``j`` who answered the
item either marks the cluster or not, and the model learns, per labeler:

- ``s_j``, the chance of marking a true entity (its miss rate is ``1 - s_j``);
- ``f_j``, the chance of marking a cluster that is no entity (a false span, its own or one it joins);
- ``C_j[t, t']``, the type given for an entity of type ``t`` (type confusion), and ``g_j[t']`` on false spans;
- ``B_j``, where its start and its end fall relative to the true ones (token offsets -2..2, or further):
  boundary habits, such as always taking one token too many.

Presence and type follow two-coin Dawid-Skene on the clusters (a labeler not marking a cluster is evidence too,
weighed by what it misses); the boundaries are chosen per cluster as the start and end most likely under the
markers' boundary habits, which are re-learned from every candidate boundary weighted by its posterior. Decided: clusters whose entity probability
is over one half, with their most probable type; where overlaps are forbidden, the more probable of two
overlapping entities stays. An item's confidence is the probability that every cluster is decided right
(presence, type and boundaries) times the chance that no entity was missed by all its labelers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from labeling_assets.core.tasks.text_spans.clusters import Cluster, item_clusters
from labeling_assets.core.tasks.text_spans.spans import Span, token_range
from labeling_assets.core.tasks.text_spans.votes import SpanConsensus, SpanCrowd, TokenSpan, to_spans

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
MAX_ITER = 100
TOLERANCE = 1e-6
BOUNDARY_ITER = 10
REACH = 2  # boundary offsets of -REACH..REACH tokens are told apart, further ones share one bucket
N_BUCKETS = 2 * REACH + 2
_OFFSETS = np.arange(-REACH, REACH + 1, dtype=np.float64)
PSEUDO = 1.0  # Laplace pseudo-counts on the priors and the boundary habits
# Beta priors (as pseudo-counts) on each labeler's rates: better than chance until its answers say otherwise, so
# a crowd of a few items decides as a vote would and a large one as its answers say.
PRIOR_WEIGHT = 4.0
PRIOR_HIT = 0.8  # s_j: marks a true entity
PRIOR_FALSE = 0.2  # f_j: marks a false cluster
PRIOR_TYPE = 0.8  # C_j[t, t]: gives the right type


def _bucket(offset: IntArray) -> IntArray:
    return np.where(np.abs(offset) <= REACH, offset + REACH, N_BUCKETS - 1)


class _Observations:
    """One row per (cluster, labeler who answered the cluster's item): the type marked (``n_types``: none) and,
    when marked, the mark's token boundaries."""

    def __init__(self, crowd: SpanCrowd, clusters: list[Cluster]) -> None:
        labeler_index = {name: i for i, name in enumerate(crowd.labelers)}
        n_types = len(crowd.types)
        rows: list[tuple[int, int, int, int, int]] = []
        for k, cluster in enumerate(clusters):
            for name in crowd.items[cluster.item].marks:
                mark = cluster.marks.get(name)
                if mark is None:
                    rows.append((k, labeler_index[name], n_types, -1, -1))
                else:
                    rows.append((k, labeler_index[name], mark.type, mark.first, mark.end))
        table = np.asarray(rows, np.int64).reshape(-1, 5)
        self.cluster, self.labeler, self.given, self.first, self.end = table.T
        self.marked = self.given < n_types
        width = len(crowd.labelers) * (n_types + 1)
        key = self.labeler * (n_types + 1) + self.given
        self.a = sparse.csr_matrix((np.ones(len(key)), (self.cluster, key)), shape=(len(clusters), width))
        self.at = self.a.T.tocsr()


class _Fixed:
    """What gold fixes per cluster: ``p`` (NaN: free), the type (-1: none) and the token boundaries (-1: free)."""

    def __init__(self, n_clusters: int) -> None:
        self.p = np.full(n_clusters, np.nan)
        self.type = np.full(n_clusters, -1, np.int64)
        self.first = np.full(n_clusters, -1, np.int64)
        self.end = np.full(n_clusters, -1, np.int64)

    def apply(self, p: FloatArray, q: FloatArray) -> tuple[FloatArray, FloatArray]:
        known = ~np.isnan(self.p)
        p = np.where(known, self.p, p)
        entity = self.type >= 0
        q = q.copy()
        q[entity] = 0.0
        q[entity, self.type[entity]] = 1.0
        return p, q


def _gold_clusters(crowd: SpanCrowd, clusters: list[Cluster], gold: Mapping[str, Sequence[Span]]) -> _Fixed:
    """Fix the clusters of gold items (appending one without marks for each gold entity nobody marked): a cluster
    is the gold entity it overlaps most (one cluster per entity, largest token overlap first), else no entity."""
    index = {t: i for i, t in enumerate(crowd.types)}
    by_item: dict[int, list[int]] = {}
    for k, cluster in enumerate(clusters):
        by_item.setdefault(cluster.item, []).append(k)
    truth: dict[int, tuple[TokenSpan, ...]] = {}
    for i, item in enumerate(crowd.items):
        if item.item_id in gold:
            spans = [(token_range(s, item.tokens), s.label) for s in gold[item.item_id]]
            truth[i] = tuple(TokenSpan(r[0], r[1], index[label]) for r, label in spans if r and label in index)
    pairs: dict[int, list[tuple[int, int, int]]] = {}
    for i, entities in truth.items():
        pairs[i] = sorted(
            ((-sum(max(0, min(m.end, e.end) - max(m.first, e.first)) for m in clusters[k].marks.values()), k, j)
             for k in by_item.get(i, []) for j, e in enumerate(entities)),
        )
    matched: dict[int, tuple[int, int]] = {}  # cluster -> (item, entity)
    for i, ranked in pairs.items():
        taken: set[int] = set()
        for overlap, k, j in ranked:
            if overlap < 0 and k not in matched and j not in taken:
                matched[k] = (i, j)
                taken.add(j)
        for j in range(len(truth[i])):
            if j not in taken:  # every labeler of the item missed it
                clusters.append(Cluster(i, {}))
                matched[len(clusters) - 1] = (i, j)
    fixed = _Fixed(len(clusters))
    for k, cluster in enumerate(clusters):
        if cluster.item in truth:
            fixed.p[k] = 0.0
    for k, (i, j) in matched.items():
        entity = truth[i][j]
        fixed.p[k], fixed.type[k], fixed.first[k], fixed.end[k] = 1.0, entity.type, entity.first, entity.end
    return fixed


@dataclass(frozen=True)
class _Choice:
    """One side's boundary per cluster (-1: none), the chosen one's posterior, and every (mark, candidate) pair with
    the mark's offset from the candidate and the candidate's posterior (what the habits are re-learned from)."""

    chosen: IntArray
    share: FloatArray
    pair_obs: IntArray
    pair_offset: IntArray
    pair_weight: FloatArray


def _choose(cluster: IntArray, value: IntArray, labeler: IntArray, log_b: FloatArray, n_clusters: int,
            fixed: IntArray) -> _Choice:  # fmt: skip
    """Per cluster, the boundary (one of its marks' values) that its marks' boundary habits make most likely, with
    its posterior among the candidates (each equally likely before the marks). Ties: the value more marks gave,
    then the smaller. Where gold ``fixed`` a boundary (>= 0) it is the only candidate."""
    chosen = np.full(n_clusters, -1, np.int64)
    share = np.ones(n_clusters)
    if len(cluster) == 0:
        empty = np.zeros(0, np.int64)
        return _Choice(np.where(fixed >= 0, fixed, chosen), share, empty, empty, np.zeros(0))
    values = np.where(fixed[cluster] >= 0, fixed[cluster], value)  # a gold boundary replaces the marks' values
    width = int(max(values.max(), value.max())) + 1
    cand = np.unique(cluster * width + values)  # the distinct (cluster, value) pairs, sorted by cluster
    cand_cluster, cand_value = cand // width, cand % width
    order = np.argsort(cluster, kind="stable")
    obs_cluster = cluster[order]
    starts = np.searchsorted(obs_cluster, np.arange(n_clusters))
    counts = np.bincount(obs_cluster, minlength=n_clusters)
    per = counts[cand_cluster]  # each candidate meets every mark of its cluster
    pair_cand = np.repeat(np.arange(len(cand_cluster)), per)
    within = np.arange(len(pair_cand)) - np.repeat(np.cumsum(per) - per, per)
    pair_obs = order[starts[cand_cluster][pair_cand] + within]
    offset = value[pair_obs] - cand_value[pair_cand]
    score = np.bincount(pair_cand, weights=log_b[labeler[pair_obs], _bucket(offset)], minlength=len(cand_cluster))
    votes = np.bincount(pair_cand, weights=(offset == 0).astype(float), minlength=len(cand_cluster))
    best = np.lexsort((cand_value, -votes, -score, cand_cluster))
    first = best[np.r_[True, cand_cluster[best][1:] != cand_cluster[best][:-1]]]
    chosen[cand_cluster[first]] = cand_value[first]
    top = np.zeros(n_clusters)
    top[cand_cluster[first]] = score[first]
    weight = np.exp(score - top[cand_cluster])
    posterior = weight / np.bincount(cand_cluster, weights=weight, minlength=n_clusters)[cand_cluster]
    share[cand_cluster[first]] = posterior[first]
    # a gold entity nobody marked has no candidate but its own
    return _Choice(np.where(fixed >= 0, fixed, chosen), share, pair_obs, offset, posterior[pair_cand])


def _boundaries(obs: _Observations, p: FloatArray, n_labelers: int, n_clusters: int,
                fixed: _Fixed) -> tuple[IntArray, IntArray, FloatArray, FloatArray, FloatArray]:  # fmt: skip
    """Starts and ends per cluster with their posteriors, and the learned offset habits (labeler, side, bucket).
    The habits are re-learned from every candidate boundary weighted by its posterior (soft EM): a hard choice
    would credit whichever labeler a tie-break favours, and the habits learned from that would entrench it."""
    m = obs.marked
    cluster, labeler, first, end = obs.cluster[m], obs.labeler[m], obs.first[m], obs.end[m]
    habits = np.full((n_labelers, 2, N_BUCKETS), 0.2 / (N_BUCKETS - 1))
    habits[:, :, REACH] = 0.8  # start believing labelers mostly hit the boundary
    for _ in range(BOUNDARY_ITER):
        log_h = np.log(habits)
        start = _choose(cluster, first, labeler, log_h[:, 0], n_clusters, fixed.first)
        stop = _choose(cluster, end, labeler, log_h[:, 1], n_clusters, fixed.end)
        counts = np.full((n_labelers, 2, N_BUCKETS), PSEUDO / N_BUCKETS)
        for side, choice in enumerate((start, stop)):
            weight = p[cluster[choice.pair_obs]] * choice.pair_weight
            np.add.at(counts[:, side], (labeler[choice.pair_obs], _bucket(choice.pair_offset)), weight)
        updated = counts / counts.sum(axis=2, keepdims=True)
        if np.abs(updated - habits).max() < TOLERANCE:
            break
        habits = updated
    return start.chosen, stop.chosen, start.share, stop.share, habits


def span_em(crowd: SpanCrowd, *, gold: Mapping[str, Sequence[Span]] | None = None, allow_overlap: bool = False,
            max_iter: int = MAX_ITER) -> SpanConsensus:  # fmt: skip
    """Aggregate span votes with the span-level model (see the module docstring). On ``gold`` items the truth is
    known: their clusters are fixed (an entity with the gold type and boundaries, or none), a gold entity nobody
    marked is a cluster every labeler missed, and the labelers' rates are learned with them as anchors; a gold
    item's own answer is its gold spans, with confidence 1."""
    gold = gold or {}
    clusters = item_clusters(crowd.items)
    fixed = _gold_clusters(crowd, clusters, gold)
    n_labelers, n_types, n_clusters = len(crowd.labelers), len(crowd.types), len(clusters)
    obs = _Observations(crowd, clusters)
    # start from the share of the item's labelers who marked the cluster, and the types they gave
    answered = np.bincount(obs.cluster, minlength=n_clusters).astype(float)
    p = np.bincount(obs.cluster, weights=obs.marked.astype(float), minlength=n_clusters) / np.maximum(answered, 1)
    q: FloatArray = np.full((n_clusters, n_types), PSEUDO)
    np.add.at(q, (obs.cluster[obs.marked], obs.given[obs.marked]), 1.0)
    q /= q.sum(axis=1, keepdims=True)
    p, q = fixed.apply(p, q)
    s = f = np.zeros(n_labelers)
    off_diagonal = PRIOR_WEIGHT * (1 - PRIOR_TYPE) / max(n_types - 1, 1)
    type_pseudo = np.full((n_types, n_types), off_diagonal) + np.eye(n_types) * (PRIOR_WEIGHT * PRIOR_TYPE - off_diagonal)
    confusion: FloatArray = np.zeros((n_labelers, n_types, n_types))
    for _ in range(max_iter):
        # M-step: rates from the posterior mass of the clusters each labeler marked (by type) or left alone
        shape = (n_labelers, n_types + 1)
        on = np.asarray(obs.at @ p).reshape(shape)
        off = np.asarray(obs.at @ (1 - p)).reshape(shape)
        typed = np.asarray(obs.at @ (p[:, None] * q)).reshape(n_labelers, n_types + 1, n_types)[:, :n_types]
        s = (on[:, :n_types].sum(axis=1) + PRIOR_WEIGHT * PRIOR_HIT) / (on.sum(axis=1) + PRIOR_WEIGHT)
        f = (off[:, :n_types].sum(axis=1) + PRIOR_WEIGHT * PRIOR_FALSE) / (off.sum(axis=1) + PRIOR_WEIGHT)
        confusion = typed.transpose(0, 2, 1) + type_pseudo  # [labeler, true, given]
        confusion /= confusion.sum(axis=2, keepdims=True)
        given_false = off[:, :n_types] + PSEUDO / n_types
        given_false /= given_false.sum(axis=1, keepdims=True)
        prior = (p.sum() + PSEUDO) / (n_clusters + 2 * PSEUDO)
        type_prior = ((p[:, None] * q).sum(axis=0) + PSEUDO) / (p.sum() + n_types * PSEUDO)
        # E-step
        entity_table = np.concatenate(
            [np.log(s)[:, None, None] + np.log(confusion).transpose(0, 2, 1),
             np.broadcast_to(np.log1p(-s)[:, None, None], (n_labelers, 1, n_types))], axis=1,
        ).reshape(-1, n_types)  # fmt: skip
        false_table = np.concatenate([np.log(f)[:, None] + np.log(given_false), np.log1p(-f)[:, None]], axis=1)
        log_entity = np.asarray(obs.a @ entity_table) + np.log(prior) + np.log(type_prior)
        log_false = np.asarray(obs.a @ false_table.reshape(-1)) + np.log1p(-prior)
        top = np.maximum(log_entity.max(axis=1, initial=-np.inf), log_false)
        weights = np.exp(log_entity - top[:, None])
        false_weight = np.exp(log_false - top)
        updated = weights.sum(axis=1) / (weights.sum(axis=1) + false_weight)
        updated, q = fixed.apply(updated, weights / weights.sum(axis=1, keepdims=True))
        change = float(np.abs(updated - p).max()) if n_clusters else 0.0
        p = updated
        if change < TOLERANCE:
            break
    start, stop, start_share, stop_share, habits = _boundaries(obs, p, n_labelers, n_clusters, fixed)
    result = _decide(crowd, clusters, p, q, start, stop, start_share * stop_share, s, f, confusion, habits,
                     allow_overlap)  # fmt: skip
    for item in crowd.items:
        if item.item_id in gold:
            result.labels[item.item_id] = tuple(sorted(gold[item.item_id]))
            result.confidence[item.item_id] = 1.0
    return result


def _decide(crowd: SpanCrowd, clusters: list[Cluster], p: FloatArray, q: FloatArray, start: IntArray,
            stop: IntArray, boundary_share: FloatArray, s: FloatArray, f: FloatArray, confusion: FloatArray,
            habits: FloatArray, allow_overlap: bool) -> SpanConsensus:  # fmt: skip
    labeler_index = {name: i for i, name in enumerate(crowd.labelers)}
    by_item: dict[int, list[int]] = {}
    for k, cluster in enumerate(clusters):
        by_item.setdefault(cluster.item, []).append(k)
    labels: dict[str, tuple[Span, ...]] = {}
    confidence: dict[str, float] = {}
    for index, item in enumerate(crowd.items):
        sure = 1.0 - float(np.prod([1.0 - s[labeler_index[name]] for name in item.marks]))
        kept: list[TokenSpan] = []
        for k in sorted(by_item.get(index, []), key=lambda k: -p[k]):
            if p[k] <= 0.5:
                sure *= 1.0 - p[k]
                continue
            first, end = int(start[k]), int(stop[k])
            if first >= end:  # chosen start after chosen end: the most common mark instead
                marks = [(m.first, m.end) for m in clusters[k].marks.values()]
                first, end = max(marks, key=lambda fe: (marks.count(fe), -fe[0], -fe[1]))
            mark = TokenSpan(first, end, int(q[k].argmax()))
            if not allow_overlap and any(mark.first < o.end and o.first < mark.end for o in kept):
                sure *= 1.0 - p[k]  # dropped: right only if it was no entity
                continue
            kept.append(mark)
            sure *= float(p[k] * q[k].max() * boundary_share[k])
        labels[item.item_id] = to_spans(kept, item.tokens, crowd.types)
        confidence[item.item_id] = float(sure)
    n_annotators = {item.item_id: len(item.marks) for item in crowd.items}
    quality = {
        name: {
            "miss_rate": round(float(1 - s[i]), 4),
            "false_span_rate": round(float(f[i]), 4),
            "type_accuracy": round(float(np.diag(confusion[i]).mean()), 4) if crowd.types else 1.0,
            "exact_start": round(float(habits[i, 0, REACH]), 4),
            "exact_end": round(float(habits[i, 1, REACH]), 4),
            # within the told-apart offsets (-REACH..REACH); a further one counts in neither
            "mean_start_offset": round(float(habits[i, 0, :-1] @ _OFFSETS / habits[i, 0, :-1].sum()), 4),
            "mean_end_offset": round(float(habits[i, 1, :-1] @ _OFFSETS / habits[i, 1, :-1].sum()), 4),
        }
        for name, i in labeler_index.items()
    }
    return SpanConsensus("span_em", labels, confidence, n_annotators, quality)
