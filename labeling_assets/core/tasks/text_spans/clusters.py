"""Matching spans across labelers: each item's marks grouped into clusters, one candidate entity each.

Marks that overlap (share a token) are one group; where no labeler has two marks in a group (the common case) the
group is one cluster. Otherwise (one labeler split what another marked as one, or a long cut reached the next
entity) the group is split by assignment: the labeler with the most marks there seeds one cluster per mark, and
each other labeler's marks are assigned to clusters one-to-one by the Hungarian method on token overlap (IoU);
a mark without an overlapping free cluster starts its own. A cluster then holds at most one mark per labeler.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from labeling_assets.core.tasks.text_spans.votes import ItemVotes, TokenSpan


@dataclass(frozen=True)
class Cluster:
    """Marks of one candidate entity of an item: labeler -> its mark."""

    item: int  # index into SpanCrowd.items
    marks: dict[str, TokenSpan]


def iou(a: TokenSpan, b: TokenSpan) -> float:
    """Token overlap of two marks over their union (0 when they share no token)."""
    inter = min(a.end, b.end) - max(a.first, b.first)
    return 0.0 if inter <= 0 else inter / (max(a.end, b.end) - min(a.first, b.first))


def _groups(item: ItemVotes) -> list[list[tuple[str, TokenSpan]]]:
    """The item's marks in groups of overlapping ones (a sweep by start)."""
    marks = sorted(((m.first, m.end, name, m) for name, ms in item.marks.items() for m in ms), key=lambda x: x[:3])
    groups: list[list[tuple[str, TokenSpan]]] = []
    reach = -1
    for first, end, name, mark in marks:
        if first >= reach:
            groups.append([])
        groups[-1].append((name, mark))
        reach = max(reach, end)
    return groups


def _split(group: list[tuple[str, TokenSpan]]) -> list[dict[str, TokenSpan]]:
    by_labeler: dict[str, list[TokenSpan]] = {}
    for name, mark in group:
        by_labeler.setdefault(name, []).append(mark)
    order = sorted(by_labeler, key=lambda name: (-len(by_labeler[name]), name))
    clusters: list[dict[str, TokenSpan]] = [{order[0]: m} for m in by_labeler[order[0]]]
    for name in order[1:]:
        marks = by_labeler[name]
        score = np.array([[np.mean([iou(m, other) for other in c.values()]) for c in clusters] for m in marks])
        rows, cols = linear_sum_assignment(-score)
        placed = set()
        for r, c in zip(rows, cols, strict=True):
            if score[r, c] > 0:
                clusters[c][name] = marks[r]
                placed.add(r)
        clusters.extend({name: m} for r, m in enumerate(marks) if r not in placed)
    return clusters


def item_clusters(items: list[ItemVotes]) -> list[Cluster]:
    """Every item's clusters, items in order, clusters by their first mark's start."""
    found = []
    for index, item in enumerate(items):
        for group in _groups(item):
            names = [name for name, _ in group]
            if len(set(names)) == len(names):
                found.append(Cluster(index, dict(group)))
            else:
                found.extend(Cluster(index, marks) for marks in _split(group))
    return found
