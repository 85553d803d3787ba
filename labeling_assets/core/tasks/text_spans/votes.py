"""Span answers as the aggregators read them: per item its tokens, and per labeler the token ranges marked.

Consensus works on tokens (:func:`~.spans.tokenize`): a span becomes the tokens it touches, so "Acme Corp" and
"Acme Corp." (the full stop is a token of its own) differ by one token and a selection cut mid-word covers the
word. The decided spans are given back at their tokens' character offsets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from labeling_assets.core.tasks.text_spans.spans import Span, token_range, tokenize


@dataclass(frozen=True)
class SpanVote:
    """One labeler's answer on one item: its spans (``()``: "no entity")."""

    item_id: str
    labeler_id: str
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class TokenSpan:
    """A span as token indices ``[first, end)`` and an entity-type index."""

    first: int
    end: int
    type: int


@dataclass(frozen=True)
class ItemVotes:
    """One item: its tokens, and each of its labelers' spans as token spans."""

    item_id: str
    tokens: list[tuple[int, int]]
    marks: dict[str, list[TokenSpan]]  # labeler -> spans (every labeler who answered, [] for "no entity")


@dataclass(frozen=True)
class SpanCrowd:
    """The answers of a crowd, item by item (sorted by id), over ``types``; ``labelers`` sorted."""

    items: list[ItemVotes]
    types: list[str]
    labelers: list[str]


def span_crowd(votes: Sequence[SpanVote], texts: Mapping[str, str], types: Sequence[str]) -> SpanCrowd:
    """The votes laid out for aggregation. An item's text must be in ``texts``; a labeler's later vote on the
    same item replaces the earlier one; a span of a type not in ``types``, or on no token, is not a mark."""
    index = {t: i for i, t in enumerate(types)}
    by_item: dict[str, dict[str, tuple[Span, ...]]] = {}
    for vote in votes:
        by_item.setdefault(vote.item_id, {})[vote.labeler_id] = vote.spans
    missing = sorted(set(by_item) - set(texts))
    if missing:
        raise KeyError(f"no text for {len(missing)} voted items, e.g. {missing[:3]}")
    items = []
    for item_id in sorted(by_item):
        tokens = tokenize(texts[item_id])
        marks: dict[str, list[TokenSpan]] = {}
        for labeler, spans in sorted(by_item[item_id].items()):
            marked = []
            for span in spans:
                where = token_range(span, tokens)
                if where is not None and span.label in index:
                    marked.append(TokenSpan(where[0], where[1], index[span.label]))
            marks[labeler] = sorted(marked, key=lambda s: (s.first, s.end, s.type))
        items.append(ItemVotes(item_id, tokens, marks))
    labelers = sorted({labeler for item in items for labeler in item.marks})
    return SpanCrowd(items, list(types), labelers)


def to_spans(marks: Sequence[TokenSpan], tokens: Sequence[tuple[int, int]], types: Sequence[str]) -> tuple[Span, ...]:
    """Token spans back at their tokens' character offsets."""
    return tuple(sorted(Span(tokens[m.first][0], tokens[m.end - 1][1], types[m.type]) for m in marks))


@dataclass(frozen=True)
class SpanConsensus:
    """What a span aggregation decides: per item its spans (``()``: no entity) and a confidence in [0, 1] that
    the whole item is right, and what it learned of each labeler (plain numbers, by name)."""

    method: str
    labels: dict[str, tuple[Span, ...]]
    confidence: dict[str, float]
    n_annotators: dict[str, int]
    labeler_quality: dict[str, dict[str, float]]
