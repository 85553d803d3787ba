"""Is a consensus confidence of 0.9 right nine times in ten? Measure it, and correct it on gold.

The confidence stored with each consensus label is the method's probability of that label (Dawid-Skene:
the posterior; majority: the vote share). Anything that spends labels by expected gain multiplies by it,
so it has to mean what it says. This module measures that (expected calibration error over
``BINS`` equal-width bins, and the reliability table behind it) and fits one correction on gold items:
temperature scaling of the class probabilities, ``p_c ** (1 / T)`` renormalized (for two classes, the
log-odds divided by ``T``). One number, fitted by the likelihood of the gold classes, cannot overfit a
few dozen gold items, and it never changes which class is most probable, so labels stay as they are;
only the confidence moves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from labeling_assets.core.consensus.encoding import Floats

BINS = 10
# Fewer gold items than this leave the temperature to chance (its likelihood is flat); the confidence
# is then left as the method gave it.
MIN_GOLD_FOR_CALIBRATION = 30
# Search range of log(T): T from about 0.05 (sharpen) to about 20 (soften).
_LOG_T_BOUND = 3.0
_EPS = 1e-12


def reliability_table(confidence: ArrayLike, correct: ArrayLike, bins: int = BINS) -> pd.DataFrame:
    """One row per non-empty equal-width confidence bin: ``bin, low, high, n, mean_confidence, accuracy, gap``."""
    conf = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    hit = np.asarray(correct, dtype=np.float64)
    # A confidence of exactly 1.0 belongs to the last bin, not to an eleventh.
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    n = np.bincount(which, minlength=bins)
    mean_conf = np.bincount(which, weights=conf, minlength=bins) / np.maximum(n, 1)
    accuracy = np.bincount(which, weights=hit, minlength=bins) / np.maximum(n, 1)
    table = pd.DataFrame(
        {
            "bin": np.arange(bins),
            "low": np.arange(bins) / bins,
            "high": (np.arange(bins) + 1) / bins,
            "n": n,
            "mean_confidence": mean_conf,
            "accuracy": accuracy,
            "gap": mean_conf - accuracy,
        }
    )
    return table[table["n"] > 0].reset_index(drop=True)


def expected_calibration_error(confidence: ArrayLike, correct: ArrayLike, bins: int = BINS) -> float:
    """ECE: the item-weighted mean of |mean confidence - accuracy| over equal-width bins (0 = calibrated)."""
    table = reliability_table(confidence, correct, bins)
    total = int(table["n"].sum())
    if total == 0:
        return float("nan")
    return float((table["n"] * table["gap"].abs()).sum() / total)


def temper(probabilities: Floats, temperature: float) -> Floats:
    """``p ** (1 / T)`` per row, renormalized; T > 1 softens, T < 1 sharpens, the row's order is kept."""
    log_p = np.log(np.clip(probabilities, _EPS, 1.0)) / temperature
    log_p -= log_p.max(axis=1, keepdims=True)
    tempered: Floats = np.exp(log_p)
    tempered /= tempered.sum(axis=1, keepdims=True)
    return tempered


def fit_temperature(probabilities: Floats, true_class: ArrayLike) -> float:
    """The T that maximizes the likelihood of the true classes under ``temper(probabilities, T)``.

    Args:
        probabilities: (n, k) class probabilities of gold items, computed without their gold.
        true_class: (n,) the gold class code of each row.
    """
    truth = np.asarray(true_class, dtype=np.int64)
    log_p = np.log(np.clip(probabilities, _EPS, 1.0))
    rows = np.arange(len(truth))

    def nll(log_t: float) -> float:
        scaled = log_p / np.exp(log_t)
        top = scaled.max(axis=1)
        return float((top + np.log(np.exp(scaled - top[:, None]).sum(axis=1)) - scaled[rows, truth]).sum())

    from scipy.optimize import minimize_scalar  # here: ~1.3 s of every run's start

    found = minimize_scalar(nll, bounds=(-_LOG_T_BOUND, _LOG_T_BOUND), method="bounded")
    return float(np.exp(found.x))
