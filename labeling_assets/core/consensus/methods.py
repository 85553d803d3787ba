"""Label aggregation: one label per item from several labelers, plus an estimate of each labeler's quality.

Input is long format (``item_id, labeler_id, label``; one row per annotation). :func:`aggregate` returns
the per-item labels (the stable API of DESIGN §5); :func:`aggregate_full` returns everything a caller may
want (per-labeler quality, confusion matrices, posteriors, the method actually used and why).

Methods:

- ``majority``: vote share per class; a tie goes to the class the crowd answers least often overall,
  then to the class listed first (so the same input always gives the same output). The class a crowd
  over-answers (a common default answer, a biased labeler's favourite) is the one whose votes say least.
- ``dawid_skene``: EM over one confusion matrix per labeler (Dawid & Skene 1979), initialized from the
  vote shares. Each EM step is two sparse products over the annotations (no Python loop over
  annotations), so 10^6 annotations take about a second. Confusion rows are MAP estimates under a prior
  centred on a "one coin" version of the same labeler (their overall accuracy, errors spread the way
  their errors go), which keeps a labeler with one label or a class that nobody chose from producing
  zeros or NaNs, and lets sparse labelers be judged on few numbers instead of k^2. Confusions and
  the class prior are fitted only on items with two or more annotations, or gold, and items answered
  alone are decided by that fit (:mod:`.dawid_skene`); a labeler nobody overlapped with yet is a typical
  labeler of the crowd. With no such item at all the model is not identified, and every Dawid-Skene
  method runs as majority vote (noted).
- ``dawid_skene_pooled``: the same EM, with each labeler's confusion matrix pulled toward the whole
  crowd's pooled confusion matrix instead (a shared class-dependent lean, as real crowds have).
- ``dawid_skene_weak``: the pooled prior at one pseudo-label per confusion row: each labeler's full
  confusion matrix mostly their own (close to crowd-kit's DawidSkene, which has no prior).
- ``dawid_skene_selected``: whichever of the three Dawid-Skene models predicts held-out answers best
  (:mod:`.selection`: log-likelihood of a held-out third of the answers, no gold needed); the result's
  ``method`` is the one used. On the three public real crowds the pooled prior wins this test, on
  simulated crowds whose labelers err each their own way the one-coin prior does. The weak prior, with
  the most free numbers, must beat the best of the others by two standard errors of the held-out score
  (:data:`.selection.CHALLENGER`); on no benchmark crowd has it yet.
- ``crowdlab``: cleanlab's CROWDLAB (``cleanlab.multiannotator.get_label_quality_multiannotator``),
  which combines annotators with out-of-sample model probabilities ``pred_probs``.
- ``auto``: first the no-gold rule: ``crowdlab`` when ``pred_probs`` is given, ``dawid_skene_selected``
  when there is enough overlap to estimate confusion matrices, else ``majority``. With at least
  ``MIN_GOLD_FOR_BAKEOFF`` annotated gold items, a bake-off scored on gold by cross-fitting
  (:mod:`.bakeoff`; CROWDLAB joins when ``pred_probs`` is given) replaces that choice only with a method
  significantly better on gold. The choice and its reason are in ``notes``.

Gold (``gold=``, item -> true label): the Dawid-Skene methods clamp gold items' posteriors to the gold
class in EM (semi-supervised Dawid-Skene); majority and CROWDLAB do not use it.

Calibration (``calibrate=``, default ``CALIBRATE``): with at least ``MIN_GOLD_FOR_CALIBRATION`` annotated
gold items, a Dawid-Skene method's posteriors are tempered by one temperature fitted on the gold items'
posteriors from a run without their gold (:mod:`.calibration`); the label never changes, only the
confidence and probabilities (noted). ``benchmarks/consensus_calibration.py`` measures whether it helps.

Output rows are sorted by ``item_id``; an ``np.ndarray`` ``pred_probs`` must follow that order (a
``pd.DataFrame`` indexed by ``item_id`` with one column per class is matched by id instead).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.bakeoff import BAKEOFF_METHODS, MIN_GOLD_FOR_BAKEOFF, cross_fit, winner
from labeling_assets.core.consensus.calibration import MIN_GOLD_FOR_CALIBRATION, fit_temperature, temper
from labeling_assets.core.consensus.crowdlab import crowdlab
from labeling_assets.core.consensus.dawid_skene import NO_OVERLAP, dawid_skene, has_overlap
from labeling_assets.core.consensus.encoding import (
    Codes,
    ConsensusInputError,
    ConsensusResult,
    Encoded,
    Floats,
    PredProbs,
    build_result,
    encode,
    encode_gold,
    vote_counts,
)
from labeling_assets.core.consensus.selection import CANDIDATES, Fit, select

__all__ = ["AUTO_MIN_OVERLAP_ITEMS", "METHODS", "ConsensusInputError", "ConsensusResult", "aggregate", "aggregate_full"]

METHODS = (
    "auto", "majority", "dawid_skene", "dawid_skene_pooled", "dawid_skene_weak", "dawid_skene_selected", "crowdlab"
)
SELECTED = "dawid_skene_selected"

# Pseudo-labels per confusion row drawn from the prior mean. The one-coin prior is one labeler's own
# summary, so it can be trusted more; the pooled prior is the whole crowd's, kept weak so that a labeler
# with enough labels still shows their own lean; the weak one barely pulls (a labeler's own confusion).
PRIOR_STRENGTH = {"dawid_skene": 10.0, "dawid_skene_pooled": 3.0, "dawid_skene_weak": 1.0}
_PRIOR_MEAN = {"dawid_skene": "one_coin", "dawid_skene_pooled": "pooled", "dawid_skene_weak": "pooled"}
_NO_GOLD: tuple[Codes, Codes] = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))

# auto picks Dawid-Skene only with at least this many items labeled by two or more labelers: below
# that, per-labeler confusion matrices are mostly prior and majority vote is as good and easier to read.
AUTO_MIN_OVERLAP_ITEMS = 10

# Temper Dawid-Skene posteriors on gold by default: on every real and simulated crowd of
# benchmarks/consensus_calibration.py it lowered the calibration error on held-out truth items (real
# crowds, 10% gold: ECE 0.20-0.33 -> 0.06-0.13), and it cannot change a label (docs/consensus.md has the figures).
CALIBRATE = True

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
        method: ``auto`` | ``majority`` | ``dawid_skene`` | ``dawid_skene_pooled`` |
            ``dawid_skene_weak`` | ``dawid_skene_selected`` | ``crowdlab``.
        pred_probs: out-of-sample class probabilities per item (required by ``crowdlab``).
        classes: the full class list, so that classes nobody chose still exist (default: the sorted
            labels seen).
        **options: method options, see :func:`aggregate_full` (e.g. ``gold={item_id: label}``).

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
    gold: Mapping[Any, Any] | pd.Series | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    prior_strength: float | None = None,
    smoothing: float = 0.01,
    calibrate: bool | None = None,
) -> ConsensusResult:
    """Aggregate annotations and estimate labeler quality; see the module docstring for the methods.

    Args:
        annotations: long format with columns ``item_id, labeler_id, label``. If a labeler labeled an
            item more than once, the last row wins (noted in ``notes``).
        method: ``auto`` | ``majority`` | ``dawid_skene`` | ``dawid_skene_pooled`` |
            ``dawid_skene_weak`` | ``dawid_skene_selected`` | ``crowdlab``.
        pred_probs: out-of-sample class probabilities (n_items, n_classes) for ``crowdlab``; an array
            follows the sorted item_id order, a DataFrame is matched on its index (item_id).
        classes: the full class list (default: the sorted labels seen).
        gold: known true labels (item_id -> label): clamped in Dawid-Skene's EM, and the basis of
            ``auto``'s bake-off when there are enough of them. Gold of items without annotations is noted
            and unused.
        max_iter: Dawid-Skene EM iteration cap.
        tol: Dawid-Skene stops when the log-likelihood improves by less than ``tol`` (relative).
        prior_strength: pseudo-labels per confusion row drawn from the prior mean (default per method:
            ``PRIOR_STRENGTH``).
        smoothing: uniform pseudo-count added to every confusion cell and class prior (Dawid-Skene).
        calibrate: temper a Dawid-Skene method's posteriors by a temperature fitted on gold (module
            docstring); None: ``CALIBRATE``.

    Returns:
        A :class:`ConsensusResult` (``scoreboard`` set when ``auto`` ran a bake-off).
    """
    if method not in METHODS:
        raise ConsensusInputError(
            f"unknown consensus method {method!r}; expected one of {', '.join(METHODS)}"
        )
    enc = encode(annotations, classes)
    notes = list(enc.notes)
    gold_codes = encode_gold(enc, gold, notes)
    options = {"max_iter": max_iter, "tol": tol, "prior_strength": prior_strength, "smoothing": smoothing}

    if method in (*_PRIOR_MEAN, SELECTED) and not has_overlap(enc.item, enc.n_items, gold_codes[0]):
        notes.append(f"{method} ran as majority: {NO_OVERLAP}")
        method = "majority"
    scoreboard = None
    if method == "auto":
        method, reason = _choose_method(enc, pred_probs)
        if method == SELECTED:
            method, why = _select(enc, options)
            reason = f"{reason}; {why}"
        scoreboard = _bakeoff(enc, pred_probs, gold_codes, options, default=method)
        if scoreboard is not None:
            default, method = method, winner(scoreboard)
            best = scoreboard.loc[scoreboard["chosen"]].iloc[0]
            reason = (
                f"bake-off on {int(best['n_gold'])} gold items, cross-fitted: {method} "
                f"{best['accuracy']:.1%} (95% CI {best['ci_low']:.1%}-{best['ci_high']:.1%}); "
                + (
                    f"kept the no-gold choice, no method beat it significantly ({reason})"
                    if method == default
                    else f"significantly better than the no-gold choice {default} "
                    f"(McNemar p={best['p_value']:.3f}, {reason})"
                )
            )
        notes.append(f"auto chose {method}: {reason}")
    elif method == SELECTED:
        method, why = _select(enc, options)
        notes.append(f"{SELECTED} chose {method}: {why}")
    if len(gold_codes[0]) and method not in _PRIOR_MEAN:
        notes.append(f"{method} does not use gold; {len(gold_codes[0])} gold item(s) ignored")
    result = _run(enc, method, pred_probs, notes, gold_codes, options)
    if CALIBRATE if calibrate is None else calibrate:
        result = _calibrated(enc, result, gold_codes, options)
    return result if scoreboard is None else replace(result, scoreboard=scoreboard)


def _calibrated(enc: Encoded, result: ConsensusResult, gold: tuple[Codes, Codes], options: dict[str, Any]) -> ConsensusResult:
    """The result with its posteriors tempered on gold (a Dawid-Skene method with enough gold), else as is."""
    if result.method not in _PRIOR_MEAN or result.probabilities is None:
        return result
    if len(gold[0]) < MIN_GOLD_FOR_CALIBRATION:
        result.notes.append(
            f"confidence not calibrated: {len(gold[0])} gold item(s), {MIN_GOLD_FOR_CALIBRATION} needed"
        )
        return result
    # Gold items' own posteriors are clamped to their gold class; the temperature is fitted on what the
    # model says about them without it.
    unclamped, _, _, _ = _dawid_skene(enc, result.method, options)
    temperature = fit_temperature(unclamped[gold[0]], gold[1])
    probs = temper(result.probabilities, temperature)
    probs[gold[0]] = result.probabilities[gold[0]]  # gold stays certain
    codes = pd.Index(enc.classes).get_indexer(result.labels["label"])
    labels = result.labels.assign(confidence=np.clip(probs[np.arange(enc.n_items), codes], 0.0, 1.0))
    result.notes.append(
        f"confidence calibrated on {len(gold[0])} gold items: posteriors tempered by T={temperature:.3g} "
        "(fitted on their posteriors without gold; labels unchanged)"
    )
    return replace(result, labels=labels, probabilities=probs)


def _run(
    enc: Encoded,
    method: str,
    pred_probs: PredProbs | None,
    notes: list[str],
    gold: tuple[Codes, Codes],
    options: dict[str, Any],
) -> ConsensusResult:
    if method == "majority":
        votes = vote_counts(enc)
        probs = votes / votes.sum(axis=1, keepdims=True)
        codes = _argmax_with_tiebreak(votes, _class_priority(enc))
        return build_result(enc, "majority", codes, probs[np.arange(enc.n_items), codes], probs, notes)
    if method in _PRIOR_MEAN:
        probs, confusion, iterations, converged = _dawid_skene(enc, method, options, gold if len(gold[0]) else None)
        notes.append(
            f"Dawid-Skene {'converged' if converged else 'stopped without converging'} after {iterations} EM iterations"
            + (f", {len(gold[0])} gold item(s) clamped" if len(gold[0]) else "")
        )
        codes = _argmax_with_tiebreak(probs, _class_priority(enc))
        return build_result(
            enc,
            method,
            codes,
            probs[np.arange(enc.n_items), codes],
            probs,
            notes,
            confusion=confusion,
            iterations=iterations,
        )
    return crowdlab(enc, pred_probs, notes)


def _dawid_skene(
    enc: Encoded, method: str, options: dict[str, Any], gold: tuple[Codes, Codes] | None = None
) -> tuple[Floats, Floats, int, bool]:
    """The Dawid-Skene variant ``method`` (its prior mean; its prior strength unless the options set one)."""
    strength = options["prior_strength"]
    return dawid_skene(
        enc,
        max_iter=options["max_iter"],
        tol=options["tol"],
        prior_strength=PRIOR_STRENGTH[method] if strength is None else strength,
        smoothing=options["smoothing"],
        prior=_PRIOR_MEAN[method],
        gold=gold,
    )


def _select(enc: Encoded, options: dict[str, Any]) -> tuple[str, str]:
    """The Dawid-Skene variant with the better held-out answer likelihood, and why (the scores)."""

    def fit(method: str) -> Fit:
        def run(subset: Encoded) -> tuple[Floats, Floats]:
            probs, confusion, _, _ = _dawid_skene(subset, method, options)
            return probs, confusion

        return run

    best, scores = select(enc, {m: fit(m) for m in CANDIDATES})
    shown = ", ".join(f"{m} {v:.4f}" for m, v in scores.items())
    return best, f"held-out log-likelihood per answer (a third held out, higher is better): {shown}"


def _bakeoff(
    enc: Encoded,
    pred_probs: PredProbs | None,
    gold: tuple[Codes, Codes],
    options: dict[str, Any],
    default: str,
) -> pd.DataFrame | None:
    """The cross-fitted scoreboard, or None when there is too little gold or overlap for one."""
    per_item = np.bincount(enc.item, minlength=enc.n_items)
    if len(gold[0]) < MIN_GOLD_FOR_BAKEOFF or enc.n_labelers < 2 or not (per_item >= 2).any():
        return None
    methods: tuple[str, ...] = (*BAKEOFF_METHODS, "crowdlab") if pred_probs is not None else BAKEOFF_METHODS
    if default not in methods:  # the no-gold choice is what every challenger must beat
        methods = (*methods, default)
    without_gold: dict[str, Codes] = {}  # majority and CROWDLAB ignore gold: run them once

    def fit(method: str, items: Codes, classes: Codes) -> Codes:
        if method in _PRIOR_MEAN:
            return _codes(_run(enc, method, pred_probs, [], (items, classes), options), enc)
        if method not in without_gold:
            without_gold[method] = _codes(_run(enc, method, pred_probs, [], _NO_GOLD, options), enc)
        return without_gold[method]

    return cross_fit(fit, gold[0], gold[1], methods, default=default)


def _codes(result: ConsensusResult, enc: Encoded) -> Codes:
    codes: Codes = pd.Index(enc.classes).get_indexer(result.labels["label"]).astype(np.int64)
    return codes


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
    return SELECTED, (
        f"{enc.n_labelers} labelers and {overlap_items} items with overlapping annotations, no pred_probs"
    )


def _class_priority(enc: Encoded) -> Codes:
    """Tie-break rank per class: higher = preferred. Fewer annotations overall first, then listed first."""
    totals = np.bincount(enc.label, minlength=enc.n_classes)
    order = np.lexsort((np.arange(enc.n_classes), totals))  # least frequent, then lowest index
    priority = np.empty(enc.n_classes, dtype=np.int64)
    priority[order] = np.arange(enc.n_classes)[::-1]
    return priority


def _argmax_with_tiebreak(scores: Floats, priority: Codes) -> Codes:
    best = scores.max(axis=1, keepdims=True)
    # Relative tolerance so that float noise in EM posteriors does not decide a genuine tie.
    is_best = scores >= best - 1e-12 * np.maximum(np.abs(best), 1.0)
    codes: Codes = np.where(is_best, priority[None, :], -1).argmax(axis=1)
    return codes


