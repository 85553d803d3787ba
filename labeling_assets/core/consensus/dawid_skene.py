"""Dawid-Skene (1979): EM over one confusion matrix per labeler, with a prior per labeler.

Two prior means: ``one_coin`` (the labeler's own accuracy, errors spread the way theirs go) and
``pooled`` (the whole crowd's confusion matrix: real crowds share a class-dependent lean, e.g. most
labelers answer "safe" for a borderline item, which a one-coin prior cannot express for two classes).
Gold items (known true class) are clamped: their posterior is the gold class in every E-step, so they
anchor the confusion matrices (semi-supervised Dawid-Skene).

The model (confusions and class prior) is fitted on the items that can identify it: items someone else
also answered, and gold items (:func:`informative_items`); an item one labeler answered alone is then
decided by the fitted model. Counted in the M-step, such an item's posterior is its one answer read
through the labeler's own confusion and the class prior, so it only confirms what EM already believes;
when a labeler's solo items are not a random draw of the population (an expert given the hard or the
unsafe cases, a reviewer given escalations), the loop runs away. On the AdultContent2 crowd one labeler
answered 23 sites, 21 of them alone, and 19 of their answers are not "G" (safe); EM read those answers
through a class prior of 70 % "G", learned that this labeler says "P", "R" or "X" for safe sites, and
made every site they answered alone "G": 3 of their 15 truth items right (majority vote: 14). The class
prior is fitted on the same items, not on all: fed by the solo items' own posteriors it swung further
from the truth, either way, on simulated crowds where 60 % of the items have one answer from a random
labeler (the share of items given the rarer of two classes off by 7.1 points on average over 10 seeds,
3.2 when fitted on the overlapped items; accuracy in ``benchmarks/consensus_solo_items.py``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from labeling_assets.core.consensus.encoding import Codes, Encoded, Floats, vote_counts


def _one_coin_prior(counts: Floats) -> Floats:
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
    # Accuracy with a Beta prior of two pseudo-labels at the crowd's accuracy: never 0 or 1, and a labeler
    # nobody overlapped with yet (no counts) is taken for a typical labeler of this crowd, not for a coin
    # flip, whose answers the class prior of a two-class task overrules on every item they answered alone.
    right = np.einsum("jcc->j", counts)
    crowd = (right.sum() + 1.0) / (counts.sum() + 2.0)
    accuracy = (right + 2.0 * crowd) / (counts.sum(axis=(1, 2)) + 2.0)
    prior: Floats = accuracy[:, None, None] * eye[None] + (1.0 - accuracy)[:, None, None] * shape
    return prior


def _pooled_prior(counts: Floats) -> Floats:
    """Prior mean of every labeler's confusion matrix: the crowd's pooled one (+0.5 per cell)."""
    pooled = counts.sum(axis=0) + 0.5
    pooled /= pooled.sum(axis=1, keepdims=True)
    prior: Floats = np.broadcast_to(pooled, counts.shape)
    return prior


def informative_items(item: Codes, n_items: int, gold_items: Codes | None = None) -> NDArray[np.bool_]:
    """The items Dawid-Skene is fitted on (confusions and class prior): two or more annotations, or gold."""
    informative: NDArray[np.bool_] = np.bincount(item, minlength=n_items) >= 2
    if gold_items is not None:
        informative[gold_items] = True
    return informative


def has_overlap(item: Codes, n_items: int, gold_items: Codes | None = None) -> bool:
    """Whether anything can show a labeler's reliability: an item with two or more annotations, or gold.

    Without it, Dawid-Skene is not identified: every labeler keeps the prior's accuracy, which with two
    classes is no better than a coin, so EM would give every item the commoner class. Callers run
    majority vote instead (each item keeps its answers) and say so (``NO_OVERLAP``).
    """
    return bool(informative_items(item, n_items, gold_items).any())


NO_OVERLAP = (
    "no item has two or more annotations and there is no gold, so nothing shows how reliable a labeler is; "
    "each item keeps its vote shares"
)

PRIORS = {"one_coin": _one_coin_prior, "pooled": _pooled_prior}


def clamp(posteriors: Floats, gold: tuple[Codes, Codes] | None) -> None:
    """Set the posteriors of gold items to their gold class (in place)."""
    if gold is not None and len(gold[0]):
        posteriors[gold[0]] = 0.0
        posteriors[gold[0], gold[1]] = 1.0


def dawid_skene(
    enc: Encoded,
    *,
    max_iter: int,
    tol: float,
    prior_strength: float,
    smoothing: float,
    prior: str = "one_coin",
    gold: tuple[Codes, Codes] | None = None,
) -> tuple[Floats, Floats, int, bool]:
    """EM for the Dawid-Skene model; returns (posteriors, confusion, iterations, converged).

    ``gold`` = (item codes, class codes) of items whose true class is known; their posteriors stay
    clamped to it.
    """
    prior_mean = PRIORS[prior]
    n_items, n_labelers, k = enc.n_items, enc.n_labelers, enc.n_classes
    # One column per (labeler, observed class) cell: A[i, j*k + l] = 1 when labeler j said l on item i.
    # Then the M-step counts are A.T @ T and the E-step log-likelihoods are A @ log(confusion).
    cell = enc.labeler * k + enc.label
    a = sp.csr_matrix(
        (np.ones(len(cell), dtype=np.float64), (enc.item, cell)), shape=(n_items, n_labelers * k)
    )
    # The M-step (confusions and class prior) sees only informative items (module docstring): their rows of A.
    counted = informative_items(enc.item, n_items, None if gold is None else gold[0])
    a_t = a.multiply(counted[:, None]).tocsr().T.tocsr()
    posteriors = vote_counts(enc)
    posteriors /= posteriors.sum(axis=1, keepdims=True)  # start from the vote shares
    clamp(posteriors, gold)

    previous_ll = -np.inf
    converged = False
    iterations = 0
    confusion: Floats = np.empty((n_labelers, k, k))
    for iterations in range(1, max_iter + 1):  # noqa: B007 (iterations is reported)
        # M-step: counts[j, true, observed], MAP under the labeler's one-coin prior.
        counts = np.asarray(a_t @ posteriors).reshape(n_labelers, k, k).transpose(0, 2, 1)
        confusion = counts + prior_strength * prior_mean(counts) + smoothing
        confusion /= confusion.sum(axis=2, keepdims=True)
        class_prior = posteriors[counted].sum(axis=0) + smoothing
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
        clamp(posteriors, gold)
        ll = float((top + np.log(norm)).sum())
        if abs(ll - previous_ll) <= tol * max(abs(ll), 1.0):
            converged = True
            break
        previous_ll = ll
    return posteriors, confusion, iterations, converged

