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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

METHODS = ("auto", "majority", "dawid_skene", "crowdlab")

# auto picks Dawid-Skene only with at least this many items labeled by two or more labelers: below
# that, per-labeler confusion matrices are mostly prior and majority vote is as good and easier to read.
AUTO_MIN_OVERLAP_ITEMS = 10


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
    """

    labels: pd.DataFrame
    labeler_quality: pd.DataFrame
    method: str
    classes: list[Any]
    notes: list[str] = field(default_factory=list)
    probabilities: np.ndarray | None = None
    confusion: np.ndarray | None = None
    iterations: int | None = None


@dataclass(frozen=True)
class _Encoded:
    """Integer-coded annotations."""

    item: np.ndarray  # item code per annotation (0..n_items-1, codes follow sorted item ids)
    labeler: np.ndarray
    label: np.ndarray
    item_ids: np.ndarray
    labeler_ids: np.ndarray
    classes: list[Any]
    notes: list[str]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_labelers(self) -> int:
        return len(self.labeler_ids)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def aggregate(
    annotations: pd.DataFrame,
    method: str = "auto",
    pred_probs: np.ndarray | pd.DataFrame | None = None,
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
    pred_probs: np.ndarray | pd.DataFrame | None = None,
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
    enc = _encode(annotations, classes)
    notes = list(enc.notes)

    if method == "auto":
        method, reason = _choose_method(enc, pred_probs)
        notes.append(f"auto chose {method}: {reason}")

    if method == "majority":
        votes = _vote_counts(enc)
        probs = votes / votes.sum(axis=1, keepdims=True)
        codes = _argmax_with_tiebreak(votes, _class_priority(enc))
        return _result(enc, "majority", codes, probs[np.arange(enc.n_items), codes], probs, notes)

    if method == "dawid_skene":
        probs, confusion, iterations, converged = _dawid_skene(
            enc, max_iter=max_iter, tol=tol, prior_strength=prior_strength, smoothing=smoothing
        )
        notes.append(
            f"Dawid-Skene {'converged' if converged else 'stopped without converging'} after {iterations} EM iterations"
        )
        codes = _argmax_with_tiebreak(probs, _class_priority(enc))
        return _result(
            enc,
            "dawid_skene",
            codes,
            probs[np.arange(enc.n_items), codes],
            probs,
            notes,
            confusion=confusion,
            iterations=iterations,
        )

    return _crowdlab(enc, pred_probs, notes)


# --- votes from the label store ----------------------------------------------------------------

# Why an annotation row was not used as a vote (keys of Votes.skipped).
SKIP_MULTI_LABEL = "not_a_single_class"
SKIP_UNKNOWN_CLASS = "class_not_in_project"


@dataclass(frozen=True)
class Votes:
    """One vote per (item, labeler): the labeler's newest current annotation of the item.

    Attributes:
        frame: ``item_id, labeler_id, label`` plus whichever of ``ls_annotation_id, lead_time_s,
            created_at, updated_at`` the input had; sorted by item_id, labeler_id.
        skipped: reason -> number of (item, labeler) votes left out (their annotations stay stored).
        examples: reason -> up to five offending labels, for error messages and metadata.
    """

    frame: pd.DataFrame
    skipped: dict[str, int]
    examples: dict[str, list[Any]]


def single_class(value: Any) -> Any | None:
    """The class of a single-choice label: ``"cat"`` or ``["cat"]`` -> ``"cat"``; anything else None."""
    if isinstance(value, list | tuple):
        value = value[0] if len(value) == 1 else None
    # Floats are never class names here (and NaN is how pandas spells a missing label).
    if value is None or isinstance(value, list | tuple | dict | float):
        return None
    return value


def latest_votes(annotations: pd.DataFrame, classes: Sequence[Any]) -> Votes:
    """Reduce current annotation rows (``current_annotations_query``) to one valid vote per (item, labeler).

    A labeler may hold several Label Studio annotations of one item; the newest (by ``updated_at``, then
    ``created_at``, then ``ls_annotation_id``) is their vote. That newest one is then validated: a label
    that is not exactly one class of ``classes`` is skipped (counted in ``skipped``) rather than letting
    an older answer stand in for it.
    """
    missing = {"item_id", "labeler_id", "label"} - set(annotations.columns)
    if missing:
        raise ConsensusInputError(f"annotation rows lack column(s) {sorted(missing)}")
    extra = [c for c in ("ls_annotation_id", "lead_time_s", "created_at", "updated_at") if c in annotations]
    frame = annotations[["item_id", "labeler_id", "label", *extra]].copy()
    if frame.empty:
        return Votes(frame.reset_index(drop=True), {}, {})
    order: list[str] = []
    if "updated_at" in frame or "created_at" in frame:
        stamp = pd.to_datetime(frame.get("updated_at"), utc=True, errors="coerce")
        if "created_at" in frame:
            stamp = stamp.fillna(pd.to_datetime(frame["created_at"], utc=True, errors="coerce"))
        frame["_stamp"] = stamp
        order.append("_stamp")
    if "ls_annotation_id" in frame:
        order.append("ls_annotation_id")
    if order:
        frame = frame.sort_values(order, kind="stable", na_position="first")
    frame = frame.drop_duplicates(["item_id", "labeler_id"], keep="last").drop(
        columns="_stamp", errors="ignore"
    )

    allowed = set(classes)
    raw = frame["label"].tolist()
    cleaned = [single_class(v) for v in raw]
    skipped: dict[str, int] = {}
    examples: dict[str, list[Any]] = {}
    keep = np.ones(len(frame), dtype=bool)
    for n, (original, value) in enumerate(zip(raw, cleaned, strict=True)):
        reason = SKIP_MULTI_LABEL if value is None else None if value in allowed else SKIP_UNKNOWN_CLASS
        if reason:
            keep[n] = False
            skipped[reason] = skipped.get(reason, 0) + 1
            if len(examples.setdefault(reason, [])) < 5:
                examples[reason].append(original)
    frame["label"] = pd.Series(cleaned, index=frame.index, dtype=object)
    frame = frame[keep].sort_values(["item_id", "labeler_id"], kind="stable").reset_index(drop=True)
    return Votes(frame, skipped, examples)


# --- encoding -----------------------------------------------------------------------------------


def _sorted_unique(values: Sequence[Any] | pd.Series | np.ndarray) -> list[Any]:
    unique = [v.item() if isinstance(v, np.generic) else v for v in pd.Series(values).unique()]
    try:
        return sorted(unique)
    except TypeError:  # mixed types (e.g. 3 and "3"): a stable order is all that matters
        return sorted(unique, key=lambda v: (type(v).__name__, str(v)))


def _encode(annotations: pd.DataFrame, classes: Sequence[Any] | None) -> _Encoded:
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
    class_list = list(classes) if classes is not None else _sorted_unique(seen_labels)
    if not class_list:
        raise ConsensusInputError("classes is empty")
    position = {c: i for i, c in enumerate(class_list)}
    if len(position) != len(class_list):
        raise ConsensusInputError(f"classes contain duplicates: {class_list}")
    unknown = [v for v in seen_labels if v not in position]
    if unknown:
        raise ConsensusInputError(
            f"label(s) {_sorted_unique(unknown)[:5]} are not in classes {class_list}; "
            "pass classes=[...] with every class, and labels as the same type (e.g. '3' vs 3)"
        )
    label_codes = np.asarray([position[v] for v in seen_labels], dtype=np.int64)[seen_codes]

    item_codes, item_ids = pd.factorize(frame["item_id"], sort=True)
    labeler_codes, labeler_ids = pd.factorize(frame["labeler_id"], sort=True)
    return _Encoded(
        item=item_codes.astype(np.int64),
        labeler=labeler_codes.astype(np.int64),
        label=label_codes.astype(np.int64),
        item_ids=np.asarray(item_ids),
        labeler_ids=np.asarray(labeler_ids),
        classes=class_list,
        notes=notes,
    )


def _choose_method(enc: _Encoded, pred_probs: np.ndarray | pd.DataFrame | None) -> tuple[str, str]:
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


# --- majority -----------------------------------------------------------------------------------


def _vote_counts(enc: _Encoded) -> np.ndarray:
    k = enc.n_classes
    return (
        np.bincount(enc.item * k + enc.label, minlength=enc.n_items * k)
        .reshape(enc.n_items, k)
        .astype(np.float64)
    )


def _class_priority(enc: _Encoded) -> np.ndarray:
    """Tie-break rank per class: higher = preferred. More annotations overall first, then listed first."""
    totals = np.bincount(enc.label, minlength=enc.n_classes)
    order = np.lexsort((np.arange(enc.n_classes), -totals))  # most frequent, then lowest index
    priority = np.empty(enc.n_classes, dtype=np.int64)
    priority[order] = np.arange(enc.n_classes)[::-1]
    return priority


def _argmax_with_tiebreak(scores: np.ndarray, priority: np.ndarray) -> np.ndarray:
    best = scores.max(axis=1, keepdims=True)
    # Relative tolerance so that float noise in EM posteriors does not decide a genuine tie.
    is_best = scores >= best - 1e-12 * np.maximum(np.abs(best), 1.0)
    return np.where(is_best, priority[None, :], -1).argmax(axis=1)


# --- Dawid-Skene ----------------------------------------------------------------------------------


def _one_coin_prior(counts: np.ndarray) -> np.ndarray:
    """Prior mean of each labeler's confusion matrix: a "one coin" version of that labeler.

    Row ``true`` puts the labeler's overall accuracy on the diagonal and spreads the rest over the
    other classes in proportion to where this labeler's errors go overall. It needs ``n_labelers * k``
    numbers instead of ``n_labelers * k * k``, so it can be estimated from few labels, and it keeps
    what matters for sparse labelers: how often they are right, and whether their errors pile up on
    one class (a biased labeler) or spread out (a noisy one). Enough counts override it, so a
    class-specific confusion (3 read as 8) is still learned from the data.
    """
    k = counts.shape[1]
    eye = np.eye(k, dtype=bool)
    # Where each labeler's wrong answers go (+0.5 so an unused class keeps a little mass).
    wrong = np.where(eye[None], 0.0, counts).sum(axis=1) + 0.5
    shape = np.where(eye[None], 0.0, wrong[:, None, :])
    shape /= np.maximum(shape.sum(axis=2, keepdims=True), 1e-300)  # a one-class problem has no errors
    # Accuracy with a uniform Beta(1, 1) prior: a labeler with one label is 2/3 or 1/3, never 0 or 1.
    accuracy = (np.einsum("jcc->j", counts) + 1.0) / (counts.sum(axis=(1, 2)) + 2.0)
    return accuracy[:, None, None] * eye[None] + (1.0 - accuracy)[:, None, None] * shape


def _dawid_skene(
    enc: _Encoded, *, max_iter: int, tol: float, prior_strength: float, smoothing: float
) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """EM for the Dawid-Skene model; returns (posteriors, confusion, iterations, converged)."""
    n_items, n_labelers, k = enc.n_items, enc.n_labelers, enc.n_classes
    # One column per (labeler, observed class) cell: A[i, j*k + l] = 1 when labeler j said l on item i.
    # Then the M-step counts are A.T @ T and the E-step log-likelihoods are A @ log(confusion).
    cell = enc.labeler * k + enc.label
    a = sp.csr_matrix(
        (np.ones(len(cell), dtype=np.float64), (enc.item, cell)), shape=(n_items, n_labelers * k)
    )
    a_t = a.T.tocsr()
    posteriors = _vote_counts(enc)
    posteriors /= posteriors.sum(axis=1, keepdims=True)  # start from the vote shares

    previous_ll = -np.inf
    converged = False
    iterations = 0
    confusion = np.empty((n_labelers, k, k))
    for iterations in range(1, max_iter + 1):  # noqa: B007 (iterations is reported)
        # M-step: counts[j, true, observed], MAP under the labeler's one-coin prior.
        counts = np.asarray(a_t @ posteriors).reshape(n_labelers, k, k).transpose(0, 2, 1)
        confusion = counts + prior_strength * _one_coin_prior(counts) + smoothing
        confusion /= confusion.sum(axis=2, keepdims=True)
        class_prior = posteriors.sum(axis=0) + smoothing
        class_prior /= class_prior.sum()

        # E-step: log p(true = c | item) up to a constant, summed over the item's annotations.
        log_cells = np.log(confusion).transpose(0, 2, 1).reshape(n_labelers * k, k)
        log_prior = np.log(class_prior)
        # Shift each row by an upper bound of its maximum (sum of per-annotation maxima) instead of
        # the row maximum itself: one sparse mat-vec instead of a slow (n_items, k) row reduction.
        top = np.asarray(a @ log_cells.max(axis=1)) + log_prior.max()
        log_joint = np.asarray(a @ log_cells)
        log_joint += log_prior[None, :]
        log_joint -= top[:, None]
        np.exp(log_joint, out=log_joint)
        norm = log_joint.sum(axis=1)
        underflow = norm < 1e-200
        if underflow.any():  # rows whose bound was too loose: redo them with the exact maximum
            exact = np.asarray(a[underflow] @ log_cells) + log_prior[None, :]
            top[underflow] = exact.max(axis=1)
            log_joint[underflow] = np.exp(exact - top[underflow][:, None])
            norm[underflow] = log_joint[underflow].sum(axis=1)
        posteriors = log_joint
        posteriors /= norm[:, None]
        ll = float((top + np.log(norm)).sum())
        if abs(ll - previous_ll) <= tol * max(abs(ll), 1.0):
            converged = True
            break
        previous_ll = ll
    return posteriors, confusion, iterations, converged


# --- CROWDLAB -------------------------------------------------------------------------------------


def _align_pred_probs(enc: _Encoded, pred_probs: np.ndarray | pd.DataFrame) -> np.ndarray:
    if isinstance(pred_probs, pd.DataFrame):
        missing_items = pd.Index(enc.item_ids).difference(pred_probs.index)
        if len(missing_items):
            raise ConsensusInputError(
                f"pred_probs has no row for {len(missing_items)} annotated item(s), e.g. {list(missing_items[:3])}"
            )
        missing_classes = [c for c in enc.classes if c not in pred_probs.columns]
        if missing_classes:
            raise ConsensusInputError(f"pred_probs has no column for class(es) {missing_classes}")
        probs = pred_probs.loc[list(enc.item_ids), enc.classes].to_numpy(dtype=np.float64)
    else:
        probs = np.asarray(pred_probs, dtype=np.float64)
        if probs.shape != (enc.n_items, enc.n_classes):
            raise ConsensusInputError(
                f"pred_probs has shape {probs.shape}; expected (n_items, n_classes) = "
                f"({enc.n_items}, {enc.n_classes}) with rows in sorted item_id order"
            )
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ConsensusInputError("pred_probs must be finite and non-negative")
    sums = probs.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-3):
        raise ConsensusInputError("pred_probs rows must sum to 1")
    return probs / sums[:, None]


def _crowdlab(
    enc: _Encoded, pred_probs: np.ndarray | pd.DataFrame | None, notes: list[str]
) -> ConsensusResult:
    if pred_probs is None:
        raise ConsensusInputError("crowdlab needs out-of-sample pred_probs (n_items, n_classes)")
    probs = _align_pred_probs(enc, pred_probs)
    per_item = np.bincount(enc.item, minlength=enc.n_items)
    if enc.n_labelers < 2 or (per_item < 2).all():
        raise ConsensusInputError("crowdlab needs at least two labelers and one item with two annotations")
    from cleanlab.multiannotator import get_label_quality_multiannotator  # heavy import, only here

    wide = np.full((enc.n_items, enc.n_labelers), np.nan)
    wide[enc.item, enc.labeler] = enc.label
    with warnings.catch_warnings():
        # cleanlab warns when a class is absent from the consensus; our notes and metadata cover that.
        warnings.simplefilter("ignore")
        info = get_label_quality_multiannotator(
            pd.DataFrame(wide, columns=[str(x) for x in enc.labeler_ids]),
            probs,
            return_detailed_quality=False,
            return_annotator_stats=True,
            verbose=False,
        )
    quality = info["label_quality"]
    codes = quality["consensus_label"].to_numpy(dtype=np.int64)
    stats = info["annotator_stats"].reindex([str(x) for x in enc.labeler_ids])
    result = _result(enc, "crowdlab", codes, quality["consensus_quality_score"].to_numpy(float), None, notes)
    labeler_quality = result.labeler_quality.copy()
    labeler_quality["quality"] = stats["annotator_quality"].to_numpy(float)
    return ConsensusResult(
        labels=result.labels,
        labeler_quality=labeler_quality,
        method="crowdlab",
        classes=enc.classes,
        notes=notes,
    )


# --- result assembly ------------------------------------------------------------------------------


def _result(
    enc: _Encoded,
    method: str,
    codes: np.ndarray,
    confidence: np.ndarray,
    probs: np.ndarray | None,
    notes: list[str],
    *,
    confusion: np.ndarray | None = None,
    iterations: int | None = None,
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
    )
