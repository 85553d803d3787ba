"""Inter-annotator agreement for nominal labels: Cohen's kappa, Fleiss' kappa, Krippendorff's alpha.

All functions take the same long format as consensus (``item_id, labeler_id, label``) or a ready
item-by-class count matrix, and return NaN (never raise) when a statistic is undefined, e.g. when
every label is the same class so chance agreement is already perfect.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray


def cohen_kappa(a: Sequence[Any] | pd.Series, b: Sequence[Any] | pd.Series, *, classes: Sequence[Any] | None = None) -> float:
    """Cohen's kappa between two raters' labels of the same items (aligned sequences).

    kappa = (p_o - p_e) / (1 - p_e), p_o observed agreement, p_e agreement expected from each rater's
    own class frequencies. NaN when there are no items or p_e == 1.
    """
    a_arr = np.asarray(list(a), dtype=object)
    b_arr = np.asarray(list(b), dtype=object)
    if len(a_arr) != len(b_arr):
        raise ValueError(f"cohen_kappa needs aligned labels; got {len(a_arr)} and {len(b_arr)}")
    if len(a_arr) == 0:
        return float("nan")
    class_list = list(classes) if classes is not None else list(pd.unique(np.concatenate([a_arr, b_arr])))
    index = {c: i for i, c in enumerate(class_list)}
    try:
        ia = np.fromiter((index[v] for v in a_arr), dtype=np.int64, count=len(a_arr))
        ib = np.fromiter((index[v] for v in b_arr), dtype=np.int64, count=len(b_arr))
    except KeyError as err:
        raise ValueError(f"label {err.args[0]!r} is not in classes {class_list}") from None
    k = len(class_list)
    p_o = float(np.mean(ia == ib))
    p_e = float(np.dot(np.bincount(ia, minlength=k), np.bincount(ib, minlength=k))) / len(ia) ** 2
    if p_e >= 1.0:
        return float("nan")
    return (p_o - p_e) / (1.0 - p_e)


def pairwise_cohen_kappa(annotations: pd.DataFrame, *, min_common: int = 1) -> pd.DataFrame:
    """Cohen's kappa for every pair of labelers on the items both labeled.

    Returns columns ``labeler_a, labeler_b, n_common, kappa`` (pairs with fewer than ``min_common``
    shared items are left out). With several annotations of one item by one labeler, the last counts.
    """
    frame = annotations.drop_duplicates(["item_id", "labeler_id"], keep="last")
    wide = frame.pivot(index="item_id", columns="labeler_id", values="label")
    labelers = sorted(wide.columns, key=str)
    rows = []
    for left, right in itertools.combinations(labelers, 2):
        both = wide[[left, right]].dropna()
        if len(both) < min_common:
            continue
        rows.append(
            {
                "labeler_a": left,
                "labeler_b": right,
                "n_common": len(both),
                "kappa": cohen_kappa(both[left], both[right]),
            }
        )
    return pd.DataFrame(rows, columns=["labeler_a", "labeler_b", "n_common", "kappa"])


def count_matrix(annotations: pd.DataFrame, *, classes: Sequence[Any] | None = None) -> pd.DataFrame:
    """Items x classes table of how many labelers chose each class (input of Fleiss' kappa)."""
    counts = pd.crosstab(annotations["item_id"], annotations["label"])
    if classes is not None:
        counts = counts.reindex(columns=list(classes), fill_value=0)
    return counts


@dataclass(frozen=True)
class FleissKappa:
    """Fleiss' kappa overall and per class (Fleiss 1971), with the ingredients a reader may want."""

    kappa: float
    per_class: dict[Any, float]
    observed_agreement: float  # mean pairwise agreement P-bar
    expected_agreement: float  # chance agreement P-bar_e
    n_items: int  # items with at least two ratings (the only ones that count)


def fleiss_kappa(counts: pd.DataFrame | NDArray[Any]) -> FleissKappa:
    """Fleiss' kappa from an items x classes count matrix (see :func:`count_matrix`).

    Items may have different numbers of raters (the usual generalisation: each item's agreement is
    averaged over its own rater pairs); items with fewer than two ratings are ignored. Per-class
    kappa follows Fleiss (1971): 1 - sum_i n_ij (n_i - n_ij) / (n_i (n_i - 1)) / (N p_j q_j).
    """
    if isinstance(counts, pd.DataFrame):
        class_labels: list[Any] = list(counts.columns)
        matrix: NDArray[np.float64] = counts.to_numpy(dtype=np.float64)
    else:
        matrix = np.asarray(counts, dtype=np.float64)
        class_labels = list(range(matrix.shape[1])) if matrix.ndim == 2 else []
    if matrix.ndim != 2:
        raise ValueError("fleiss_kappa needs a 2-D items x classes count matrix")
    n_i = matrix.sum(axis=1)
    matrix = matrix[n_i >= 2]
    n_i = n_i[n_i >= 2]
    nan = float("nan")
    if len(matrix) == 0:
        return FleissKappa(nan, dict.fromkeys(class_labels, nan), nan, nan, 0)
    pairs = n_i * (n_i - 1)
    p_i = ((matrix * (matrix - 1)).sum(axis=1)) / pairs
    p_bar = float(p_i.mean())
    p_j = matrix.sum(axis=0) / n_i.sum()
    p_e = float((p_j**2).sum())
    kappa = (p_bar - p_e) / (1.0 - p_e) if p_e < 1.0 else nan
    disagreement = (matrix * (n_i[:, None] - matrix) / pairs[:, None]).sum(axis=0)
    chance = len(matrix) * p_j * (1.0 - p_j)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = np.where(chance > 0, 1.0 - disagreement / chance, nan)
    return FleissKappa(
        kappa=float(kappa),
        per_class={c: float(v) for c, v in zip(class_labels, per_class, strict=True)},
        observed_agreement=p_bar,
        expected_agreement=p_e,
        n_items=len(matrix),
    )


def fleiss_kappa_from_annotations(
    annotations: pd.DataFrame, *, classes: Sequence[Any] | None = None
) -> FleissKappa:
    """Fleiss' kappa of long-format annotations (``item_id, labeler_id, label``)."""
    frame = annotations.drop_duplicates(["item_id", "labeler_id"], keep="last")
    return fleiss_kappa(count_matrix(frame, classes=classes))


def krippendorff_alpha_nominal(reliability: pd.DataFrame | NDArray[Any]) -> float:
    """Krippendorff's alpha for nominal data with missing values.

    ``reliability`` is a units x coders matrix (NaN / None = missing), or pass long annotations through
    :func:`krippendorff_alpha_from_annotations`. Units with fewer than two values are not pairable and
    are ignored. alpha = 1 - D_o / D_e from the coincidence matrix (Krippendorff 2011).
    """
    frame = pd.DataFrame(reliability)
    stacked = frame.stack().dropna()  # pandas 3 keeps NaN in stack(): missing values go here
    if stacked.empty:
        return float("nan")
    units = stacked.index.get_level_values(0)
    counts = pd.crosstab(units, stacked.to_numpy()).to_numpy(dtype=np.float64)  # units x values
    m_u = counts.sum(axis=1)
    counts = counts[m_u >= 2]
    m_u = m_u[m_u >= 2]
    if len(counts) == 0:
        return float("nan")
    # Coincidence matrix o_ck = sum_u (n_uc n_uk - [c==k] n_uc) / (m_u - 1).
    weighted = counts / (m_u - 1)[:, None]
    coincidence = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    observed_disagreement = n - np.trace(coincidence)
    expected_disagreement = (n * n - (n_c**2).sum()) / (n - 1)
    if expected_disagreement <= 0:
        return float("nan")
    return float(1.0 - observed_disagreement / expected_disagreement)


def krippendorff_alpha_from_annotations(annotations: pd.DataFrame) -> float:
    """Krippendorff's nominal alpha of long-format annotations (``item_id, labeler_id, label``)."""
    frame = annotations.drop_duplicates(["item_id", "labeler_id"], keep="last")
    return krippendorff_alpha_nominal(frame.pivot(index="item_id", columns="labeler_id", values="label"))
