"""Span consensus per item: one entry point over the span aggregators.

``auto`` is the span-level model (:mod:`.span_model`): it beat token majority and token Dawid-Skene on every
crowd mix of ``benchmarks/text_spans.py`` (docs/text.md); the token baselines stay selectable by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from labeling_assets.core.tasks.text_spans.span_model import span_em
from labeling_assets.core.tasks.text_spans.spans import Span
from labeling_assets.core.tasks.text_spans.token_consensus import token_dawid_skene, token_majority
from labeling_assets.core.tasks.text_spans.votes import SpanConsensus, SpanVote, span_crowd

METHODS = ("auto", "span_em", "token_majority", "token_dawid_skene")


def aggregate_spans(
    votes: Sequence[SpanVote], texts: Mapping[str, str], types: Sequence[str], method: str = "auto", *,
    gold: Mapping[str, Sequence[Span]] | None = None, allow_overlap: bool = False,
) -> SpanConsensus:  # fmt: skip
    """Each voted item's spans by ``method`` (one of :data:`METHODS`), with a per-item confidence. A voted
    ``gold`` item's answer is its gold spans (confidence 1) whatever the method; only ``span_em`` also learns the
    labelers' habits from them (the token baselines are kept as their papers define them)."""
    if method not in METHODS:
        raise ValueError(f"unknown span consensus method {method!r}; choose one of {', '.join(METHODS)}")
    crowd = span_crowd(votes, texts, types)
    gold = gold or {}
    if method in ("auto", "span_em"):
        return span_em(crowd, gold=gold, allow_overlap=allow_overlap)
    result = token_majority(crowd) if method == "token_majority" else token_dawid_skene(crowd)
    for item in result.labels.keys() & gold.keys():
        result.labels[item], result.confidence[item] = tuple(sorted(gold[item])), 1.0
    return result
