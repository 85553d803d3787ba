"""The baselines of span consensus: token-level majority and token-level Dawid-Skene over IOB2 tags.

Both tag every token of an item from the labelers' IOB2 tags (``O``, ``B-type``, ``I-type``), each token on its
own, and read the item's spans back from the decided tags (:func:`~.spans.spans_from_bio`). Majority breaks a
tie toward ``O``, then the earlier tag (types in the project's order, ``B`` before ``I``). Dawid-Skene (1979)
learns one confusion matrix over the tags per labeler by EM, started from the majority's vote shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from labeling_assets.core.tasks.text_spans.spans import Span, bio_tags, spans_from_bio, tag_names
from labeling_assets.core.tasks.text_spans.votes import SpanConsensus, SpanCrowd, to_spans

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
DS_MAX_ITER = 50
DS_TOLERANCE = 1e-6
DS_SMOOTHING = 0.01  # pseudo-count per confusion cell: a tag a labeler never used keeps a small probability


@dataclass(frozen=True)
class TokenVotes:
    """Every (token, labeler, tag) of a crowd: tokens numbered across items, tags 0 = O, 1 + 2t = B-t, 2 + 2t = I-t."""

    token: IntArray
    labeler: IntArray
    tag: IntArray
    n_tokens: int
    n_tags: int
    item_tokens: list[tuple[int, int]]  # each item's tokens as [first, end) of the numbering


def token_votes(crowd: SpanCrowd) -> TokenVotes:
    tag_index = {name: i for i, name in enumerate(tag_names(crowd.types))}
    labeler_index = {name: i for i, name in enumerate(crowd.labelers)}
    token: list[int] = []
    labeler: list[int] = []
    tag: list[int] = []
    item_tokens = []
    offset = 0
    for item in crowd.items:
        n = len(item.tokens)
        item_tokens.append((offset, offset + n))
        for name, marks in item.marks.items():
            spans = to_spans(marks, item.tokens, crowd.types)
            token.extend(range(offset, offset + n))
            labeler.extend([labeler_index[name]] * n)
            tag.extend(tag_index[t] for t in bio_tags(spans, item.tokens))
        offset += n
    return TokenVotes(np.asarray(token, np.int64), np.asarray(labeler, np.int64), np.asarray(tag, np.int64),
                      offset, len(tag_index), item_tokens)  # fmt: skip


def _decide(crowd: SpanCrowd, votes: TokenVotes, posterior: FloatArray, method: str,
            quality: dict[str, dict[str, float]]) -> SpanConsensus:  # fmt: skip
    """Spans from each token's most probable tag (first of equals: ``O`` wins a tie); an item's confidence is its
    least sure token's probability."""
    names = tag_names(crowd.types)
    best = posterior.argmax(axis=1)
    sure = posterior.max(axis=1) if posterior.size else np.zeros(0)
    labels: dict[str, tuple[Span, ...]] = {}
    confidence: dict[str, float] = {}
    for item, (first, end) in zip(crowd.items, votes.item_tokens, strict=True):
        tags = [names[t] for t in best[first:end]]
        labels[item.item_id] = tuple(sorted(spans_from_bio(tags, item.tokens)))
        confidence[item.item_id] = float(sure[first:end].min()) if end > first else 1.0
    n_annotators = {item.item_id: len(item.marks) for item in crowd.items}
    return SpanConsensus(method, labels, confidence, n_annotators, quality)


def _counts(votes: TokenVotes) -> FloatArray:
    counts = np.zeros((votes.n_tokens, votes.n_tags))
    np.add.at(counts, (votes.token, votes.tag), 1.0)
    return counts


def token_majority(crowd: SpanCrowd) -> SpanConsensus:
    """Each token's most voted tag; confidence: the least sure token's vote share."""
    votes = token_votes(crowd)
    counts = _counts(votes)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return _decide(crowd, votes, shares, "token_majority", {})


def token_dawid_skene(crowd: SpanCrowd, max_iter: int = DS_MAX_ITER) -> SpanConsensus:
    """Dawid-Skene over tokens: per labeler a confusion matrix over the tags, class priors, EM from the
    majority's shares. Quality reported: each labeler's estimated tag accuracy (prior-weighted diagonal)."""
    votes = token_votes(crowd)
    n_labelers, k = len(crowd.labelers), votes.n_tags
    counts = _counts(votes)
    posterior = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    # one row per (labeler, tag given) pair: A[token, labeler * k + tag] counts the votes
    key = votes.labeler * k + votes.tag
    a = sparse.csr_matrix((np.ones(len(key)), (votes.token, key)), shape=(votes.n_tokens, n_labelers * k))
    at = a.T.tocsr()
    confusion = np.full((n_labelers, k, k), 1.0 / k)
    prior = np.full(k, 1.0 / k)
    for _ in range(max_iter):
        # M-step: confusion[l, true, given] from the posterior mass of the tokens l tagged `given`
        mass = np.asarray(at @ posterior).reshape(n_labelers, k, k).transpose(0, 2, 1) + DS_SMOOTHING
        confusion = mass / mass.sum(axis=2, keepdims=True)
        prior = (posterior.sum(axis=0) + DS_SMOOTHING) / (votes.n_tokens + DS_SMOOTHING * k)
        # E-step: log P(true) + sum over the token's votes of log confusion[l, true, given]
        table = np.log(confusion).transpose(0, 2, 1).reshape(n_labelers * k, k)
        log_post = np.asarray(a @ table) + np.log(prior)
        log_post -= log_post.max(axis=1, keepdims=True)
        updated = np.exp(log_post)
        updated /= updated.sum(axis=1, keepdims=True)
        change = float(np.abs(updated - posterior).max()) if updated.size else 0.0
        posterior = updated
        if change < DS_TOLERANCE:
            break
    quality = {name: {"tag_accuracy": round(float(prior @ np.diag(confusion[i])), 4)}
               for i, name in enumerate(crowd.labelers)}  # fmt: skip
    return _decide(crowd, votes, posterior, "token_dawid_skene", quality)
