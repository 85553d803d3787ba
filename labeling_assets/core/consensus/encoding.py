"""Integer-coded annotations, and the result every aggregation method returns.

Shared by the methods (:mod:`.methods`, :mod:`.dawid_skene`, :mod:`.crowdlab`): the annotations are
validated and coded once, and each method hands back class codes and probabilities that
:func:`build_result` turns into per-item labels and per-labeler quality.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

# Class codes (one per annotation or item) and float scores (probabilities, counts) of the methods.
Codes = NDArray[np.int64]
Floats = NDArray[np.float64]
# Out-of-sample probabilities as callers pass them: an array in sorted item_id order, or a frame by item_id.
PredProbs = NDArray[Any] | pd.DataFrame


class ConsensusInputError(ValueError):
    """The annotations (or pred_probs) cannot be aggregated as given; the message says why."""


@dataclass(frozen=True)
class ConsensusResult:
    """Everything an aggregation produced.

    Attributes:
        labels: one row per item, sorted by item_id: ``item_id, label, confidence, n_annotators,
            agreement`` (agreement = share of the item's annotators who chose the consensus label).
        labeler_quality: one row per labeler: ``labeler_id, n_labels, quality, agreement_with_consensus``.
            ``quality`` is the method's estimate of the labeler's accuracy (Dawid-Skene: mean posterior
            probability that their labels are right; majority: mean vote share of their labels;
            crowdlab: cleanlab's annotator_quality).
        method: the method that ran (never ``auto``).
        classes: the class order used by ``probabilities`` and ``confusion``.
        notes: human-readable remarks (why ``auto`` chose the method, dropped duplicates, convergence).
        probabilities: (n_items, n_classes) class probabilities per item (None for crowdlab).
        confusion: (n_labelers, n_classes, n_classes) confusion matrices, row = true class
            (Dawid-Skene only).
        iterations: EM iterations run (Dawid-Skene only).
        scoreboard: the bake-off that ``auto`` ran on gold items (one row per method: ``method, n_gold,
            correct, accuracy, ci_low, ci_high, chosen``), None when no bake-off ran.
    """

    labels: pd.DataFrame
    labeler_quality: pd.DataFrame
    method: str
    classes: list[Any]
    notes: list[str] = field(default_factory=list)
    probabilities: Floats | None = None
    confusion: Floats | None = None
    iterations: int | None = None
    scoreboard: pd.DataFrame | None = None


class CodedVotes:
    """The counts of integer-coded votes (single-label :class:`Encoded`, multi-label ``EncodedSets``)."""

    item_ids: NDArray[Any]
    labeler_ids: NDArray[Any]
    classes: list[Any]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_labelers(self) -> int:
        return len(self.labeler_ids)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class Encoded(CodedVotes):
    """Integer-coded annotations."""

    item: Codes  # item code per annotation (0..n_items-1, codes follow sorted item ids)
    labeler: Codes
    label: Codes
    item_ids: NDArray[Any]
    labeler_ids: NDArray[Any]
    classes: list[Any]
    notes: list[str]


def sorted_unique(values: Sequence[Any] | pd.Series | NDArray[Any]) -> list[Any]:
    unique = [v.item() if isinstance(v, np.generic) else v for v in pd.Series(values).unique()]
    try:
        return sorted(unique)
    except TypeError:  # mixed types (e.g. 3 and "3"): a stable order is all that matters
        return sorted(unique, key=lambda v: (type(v).__name__, str(v)))


def encode(annotations: pd.DataFrame, classes: Sequence[Any] | None) -> Encoded:
    missing = {"item_id", "labeler_id", "label"} - set(annotations.columns)
    if missing:
        raise ConsensusInputError(
            f"annotations lack column(s) {sorted(missing)}; need item_id, labeler_id, label"
        )
    frame = annotations[["item_id", "labeler_id", "label"]]
    if len(frame) == 0:
        raise ConsensusInputError("no annotations to aggregate")
    nulls = frame.isna().any(axis=1)
    if nulls.any():
        raise ConsensusInputError(
            f"{int(nulls.sum())} annotation(s) have a null item_id, labeler_id or label "
            f"(first at row {frame.index[nulls.to_numpy()][0]!r}); drop or fix them first"
        )
    notes: list[str] = []
    duplicated = frame.duplicated(["item_id", "labeler_id"], keep="last")
    if duplicated.any():
        notes.append(
            f"{int(duplicated.sum())} repeated (item, labeler) annotation(s) dropped; the last one counts"
        )
        frame = frame[~duplicated.to_numpy()]

    # Factorize once, then map the few distinct labels to class positions (fast on 10^6 rows).
    seen_codes, seen = pd.factorize(frame["label"])
    seen_labels = [v.item() if isinstance(v, np.generic) else v for v in seen]
    class_list = list(classes) if classes is not None else sorted_unique(seen_labels)
    if not class_list:
        raise ConsensusInputError("classes is empty")
    position = {c: i for i, c in enumerate(class_list)}
    if len(position) != len(class_list):
        raise ConsensusInputError(f"classes contain duplicates: {class_list}")
    unknown = [v for v in seen_labels if v not in position]
    if unknown:
        raise ConsensusInputError(
            f"label(s) {sorted_unique(unknown)[:5]} are not in classes {class_list}; "
            "pass classes=[...] with every class, and labels as the same type (e.g. '3' vs 3)"
        )
    label_codes = np.asarray([position[v] for v in seen_labels], dtype=np.int64)[seen_codes]

    item_codes, item_ids = pd.factorize(frame["item_id"], sort=True)
    labeler_codes, labeler_ids = pd.factorize(frame["labeler_id"], sort=True)
    return Encoded(
        item=item_codes.astype(np.int64),
        labeler=labeler_codes.astype(np.int64),
        label=label_codes.astype(np.int64),
        item_ids=np.asarray(item_ids),
        labeler_ids=np.asarray(labeler_ids),
        classes=class_list,
        notes=notes,
    )


def encode_gold(enc: Encoded, gold: Mapping[Any, Any] | pd.Series | None, notes: list[str]) -> tuple[Codes, Codes]:
    """(item codes, class codes) of the gold items that have annotations; gold of other items is noted."""
    if gold is None:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    series = gold if isinstance(gold, pd.Series) else pd.Series(dict(gold), dtype=object)
    position = {c: i for i, c in enumerate(enc.classes)}
    labels = [v.item() if isinstance(v, np.generic) else v for v in series.to_numpy()]
    unknown = [v for v in labels if v not in position]
    if unknown:
        raise ConsensusInputError(
            f"gold label(s) {sorted_unique(unknown)[:5]} are not in classes {enc.classes}; "
            "gold must use the same class names (and type) as the annotations"
        )
    codes = pd.Index(enc.item_ids).get_indexer(series.index)
    known = codes >= 0
    if (~known).any():
        notes.append(f"{int((~known).sum())} gold item(s) have no annotations here and were not used")
    classes = np.asarray([position[v] for v in labels], dtype=np.int64)
    return codes[known].astype(np.int64), classes[known]


def vote_counts(enc: Encoded) -> Floats:
    k = enc.n_classes
    return (
        np.bincount(enc.item * k + enc.label, minlength=enc.n_items * k)
        .reshape(enc.n_items, k)
        .astype(np.float64)
    )



def build_result(
    enc: Encoded,
    method: str,
    codes: Codes,
    confidence: Floats,
    probs: Floats | None,
    notes: list[str],
    *,
    confusion: Floats | None = None,
    iterations: int | None = None,
    scoreboard: pd.DataFrame | None = None,
) -> ConsensusResult:
    n_annotators = np.bincount(enc.item, minlength=enc.n_items)
    agrees = (enc.label == codes[enc.item]).astype(np.float64)
    agreement = np.bincount(enc.item, weights=agrees, minlength=enc.n_items) / n_annotators
    class_array = np.empty(enc.n_classes, dtype=object)
    class_array[:] = enc.classes
    labels = pd.DataFrame(
        {
            "item_id": enc.item_ids,
            "label": class_array[codes],
            "confidence": np.clip(confidence.astype(np.float64), 0.0, 1.0),
            "n_annotators": n_annotators.astype(np.int64),
            "agreement": agreement,
        }
    )
    labels["label"] = labels["label"].infer_objects()

    n_labels = np.bincount(enc.labeler, minlength=enc.n_labelers)
    # Quality = mean probability (under the method's per-item class probabilities) that the labeler's
    # own labels are right; crowdlab replaces it with cleanlab's annotator_quality.
    if probs is not None:
        quality = (
            np.bincount(enc.labeler, weights=probs[enc.item, enc.label], minlength=enc.n_labelers) / n_labels
        )
    else:
        quality = np.full(enc.n_labelers, np.nan)
    labeler_quality = pd.DataFrame(
        {
            "labeler_id": enc.labeler_ids,
            "n_labels": n_labels.astype(np.int64),
            "quality": quality,
            "agreement_with_consensus": np.bincount(enc.labeler, weights=agrees, minlength=enc.n_labelers)
            / n_labels,
        }
    )
    return ConsensusResult(
        labels=labels,
        labeler_quality=labeler_quality,
        method=method,
        classes=enc.classes,
        notes=notes,
        probabilities=probs,
        confusion=confusion,
        iterations=iterations,
        scoreboard=scoreboard,
    )


def json_label(value: Any) -> Any:
    """A label as plain Python (numpy scalars become int/str), so it can be stored as JSON."""
    return value.item() if isinstance(value, np.generic) else value


def probabilities_by_item(result: ConsensusResult) -> dict[str, dict[str, float]] | None:
    """Each item's class probabilities (class name -> probability) of ``result``; None when it has none.

    Stored with the consensus row so training can use them as soft targets (crowdlab has none).
    """
    if result.probabilities is None:
        return None
    names = [str(json_label(c)) for c in result.classes]
    return {
        str(item): {name: round(float(p), 6) for name, p in zip(names, row, strict=True)}
        for item, row in zip(result.labels["item_id"], result.probabilities, strict=True)
    }
