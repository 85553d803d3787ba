"""CUSUM changepoint detectors on windowed series (one value per ISO week).

Why CUSUM: it is the sequential test with the shortest worst-case delay for a given false-alarm rate when the
shift it looks for is known (Lorden 1971); here the shift is a design choice ("a 15-point drop in gold
accuracy"), so that is the right trade. The baseline is the labeler's own history: every window since the last
restart up to the last one where the statistic was at zero (so a drift under way never pulls the baseline
towards itself). After an alarm the detector restarts and learns a new baseline: one change, one alarm.

The default thresholds (``GOLD_H`` ...) are what benchmarks/drift_alarms.py chose; docs/operations.md quotes its
figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Chosen with benchmarks/drift_alarms.py (see docs/operations.md, "Drift alarms").
WARMUP_WINDOWS = 4  # windows of history before a detector may fire
RATE_SHIFT = 0.15  # the change a rate detector is tuned for (gold accuracy, a class's share, disagreement)
RATE_H = 5.0  # log-likelihood-ratio threshold of the rate detectors
SPEED_SHIFT = math.log(2.0)  # speed: a halving (or doubling) of the median time per answer
SPEED_H = 3.0  # threshold of the speed detector, in baseline standard deviations
SPEED_MIN_SD = 0.15  # floor of the week-to-week sd of log median time (a too-steady baseline would alarm on noise)


@dataclass(frozen=True)
class Change:
    """A detected change: the window that crossed the threshold and the window the excursion began in."""

    alarm_index: int  # the window whose value crossed the threshold
    start_index: int  # first window of the excursion (the estimated change point)
    baseline: float  # the value before (a rate, or a mean)
    recent: float  # the value over the excursion's windows
    statistic: float  # the CUSUM value that crossed


def _clip(p: float) -> float:
    return min(max(p, 1e-3), 1 - 1e-3)


def rate_cusum(
    successes: Sequence[int], trials: Sequence[int], *, shift: float = RATE_SHIFT, h: float = RATE_H,
    warmup: int = WARMUP_WINDOWS, direction: int = -1,
) -> list[Change]:  # fmt: skip
    """Changes in a rate observed as ``successes`` out of ``trials`` per window (a Bernoulli CUSUM).

    ``direction`` -1 looks for a drop of ``shift`` (gold accuracy), +1 for a rise (disagreement with consensus).
    Windows with no trials are skipped; the baseline (Laplace-smoothed) is re-estimated every window while the
    statistic sits at zero.
    """
    if len(successes) != len(trials):
        raise ValueError(f"{len(successes)} success counts for {len(trials)} trial counts")
    changes: list[Change] = []
    kk = nn = 0  # the baseline's successes and trials (windows since the restart while the statistic was zero)
    pending_k = pending_n = 0  # the current excursion's counts: they join the baseline if it ends at zero
    stat, run_start = 0.0, -1
    seen = 0  # windows with trials since the restart
    for t, (k, n) in enumerate(zip(successes, trials, strict=True)):
        if n <= 0:
            continue
        seen += 1
        if seen <= warmup:
            kk, nn = kk + k, nn + n
            continue
        p0 = _clip((kk + 1) / (nn + 2))
        p1 = _clip(p0 + direction * shift)
        step = k * math.log(p1 / p0) + (n - k) * math.log((1 - p1) / (1 - p0))
        if stat == 0.0:
            run_start, pending_k, pending_n = t, 0, 0
        stat = max(0.0, stat + step)
        pending_k, pending_n = pending_k + k, pending_n + n
        if stat == 0.0:
            kk, nn = kk + pending_k, nn + pending_n
        elif stat > h:
            changes.append(Change(t, run_start, kk / nn, pending_k / pending_n, stat))
            stat, kk, nn, seen = 0.0, 0, 0, 0
    return changes


def mean_cusum(
    values: Sequence[float | None], *, shift: float = SPEED_SHIFT, h: float = SPEED_H,
    warmup: int = WARMUP_WINDOWS, min_sd: float = SPEED_MIN_SD,
) -> list[Change]:  # fmt: skip
    """Changes of the mean of ``values`` (None: no data that window) up or down by ``shift`` (a two-sided
    Gaussian CUSUM, in units of the baseline's window-to-window standard deviation, floored at ``min_sd``)."""
    changes: list[Change] = []
    n = total = squares = 0.0  # the baseline's count, sum and sum of squares (running: long series stay linear)
    up = down = 0.0
    run_start = -1
    seen = 0
    pending: list[float] = []  # the current excursion's values: they join the baseline if it ends at zero
    for t, value in enumerate(values):
        if value is None or not math.isfinite(value):
            continue
        seen += 1
        if seen <= warmup:
            n, total, squares = n + 1, total + value, squares + value * value
            continue
        mean = total / n
        sd = max(min_sd, math.sqrt(max(0.0, squares - n * mean * mean) / max(1.0, n - 1)))
        k = shift / sd / 2  # the reference value: half the shift, in sd units
        z = (value - mean) / sd
        if up == 0.0 and down == 0.0:
            run_start, pending = t, []
        up, down = max(0.0, up + z - k), max(0.0, down - z - k)
        pending.append(value)
        if up == 0.0 and down == 0.0:
            n, total, squares = n + len(pending), total + sum(pending), squares + sum(v * v for v in pending)
        elif max(up, down) > h:
            changes.append(Change(t, run_start, mean, sum(pending) / len(pending), max(up, down)))
            up = down = 0.0
            n = total = squares = 0.0
            seen = 0
    return changes
