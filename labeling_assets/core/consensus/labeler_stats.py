"""Per-labeler quality: gold accuracy, agreement with consensus, speed, throughput, class usage, trend.

Everything here is a pure function of DataFrames: one labeler's annotations (``item_id, label,
lead_time_s, created_at``), the hidden gold answers and the consensus labels (both Series indexed by
item_id). The Dagster asset fetches those from the label store and writes the result back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labeling_assets.core.consensus.agreement import cohen_kappa

ALL_WINDOW = "all"


@dataclass(frozen=True)
class ClassUsage:
    """How often a labeler used one class compared with what the items they saw would suggest."""

    label: Any
    observed: int  # labels of this class by the labeler
    expected: float  # labels of this class expected from the reference shares
    ratio: float  # observed / expected (inf when expected is 0 and observed > 0)
    flag: str  # "avoids" | "overuses" | ""


@dataclass(frozen=True)
class LabelerStats:
    """One row of the ``labeler_stats`` table (plus details for metadata)."""

    labeler_id: str
    window: str
    n_labels: int
    gold_accuracy: float | None
    n_gold: int
    kappa_vs_consensus: float | None
    n_with_consensus: int
    median_time_s: float | None
    p90_time_s: float | None
    labels_per_day: float | None
    class_distribution: dict[str, int]
    class_usage: list[ClassUsage] = field(default_factory=list)
    # The kind's own scores against the current consensus, for the labeler's metadata (boxes: precision and
    # recall at IoU 0.5; spans: precision, recall and F1, strict and partial); plain values, not stored in the
    # table. The class kinds' agreement with consensus is kappa_vs_consensus.
    vs_consensus: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The columns of the ``labeler_stats`` table."""
        return {
            "labeler_id": self.labeler_id,
            "window": self.window,
            "gold_accuracy": self.gold_accuracy,
            "kappa_vs_consensus": self.kappa_vs_consensus,
            "n_labels": self.n_labels,
            "median_time_s": self.median_time_s,
            "p90_time_s": self.p90_time_s,
            "labels_per_day": self.labels_per_day,
            "class_distribution": self.class_distribution,
        }

    def usage_flags(self) -> list[ClassUsage]:
        """Only the classes that were flagged."""
        return [usage for usage in self.class_usage if usage.flag]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite_or_none(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _lookup(series: pd.Series, item_ids: pd.Series) -> tuple[NDArray[np.bool_], NDArray[np.object_]]:
    """Which of ``item_ids`` ``series`` (indexed by item id) holds, and its values for those, in order.

    One hash lookup per id (the index's own hash table, built once): ``isin`` on pandas 3's string dtype walks the
    whole other side in Python on every call, which made labeler statistics O(labelers x items).
    """
    positions = series.index.get_indexer(pd.Index(item_ids.to_numpy(dtype=object), dtype=object))
    found = positions >= 0
    return found, series.to_numpy(dtype=object)[positions[found]]


def gold_accuracy(labels: pd.DataFrame, gold: pd.Series) -> tuple[float | None, int]:
    """Share of the labeler's answers on gold items that match the hidden gold label; (None, 0) if none."""
    found, answers = _lookup(gold, labels["item_id"])
    if not found.any():
        return None, 0
    correct = labels["label"].to_numpy(dtype=object)[found] == answers
    return float(correct.mean()), int(found.sum())


def kappa_vs_consensus(
    labels: pd.DataFrame, consensus: pd.Series, classes: Sequence[Any] | None = None
) -> tuple[float | None, int]:
    """Cohen's kappa between the labeler and the consensus on the items both have; (None, 0) if none.

    The consensus includes the labeler's own vote, which flatters everyone a little and a labeler who
    labels most items a lot; compare labelers with similar volume, or use gold accuracy.
    """
    found, agreed = _lookup(consensus, labels["item_id"])
    if not found.any():
        return None, 0
    own = pd.Series(labels["label"].to_numpy(dtype=object)[found])
    kappa = cohen_kappa(own, pd.Series(agreed), classes=classes)
    return _finite_or_none(kappa), int(found.sum())


def time_stats(lead_times: pd.Series) -> tuple[float | None, float | None]:
    """Median and 90th percentile of the time spent per label, ignoring missing or negative values."""
    numbers = pd.to_numeric(lead_times, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    values = numbers[numbers >= 0]  # NaN compares false: dropped too
    if values.size == 0:
        return None, None
    return float(np.median(values)), float(np.quantile(values, 0.9))  # numpy's default = pandas' linear


def labels_per_day(created_at: pd.Series) -> float | None:
    """Labels per active day (UTC days with at least one label), so holidays do not lower the rate."""
    stamps = pd.to_datetime(created_at, utc=True, errors="coerce").dropna()
    if stamps.empty:
        return None
    days = np.unique(stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[D]"))
    return float(len(stamps) / len(days))


def class_usage(
    labels: pd.DataFrame,
    classes: Sequence[Any],
    *,
    consensus: pd.Series | None = None,
    population_shares: Mapping[Any, float] | None = None,
    min_count: float = 5.0,
    low_ratio: float = 0.5,
    high_ratio: float = 2.0,
) -> list[ClassUsage]:
    """Compare the labeler's use of each class with what the items they labeled suggest.

    The reference is the consensus label distribution of the very items this labeler labeled (which
    controls for a labeler who simply saw a different mix); without consensus, ``population_shares``
    (e.g. all labelers' label shares). A class is flagged ``avoids`` when at least ``min_count``
    labels were expected but fewer than ``low_ratio`` of them were given, and ``overuses`` when at least
    ``min_count`` were given and more than ``high_ratio`` times the expectation.
    """
    n = len(labels)
    observed = labels["label"].value_counts()
    if consensus is not None:
        found, seen = _lookup(consensus, labels["item_id"])
        reference = pd.Series(seen).value_counts(normalize=True) if found.any() else None
    else:
        reference = None
    if reference is None:
        if population_shares is None:
            return []
        reference = pd.Series(dict(population_shares), dtype=float)
        total = reference.sum()
        reference = reference / total if total > 0 else reference
    out = []
    for label in classes:
        got = int(observed.get(label, 0))
        expected = float(reference.get(label, 0.0)) * n
        ratio = got / expected if expected > 0 else (float("inf") if got > 0 else 1.0)
        flag = ""
        if expected >= min_count and ratio < low_ratio:
            flag = "avoids"
        elif got >= min_count and ratio > high_ratio:
            flag = "overuses"
        out.append(ClassUsage(label=label, observed=got, expected=expected, ratio=ratio, flag=flag))
    return out


def compute_labeler_stats(
    labels: pd.DataFrame,
    *,
    labeler_id: str,
    classes: Sequence[Any],
    gold: pd.Series | None = None,
    consensus: pd.Series | None = None,
    population_shares: Mapping[Any, float] | None = None,
    window: str = ALL_WINDOW,
) -> LabelerStats:
    """Every statistic for one labeler over the rows given (already restricted to a window if any).

    Args:
        labels: this labeler's current annotations: ``item_id, label`` and optionally ``lead_time_s``,
            ``created_at``; one row per item.
        labeler_id: the labeler (for the result row).
        classes: the project's class list (class_distribution and usage list every class).
        gold: hidden gold labels indexed by item_id.
        consensus: consensus labels indexed by item_id.
        population_shares: class shares to compare against when no consensus is available.
        window: ``all`` or a window name such as an ISO week.
    """
    empty = pd.Series(dtype=object)
    gold = gold if gold is not None else empty
    consensus_labels = consensus if consensus is not None else empty
    accuracy, n_gold = gold_accuracy(labels, gold)
    kappa, n_consensus = kappa_vs_consensus(labels, consensus_labels, classes)
    median, p90 = time_stats(labels["lead_time_s"]) if "lead_time_s" in labels else (None, None)
    rate = labels_per_day(labels["created_at"]) if "created_at" in labels else None
    counts = labels["label"].value_counts()
    return LabelerStats(
        labeler_id=labeler_id,
        window=window,
        n_labels=len(labels),
        gold_accuracy=accuracy,
        n_gold=n_gold,
        kappa_vs_consensus=kappa,
        n_with_consensus=n_consensus,
        median_time_s=median,
        p90_time_s=p90,
        labels_per_day=rate,
        class_distribution={str(c): int(counts.get(c, 0)) for c in classes},
        class_usage=class_usage(
            labels, classes, consensus=consensus, population_shares=population_shares
        ),
    )


def iso_week(stamps: pd.Series) -> pd.Series:
    """ISO week names like ``2026-W07`` for UTC timestamps."""
    parsed = pd.to_datetime(stamps, utc=True, errors="coerce")
    iso = parsed.dt.isocalendar()
    return iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)


def weekly_trend(
    labels: pd.DataFrame,
    *,
    labeler_id: str,
    classes: Sequence[Any],
    gold: pd.Series | None = None,
    consensus: pd.Series | None = None,
    last_weeks: int = 8,
    stats: Callable[..., LabelerStats] = compute_labeler_stats,
) -> list[LabelerStats]:
    """Statistics per ISO week (by ``created_at``) for the labeler's most recent ``last_weeks`` active weeks.

    ``stats``: one window's statistics, :func:`compute_labeler_stats` or, for label sets,
    :func:`.multilabel_stats.compute_set_labeler_stats` (called with the arguments and ``window``)."""
    return [
        stats(rows, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus, window=week)
        for week, rows in weekly_windows(labels, last_weeks)
    ]


def weekly_windows(labels: pd.DataFrame, last_weeks: int) -> list[tuple[str, pd.DataFrame]]:
    """(ISO week, the labels created in it) for the most recent ``last_weeks`` active weeks, oldest first;
    nothing when no label has a ``created_at``. One windowing for single-label and label-set trends."""
    if "created_at" not in labels or labels["created_at"].isna().all():
        return []
    dated = labels[labels["created_at"].notna()]
    # A caller with many labelers names the weeks once for all of them (leaderboard._plain).
    weeks = dated["iso_week"] if "iso_week" in dated else iso_week(dated["created_at"])
    return [(str(week), dated[(weeks == week).to_numpy()]) for week in sorted(weeks.unique())[-last_weeks:]]


@dataclass(frozen=True)
class SpeedCheck:
    """Whether a labeler labels suspiciously fast compared with peers."""

    too_fast: bool
    median_time_s: float | None
    peer_median_time_s: float | None
    ratio: float | None
    reason: str


def speed_check(
    median_time_s: float | None, peer_median_times: Sequence[float], *, factor: float = 0.25, min_peers: int = 2
) -> SpeedCheck:
    """Flag a labeler whose median time per label is below ``factor`` x the median of peers' medians.

    Far-below-peer speed on the same kind of items usually means clicking through without looking;
    with fewer than ``min_peers`` peers there is no baseline and nothing is flagged.
    """
    peers = np.asarray([t for t in peer_median_times if t is not None and np.isfinite(t)], dtype=float)
    if median_time_s is None:
        return SpeedCheck(False, None, None, None, "no lead times recorded")
    if len(peers) < min_peers:
        return SpeedCheck(False, median_time_s, None, None, f"only {len(peers)} peer(s) with lead times")
    baseline = float(np.median(peers))
    if baseline <= 0:
        return SpeedCheck(False, median_time_s, baseline, None, "peer median time is zero")
    ratio = median_time_s / baseline
    too_fast = ratio < factor
    reason = (
        f"median {median_time_s:.1f}s is {ratio:.2f}x the peer median {baseline:.1f}s"
        f" ({'below' if too_fast else 'above'} the {factor:.2f}x limit)"
    )
    return SpeedCheck(too_fast, median_time_s, baseline, ratio, reason)
