"""Store reads of the multi-label training chain: label sets as indicator rows, per-class soft targets.

A multi-label dataset manifest holds each item's label set (a sorted list); consensus rows hold
``probabilities`` = {class: P(class present)} (per-class marginals, not summing to 1). Errors are plain
exceptions; the assets turn them into ``dg.Failure``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from labeling_assets.core.label_sets import LabelSetError, label_set, to_indicator
from labeling_assets.core.store.datasets import StoredTargets, UnknownLabels, active_consensus, stored_gold
from labeling_assets.core.store.schema import LabelStore, latest_consensus_query

# Consensus methods whose per-class probabilities are a posterior (EM over labelers' sensitivity and
# specificity); majority stores vote shares.
POSTERIOR_PREFIX = "dawid_skene"


def label_set_indicator(labels: Iterable[Any], classes: Sequence[str]) -> npt.NDArray[np.uint8]:
    """The (n, K) 0/1 matrix of dataset label sets (JSON text or lists; [] is the empty set).

    Raises:
        UnknownLabels: a label is not a set of the project's classes.
    """
    sets = []
    for value in labels:
        parsed = json.loads(value) if isinstance(value, str) and value.startswith("[") else value
        try:
            sets.append(label_set(parsed, classes))
        except LabelSetError as exc:
            raise UnknownLabels(f"label {value!r} is not a label set of {list(classes)}: {exc}") from exc
    return to_indicator(sets, classes)


def stored_marginal_targets(
    store: LabelStore, item_ids: list[str], indicator: npt.NDArray[Any], classes: list[str]
) -> StoredTargets:
    """The stored per-class consensus probabilities of ``item_ids`` as an (n, K) array in [0, 1].

    An item's probabilities are used only when its latest consensus set is still its dataset set (a later
    relabel would contradict the set it is versioned with) and they are probabilities of known classes;
    a class missing from the stored mapping takes its 0/1 from the set. Every other item keeps its 0/1
    row and is counted missing.
    """
    latest = latest_consensus_query().subquery()
    rows = store.fetch(sa.select(latest.c.item_id, latest.c.label, latest.c.method, latest.c.probabilities))
    by_item = {r["item_id"]: r for r in rows}
    targets = np.asarray(indicator, dtype=np.float32).copy()
    missing = not_posterior = 0
    for i, item in enumerate(item_ids):
        row = by_item.get(item)
        if row is None or (vector := _marginals(row, classes, targets[i])) is None:
            missing += 1
            continue
        targets[i] = vector
        not_posterior += not str(row["method"]).startswith(POSTERIOR_PREFIX)
    return StoredTargets(targets, missing, not_posterior)


def _marginals(
    row: dict[str, Any], classes: list[str], hard: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32] | None:
    probs = row.get("probabilities")
    if isinstance(probs, str):
        probs = json.loads(probs)
    if not isinstance(probs, dict) or not set(map(str, probs)) <= set(classes):
        return None
    label = json.loads(row["label"]) if isinstance(row["label"], str) else row["label"]
    try:
        current = to_indicator([label_set(label, classes)], classes)[0]
    except LabelSetError:
        return None
    if not np.array_equal(current.astype(np.float32), hard):
        return None
    values = {str(k): v for k, v in probs.items()}
    vector = np.array([float(values.get(c, hard[k])) for k, c in enumerate(classes)], dtype=np.float64)
    if not np.all(np.isfinite(vector)) or (vector < 0).any() or (vector > 1).any():
        return None
    return vector.astype(np.float32)


def consensus_set_examples(store: LabelStore, classes: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(uri, label set) of active items whose latest consensus is a set of known classes, by item id."""
    labeled: list[tuple[str, list[str]]] = []
    for row in active_consensus(store):
        label = (
            json.loads(row["label"])
            if isinstance(row["label"], str) and row["label"].startswith("[")
            else row["label"]
        )
        try:
            labeled.append((str(row["uri"]), label_set(label, classes)))
        except LabelSetError:
            continue  # a single class, or a set naming a class since removed: not a set example
    return labeled


def gold_label_sets(
    store: LabelStore, item_ids: Sequence[str], classes: Sequence[str]
) -> list[list[str] | None]:
    """Per item, its hidden gold set; None when it is not gold or its gold answer is not a set of
    ``classes`` (a single class, a class since removed)."""
    gold = stored_gold(store, item_ids)
    found: list[list[str] | None] = []
    for item in item_ids:
        try:
            found.append(label_set(gold[item], classes) if item in gold else None)
        except LabelSetError:
            found.append(None)
    return found
