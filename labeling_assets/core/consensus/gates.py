"""Labeler gates with confidence intervals: act on a labeler only when the data is sure.

Gold accuracy over ~25 gold answers is noisy: 0.76 on 25 is compatible with a true 0.9. A gate therefore
looks at the Wilson interval of the rate, not its point estimate: it FAILS only when the whole interval is on
the bad side of the threshold (sure to be bad), WARNS when the interval straddles it (not enough evidence
either way), and PASSES otherwise. "Too fast" is gated the same way, as the share of a labeler's labels given
in less than a fraction of the peers' median time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Verdict = Literal["pass", "warn", "fail", "no_data"]
Z_95 = 1.959963984540054
DEFAULT_MIN_GOLD_ACCURACY = 0.8  # the class kinds' (tasks.kind.GOLD_ACCURACY_THRESHOLD); each kind has its own
# A label given in under this share of the peers' median time is a "fast" label ...
FAST_LABEL_FACTOR = 0.25
# ... and a labeler is too fast when more than this share of their labels are fast ones.
MAX_FAST_SHARE = 0.5


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial rate; (0, 1) when n is 0 (nothing is known)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class RateGate:
    """A rate with its interval and what it means against a threshold."""

    successes: int
    n: int
    rate: float | None
    low: float
    high: float
    threshold: float
    verdict: Verdict
    reason: str

    def metadata(self) -> dict[str, Any]:
        return {"rate": self.rate, "n": self.n, "ci_low": round(self.low, 4), "ci_high": round(self.high, 4),
                "threshold": self.threshold, "verdict": self.verdict}  # fmt: skip


def gate(successes: int, n: int, threshold: float, *, higher_is_better: bool = True, what: str = "rate") -> RateGate:
    """Judge a rate against a threshold by its 95% Wilson interval.

    With ``higher_is_better`` (accuracy) it fails when the upper bound is below the threshold; otherwise (share
    of fast labels) it fails when the lower bound is above it. An interval that contains the threshold warns.
    """
    low, high = wilson_interval(successes, n)
    rate = successes / n if n else None
    if n == 0:
        return RateGate(successes, n, None, low, high, threshold, "no_data", f"no {what} data yet")
    text = f"{what} {successes}/{n} = {successes / n:.2f}, 95% CI [{low:.2f}, {high:.2f}]"
    sure_bad = high < threshold if higher_is_better else low > threshold
    sure_good = low >= threshold if higher_is_better else high <= threshold
    if sure_bad:
        side = "below" if higher_is_better else "above"
        return RateGate(successes, n, rate, low, high, threshold, "fail", f"{text}: entirely {side} {threshold}")
    if sure_good:
        return RateGate(successes, n, rate, low, high, threshold, "pass", f"{text}: clear of {threshold}")
    return RateGate(successes, n, rate, low, high, threshold, "warn", f"{text}: straddles {threshold}, need more data")


def gold_gate(correct: int, n: int, threshold: float = DEFAULT_MIN_GOLD_ACCURACY) -> RateGate:
    """Gold accuracy (answers matching hidden gold or adjudicated truth) against the minimum accuracy."""
    return gate(correct, n, threshold, higher_is_better=True, what="gold accuracy")


# (successes, trials) of a labeler's rows against truth: gold_counts, or multilabel_stats.set_gold_counts for sets.
GoldCounts = Callable[[pd.DataFrame, pd.Series], tuple[int, int]]


def gold_counts(labels: pd.DataFrame, truth: pd.Series) -> tuple[int, int]:
    """(correct, answered) of a labeler's ``item_id, label`` rows on the items ``truth`` (item_id -> label) has."""
    on = labels[labels["item_id"].isin(truth.index)]
    if on.empty:
        return 0, 0
    correct = on["label"].to_numpy(dtype=object) == truth.loc[on["item_id"]].to_numpy(dtype=object)
    return int(correct.sum()), len(on)


def per_class_gold(labels: pd.DataFrame, truth: pd.Series, threshold: float = DEFAULT_MIN_GOLD_ACCURACY) -> dict[str, RateGate]:
    """Gold accuracy per true class: a labeler good overall can be bad on one class (sure-bad shows as fail)."""
    on = labels[labels["item_id"].isin(truth.index)]
    if on.empty:
        return {}
    true = truth.loc[on["item_id"]].to_numpy(dtype=object)
    right = on["label"].to_numpy(dtype=object) == true
    out = {}
    for cls in sorted({str(c) for c in true}):
        mask = np.asarray([str(t) == cls for t in true])
        out[cls] = gate(int(right[mask].sum()), int(mask.sum()), threshold, what=f"gold accuracy on {cls}")
    return out


def fast_counts(lead_times: pd.Series, peer_median_s: float | None, factor: float = FAST_LABEL_FACTOR) -> tuple[int, int]:
    """(fast labels, labels with a time): a label is fast when given in under ``factor`` x the peers' median."""
    values = pd.to_numeric(lead_times, errors="coerce").dropna()
    values = values[values >= 0]
    if peer_median_s is None or not np.isfinite(peer_median_s) or peer_median_s <= 0 or values.empty:
        return 0, 0
    return int((values < factor * peer_median_s).sum()), len(values)


def speed_gate(lead_times: pd.Series, peer_median_s: float | None, max_share: float = MAX_FAST_SHARE) -> RateGate:
    """Share of labels given too fast against the most a careful labeler has (fails only when sure)."""
    fast, n = fast_counts(lead_times, peer_median_s)
    return gate(fast, n, max_share, higher_is_better=False, what="share of fast labels")


def peer_medians(votes: pd.DataFrame) -> dict[str, float]:
    """Each labeler's median lead time (labelers without times left out)."""
    if votes.empty or "lead_time_s" not in votes:
        return {}
    times = pd.to_numeric(votes["lead_time_s"], errors="coerce")
    ok = votes.assign(t=times)[times.notna() & (times >= 0)]
    return {str(k): float(v) for k, v in ok.groupby("labeler_id")["t"].median().items()}


def speed_gates(votes: pd.DataFrame, labeler_ids: Sequence[str], *, min_peers: int = 2) -> dict[str, RateGate]:
    """Every listed labeler's speed gate against the median of the other labelers' medians (one pass)."""
    medians = peer_medians(votes)
    groups = {str(k): rows for k, rows in votes.groupby("labeler_id", sort=False)} if not votes.empty else {}
    out = {}
    for labeler_id in labeler_ids:
        peers = [m for k, m in medians.items() if k != labeler_id]
        baseline = float(np.median(peers)) if len(peers) >= min_peers else None
        rows = groups.get(labeler_id)
        times = rows["lead_time_s"] if rows is not None and "lead_time_s" in rows else pd.Series(dtype=float)
        out[labeler_id] = speed_gate(times, baseline)
    return out


@dataclass(frozen=True)
class Cost:
    """Cost of one correct label: mean time per label x pay rate / gold accuracy, with the accuracy's interval."""

    per_label: float | None  # money per label (mean time x rate)
    per_correct: float | None
    low: float | None  # at the accuracy's upper bound
    high: float | None  # at the accuracy's lower bound (None: the lower bound is 0, no upper limit)


def cost_per_correct_label(lead_times: pd.Series, rate_per_hour: float | None, correct: int, n: int) -> Cost:
    """Time x rate / accuracy, so a cheap careless labeler is not cheap per correct label."""
    values = pd.to_numeric(lead_times, errors="coerce").dropna()
    values = values[values >= 0]
    if rate_per_hour is None or values.empty:
        return Cost(None, None, None, None)
    per_label = float(values.mean()) / 3600.0 * rate_per_hour
    if n == 0:
        return Cost(per_label, None, None, None)
    low, high = wilson_interval(correct, n)
    accuracy = correct / n
    return Cost(
        per_label,
        per_label / accuracy if accuracy > 0 else None,
        per_label / high if high > 0 else None,
        per_label / low if low > 0 else None,
    )


def with_names_intervals_and_cost(
    board: pd.DataFrame,
    votes: pd.DataFrame,
    truth: pd.Series,
    names: Mapping[str, str],
    *,
    rate_per_hour: float | None = None,
    rates: Mapping[str, float] | None = None,
    paused: Sequence[str] = (),
    threshold: float = DEFAULT_MIN_GOLD_ACCURACY,
    counts: GoldCounts = gold_counts,
    acceptance: Mapping[str, tuple[int, int]] | None = None,
    acceptance_threshold: float = DEFAULT_MIN_GOLD_ACCURACY,
) -> pd.DataFrame:
    """The leaderboard with each labeler's name, gold accuracy's 95% interval and verdict, cost per correct label
    (per-labeler rate by name or id, else the one rate) and whether they are paused. ``gold_gate_rate`` and
    ``gold_gate_n`` are what the interval is of (``counts``: for label sets the worse of sensitivity and
    specificity, not the exact-set accuracy of ``gold_accuracy``). ``acceptance``: labeler id -> (accepted,
    reviewed) of spot checks, shown as ``acceptance_rate``, its interval and its gate's verdict."""
    groups = {str(k): rows for k, rows in votes.groupby("labeler_id", sort=False)} if not votes.empty else {}
    extra = []
    for labeler_id in board["labeler_id"].astype(str):
        rows = groups.get(labeler_id, votes.iloc[0:0])
        correct, n = counts(rows, truth)
        verdict = gold_gate(correct, n, threshold)
        name = names.get(labeler_id, labeler_id)
        rate = (rates or {}).get(name, (rates or {}).get(labeler_id, rate_per_hour))
        times = rows["lead_time_s"] if "lead_time_s" in rows else pd.Series(dtype=float)
        cost = cost_per_correct_label(times, rate, correct, n)
        accepted, reviewed = (acceptance or {}).get(labeler_id, (0, 0))
        judged = gate(accepted, reviewed, acceptance_threshold, what="acceptance rate")
        extra.append({"labeler": name, "gold_gate_rate": correct / n if n else None, "gold_gate_n": n,
                      "gold_ci_low": verdict.low if n else None,
                      "gold_ci_high": verdict.high if n else None, "gold_verdict": verdict.verdict,
                      "cost_per_label": cost.per_label, "cost_per_correct": cost.per_correct,
                      "cost_per_correct_low": cost.low, "cost_per_correct_high": cost.high,
                      "acceptance_rate": judged.rate, "n_reviewed": reviewed,
                      "acceptance_ci_low": judged.low if reviewed else None,
                      "acceptance_ci_high": judged.high if reviewed else None, "acceptance_verdict": judged.verdict,
                      "paused": labeler_id in set(paused)})  # fmt: skip
    return pd.concat([board.reset_index(drop=True), pd.DataFrame(extra, index=range(len(board)))], axis=1)
