"""Train/val/test splits of a span dataset, stratified on which entity types an item holds.

An item's stratification key is the set of entity types among its spans (``[]``: no entity), so the
multi-label iterative stratification (``core.dataset.iterative_stratification``) spreads every type, and the
items without any entity, over the splits in proportion; frozen splits stay and groups stay whole, as for
classes. How many spans of a type an item holds does not count: a text with five people weighs as one with one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from labeling_assets.core.dataset.iterative_stratification import assign_label_set_splits
from labeling_assets.core.dataset.splits import SplitAssignment, SplitRatios
from labeling_assets.core.label_sets import NONE_OF_THESE
from labeling_assets.core.tasks.text_spans.spans import Span


def types_present(spans: Sequence[Span]) -> list[str]:
    """The stratification key of an item: the sorted entity types among its spans."""
    return sorted({s.label for s in spans})


def assign_span_splits(
    labels: Mapping[str, Sequence[Span]], types: Sequence[str], *, groups: Mapping[str, str] | None = None,
    existing: Mapping[str, str] | None = None, ratios: SplitRatios | None = None, seed: int = 0,
) -> SplitAssignment:  # fmt: skip
    """Each item's split (the frame's ``label`` is its key, :func:`types_present`); ``groups``: item -> group
    key (a group's items share a split); ``existing``: item -> split already assigned (frozen)."""
    if NONE_OF_THESE in types:
        raise ValueError(f"an entity type is named {NONE_OF_THESE!r}, which the splitter reads as the empty set")
    items = pd.DataFrame({"item_id": list(labels), "label": [types_present(s) for s in labels.values()]})
    if groups is not None:
        items["group_key"] = [groups.get(item) for item in labels]
    return assign_label_set_splits(items, types, existing=existing, ratios=ratios, seed=seed)
