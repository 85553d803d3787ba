"""Label aggregation: one label per item from several labelers, plus an estimate of each labeler's quality.

Input is long format (``item_id, labeler_id, label``; one row per annotation). :func:`aggregate` returns
the per-item labels (the stable API of DESIGN §5); :func:`aggregate_full` returns everything a caller may
want (per-labeler quality, confusion matrices, posteriors, the method actually used and why).

Methods:

- ``majority``: vote share per class; ties go to the class that is more frequent over all annotations,
  then to the class listed first (so the same input always gives the same output).
- ``dawid_skene``: EM over one confusion matrix per labeler (Dawid & Skene 1979), initialized from the
  vote shares. Each EM step is two sparse products over the annotations (no Python loop over
  annotations), so 10^6 annotations take about a second. Confusion rows are MAP estimates under a prior
  centred on a "one coin" version of the same labeler (their overall accuracy, errors spread the way
  their errors go), which keeps a labeler with one label or a class that nobody chose from producing
  zeros or NaNs, and lets sparse labelers be judged on few numbers instead of k^2.
- ``crowdlab``: cleanlab's CROWDLAB (``cleanlab.multiannotator.get_label_quality_multiannotator``),
  which combines annotators with out-of-sample model probabilities ``pred_probs``.
- ``auto``: ``crowdlab`` when ``pred_probs`` is given, ``dawid_skene`` when there is enough overlap to
  estimate confusion matrices, else ``majority``; the choice and its reason are in ``notes``.

Output rows are sorted by ``item_id``; an ``np.ndarray`` ``pred_probs`` must follow that order (a
``pd.DataFrame`` indexed by ``item_id`` with one column per class is matched by id instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.crowdlab import crowdlab
from labeling_assets.core.consensus.dawid_skene import dawid_skene
from labeling_assets.core.consensus.encoding import (
    Codes,
    ConsensusInputError,
    ConsensusResult,
    Encoded,
    Floats,
    PredProbs,
    build_result,
    encode,
    vote_counts,
)

__all__ = ["AUTO_MIN_OVERLAP_ITEMS", "METHODS", "ConsensusInputError", "ConsensusResult", "aggregate", "aggregate_full"]

METHODS = ("auto", "majority", "dawid_skene", "crowdlab")

# auto picks Dawid-Skene only with at least this many items labeled by two or more labelers: below
# that, per-labeler confusion matrices are mostly prior and majority vote is as good and easier to read.
AUTO_MIN_OVERLAP_ITEMS = 10

def aggregate(
    annotations: pd.DataFrame,
    method: str = "auto",
    pred_probs: PredProbs | None = None,
    *,
    classes: Sequence[Any] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """One consensus label per item.

    Args:
        annotations: long format with columns ``item_id, labeler_id, label`` (label: class name or int).
        method: ``auto`` | ``majority`` | ``dawid_skene`` | ``crowdlab``.
        pred_probs: out-of-sample class probabilities per item (required by ``crowdlab``).
        classes: the full class list, so that classes nobody chose still exist (default: the sorted
            labels seen).
        **options: method options, see :func:`aggregate_full`.

    Returns:
        One row per item sorted by item_id: ``item_id, label, confidence, n_annotators, agreement``.
        Per-labeler quality estimates come from :func:`aggregate_full`.
    """
    return aggregate_full(annotations, method, pred_probs, classes=classes, **options).labels


def aggregate_full(
    annotations: pd.DataFrame,
    method: str = "auto",
    pred_probs: PredProbs | None = None,
    *,
    classes: Sequence[Any] | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    prior_strength: float = 10.0,
    smoothing: float = 0.01,
) -> ConsensusResult:
    """Aggregate annotations and estimate labeler quality; see the module docstring for the methods.

    Args:
        annotations: long format with columns ``item_id, labeler_id, label``. If a labeler labeled an
            item more than once, the last row wins (noted in ``notes``).
        method: ``auto`` | ``majority`` | ``dawid_skene`` | ``crowdlab``.
        pred_probs: out-of-sample class probabilities (n_items, n_classes) for ``crowdlab``; an array
            follows the sorted item_id order, a DataFrame is matched on its index (item_id).
        classes: the full class list (default: the sorted labels seen).
        max_iter: Dawid-Skene EM iteration cap.
        tol: Dawid-Skene stops when the log-likelihood improves by less than ``tol`` (relative).
        prior_strength: pseudo-labels per confusion row drawn from the labeler's "one coin" version
            (overall accuracy, and where their errors go; Dawid-Skene).
        smoothing: uniform pseudo-count added to every confusion cell and class prior (Dawid-Skene).

    Returns:
        A :class:`ConsensusResult`.
    """
    if method not in METHODS:
        raise ConsensusInputError(
            f"unknown consensus method {method!r}; expected one of {', '.join(METHODS)}"
        )
    enc = encode(annotations, classes)
    notes = list(enc.notes)

    if method == "auto":
        method, reason = _choose_method(enc, pred_probs)
        notes.append(f"auto chose {method}: {reason}")

    if method == "majority":
        votes = vote_counts(enc)
        probs = votes / votes.sum(axis=1, keepdims=True)
        codes = _argmax_with_tiebreak(votes, _class_priority(enc))
        return build_result(enc, "majority", codes, probs[np.arange(enc.n_items), codes], probs, notes)

    if method == "dawid_skene":
        probs, confusion, iterations, converged = dawid_skene(
            enc, max_iter=max_iter, tol=tol, prior_strength=prior_strength, smoothing=smoothing
        )
        notes.append(
            f"Dawid-Skene {'converged' if converged else 'stopped without converging'} after {iterations} EM iterations"
        )
        codes = _argmax_with_tiebreak(probs, _class_priority(enc))
        return build_result(
            enc,
            "dawid_skene",
            codes,
            probs[np.arange(enc.n_items), codes],
            probs,
            notes,
            confusion=confusion,
            iterations=iterations,
        )

    return crowdlab(enc, pred_probs, notes)


def _choose_method(enc: Encoded, pred_probs: PredProbs | None) -> tuple[str, str]:
    per_item = np.bincount(enc.item, minlength=enc.n_items)
    overlap_items = int((per_item >= 2).sum())
    if enc.n_labelers < 2 or overlap_items == 0:
        why = "one labeler" if enc.n_labelers < 2 else "no item has two annotations"
        if pred_probs is not None:
            return "majority", f"pred_probs given but CROWDLAB needs overlapping annotators ({why})"
        return "majority", f"{why}: nothing to learn labeler reliability from"
    if pred_probs is not None:
        return "crowdlab", "out-of-sample pred_probs given (CROWDLAB uses the model and the annotators)"
    if overlap_items < AUTO_MIN_OVERLAP_ITEMS:
        return "majority", (
            f"only {overlap_items} item(s) have two or more annotations "
            f"(< {AUTO_MIN_OVERLAP_ITEMS}): too little overlap to estimate confusion matrices"
        )
    return "dawid_skene", (
        f"{enc.n_labelers} labelers and {overlap_items} items with overlapping annotations, no pred_probs"
    )



def _class_priority(enc: Encoded) -> Codes:
    """Tie-break rank per class: higher = preferred. More annotations overall first, then listed first."""
    totals = np.bincount(enc.label, minlength=enc.n_classes)
    order = np.lexsort((np.arange(enc.n_classes), -totals))  # most frequent, then lowest index
    priority = np.empty(enc.n_classes, dtype=np.int64)
    priority[order] = np.arange(enc.n_classes)[::-1]
    return priority


def _argmax_with_tiebreak(scores: Floats, priority: Codes) -> Codes:
    best = scores.max(axis=1, keepdims=True)
    # Relative tolerance so that float noise in EM posteriors does not decide a genuine tie.
    is_best = scores >= best - 1e-12 * np.maximum(np.abs(best), 1.0)
    codes: Codes = np.where(is_best, priority[None, :], -1).argmax(axis=1)
    return codes


