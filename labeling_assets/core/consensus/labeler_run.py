"""The labeler quality stage as one service: per-labeler statistics (stored) and the automatic pause.

``run_labeler_stats(store, kind, options, labeler_keys)`` is what the ``labeler_stats`` asset calls (the shape of
``run_consensus``): any set of labelers is computed from one read of the votes, grouped once, so 500 labelers
cost about what one does. ``labeler_board`` is the leaderboard's table. The asset turns both into metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from labeling_assets.core.consensus.adaptive_gold import GoldRates, labeler_gold_rate, rate_for_verdict
from labeling_assets.core.consensus.auto_pause import ACTOR, auto_pauses
from labeling_assets.core.consensus.gates import (
    GoldCounts,
    RateGate,
    gold_gate,
    with_names_intervals_and_cost,
)
from labeling_assets.core.consensus.leaderboard import LabelerReport, labeler_reports, leaderboard_frame
from labeling_assets.core.consensus.spot_check import (
    DEFAULT_ACCEPTANCE_THRESHOLD,
    acceptance_counts,
    acceptance_gate,
)
from labeling_assets.core.store.human_loop import (
    PAUSE,
    labeler_ids_for,
    labeler_keys,
    pause_intervals,
    paused_since,
    record_pause_event,
)
from labeling_assets.core.store.queries import load_quality_inputs, record_labeler_stats
from labeling_assets.core.store.schema import LabelStore, utcnow
from labeling_assets.core.store.spot_checks import verdict_frame
from labeling_assets.core.tasks.kind import TaskKind

Log = Callable[[str], None]

# What an automatic pause does in Label Studio: nothing (removal from the organization cannot be undone through
# the API, so a person decides it with `labeling-assets labeler pause`).
AUTO_PAUSE_EFFECT = "Label Studio access kept (automatic pause): new votes are excluded from consensus"


def _quiet(_message: str) -> None:
    return None


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class LabelerOptions:
    """The run's knobs (the asset's config) and the project's settings."""

    classes: Sequence[str]
    allow_empty: bool = True
    allow_overlap: bool = False  # text spans: ProjectSettings.allow_overlapping_spans
    trend_weeks: int = 8
    auto_pause: bool = True
    pay_rate_per_hour: float | None = None
    pay_rates_per_hour: dict[str, float] = field(default_factory=dict)
    gold_gate_threshold: float | None = None  # None: the kind's own (``TaskKind.gold_gate_threshold``)
    acceptance_threshold: float = DEFAULT_ACCEPTANCE_THRESHOLD  # the spot checks' acceptance gate
    gold_rates: GoldRates = field(default_factory=GoldRates)  # adaptive gold (core/consensus/adaptive_gold.py)

    def gold_threshold(self, kind: TaskKind) -> float:
        """The gold gate's threshold: the project's setting, else the kind's default."""
        return kind.gold_gate_threshold if self.gold_gate_threshold is None else self.gold_gate_threshold


@dataclass(frozen=True)
class LabelerStatsRun:
    """What a run computed: each labeler's report (by Label Studio user id), their names, who was paused now, and
    the kind's gold report."""

    reports: dict[str, LabelerReport]
    names: dict[str, str]  # labeler id -> name (the partition key)
    n_labelers: int
    auto_paused: list[str]
    gold_report: dict[str, Any]
    acceptance: dict[str, RateGate] = field(default_factory=dict)  # labeler id -> spot-check acceptance gate
    gold_rates: dict[str, tuple[float, str]] = field(default_factory=dict)  # labeler id -> adaptive gold (rate, why)


def gold_counts(kind: TaskKind, classes: Sequence[str]) -> GoldCounts:
    """The gold gate's counts as the kind scores gold: answers right, or for label sets findings caught / absent
    classes left (the worse)."""
    return lambda labels, truth: kind.gold_score(labels, truth, list(classes))


def run_labeler_stats(
    store: LabelStore, kind: TaskKind, options: LabelerOptions, keys: Sequence[str], *,
    log: Log = _quiet, warn: Log = _quiet,
) -> LabelerStatsRun:  # fmt: skip
    """Statistics of the labelers named ``keys`` (partition keys), stored with their weekly trend; the automatic
    pause of those whose gold gate surely fails (``options.auto_pause``)."""
    ids = labeler_ids_for(store, list(keys))  # partition key (a name) -> Label Studio user id
    names = {labeler_id: key for key, labeler_id in ids.items()}
    classes = list(options.classes)
    inputs = load_quality_inputs(store, classes, task_type=kind.name, allow_empty=options.allow_empty,
                                 allow_overlap=options.allow_overlap)
    reports = labeler_reports(inputs, classes, list(ids.values()), trend_weeks=options.trend_weeks, kind=kind)
    now = utcnow()
    record_labeler_stats(
        store, [{**s.row(), "computed_at": now} for r in reports.values() for s in [r.stats, *r.trend]]
    )
    for labeler_id, r in list(reports.items())[:20]:
        log(
            f"{names[labeler_id]} (id {labeler_id}): {r.stats.n_labels} labels, gold accuracy {_fmt(r.stats.gold_accuracy)} on "
            f"{r.stats.n_gold}, kappa vs consensus {_fmt(r.stats.kappa_vs_consensus)}; {r.speed.reason}"
        )
    counts = gold_counts(kind, classes)
    threshold = options.gold_threshold(kind)
    verdicts = verdict_frame(store)
    auto = (_auto_pause(store, inputs.votes, inputs.gold, names, counts, threshold, warn, verdicts,
                        options.acceptance_threshold) if options.auto_pause else [])  # fmt: skip
    gold = kind.gold_report(inputs.votes, inputs.gold, classes, names)
    accepted = acceptance_counts(verdicts)
    gates = {k: acceptance_gate(*accepted.get(k, (0, 0)), options.acceptance_threshold) for k in reports}
    return LabelerStatsRun(reports, names, len(ids), auto, gold, gates,
                           adaptive_gold_rates(inputs.votes, inputs.gold, list(reports), counts, threshold,
                                               options.gold_rates))  # fmt: skip


def adaptive_gold_rates(votes: pd.DataFrame, truth: pd.Series, labeler_ids: Sequence[str], counts: GoldCounts,
                        threshold: float, rates: GoldRates) -> dict[str, tuple[float, str]]:  # fmt: skip
    """Labeler id -> (adaptive gold rate, why): high until the gold interval is clear of the gate, then the floor."""
    groups = {str(k): rows for k, rows in votes.groupby("labeler_id", sort=False)} if not votes.empty else {}
    out = {}
    for labeler_id in labeler_ids:
        correct, n = counts(groups.get(str(labeler_id), votes.iloc[0:0]), truth)
        out[str(labeler_id)] = labeler_gold_rate(gold_gate(correct, n, threshold) if n else None, rates)
    return out


def labeler_board(store: LabelStore, kind: TaskKind, options: LabelerOptions) -> pd.DataFrame:
    """Every labeler side by side (``leaderboard_frame``) with names, gold intervals, cost and pauses."""
    classes = list(options.classes)
    inputs = load_quality_inputs(store, classes, task_type=kind.name, allow_empty=options.allow_empty,
                                 allow_overlap=options.allow_overlap)
    board = with_names_intervals_and_cost(
        leaderboard_frame(inputs, classes, kind=kind), inputs.votes, inputs.gold, labeler_keys(store),
        rate_per_hour=options.pay_rate_per_hour, rates=options.pay_rates_per_hour, paused=list(paused_since(store)),
        counts=gold_counts(kind, classes), threshold=options.gold_threshold(kind),
        acceptance=acceptance_counts(verdict_frame(store)), acceptance_threshold=options.acceptance_threshold,
    )  # fmt: skip
    # Adaptive gold: the rate each labeler's evidence asks for (applied by the queue when adaptive_gold is on).
    verdicts = board["gold_verdict"] if "gold_verdict" in board else pd.Series(dtype=object)
    board["gold_rate"] = [rate_for_verdict(str(v), options.gold_rates) for v in verdicts]
    return board


def _auto_pause(store: LabelStore, votes: pd.DataFrame, truth: pd.Series, names: dict[str, str],
                counts: GoldCounts, threshold: float, warn: Log, verdicts: pd.DataFrame | None = None,
                acceptance_threshold: float = DEFAULT_ACCEPTANCE_THRESHOLD) -> list[str]:  # fmt: skip
    """Record a pause (actor "gate") for each labeler in this run whose gold gate or spot-check acceptance gate is
    sure to fail; their names. The pause starts now, so nothing they answered before is reopened (like `labeler
    pause` without --since)."""
    paused = []
    for decision in auto_pauses(votes, truth, list(names), pause_intervals(store), threshold, counts,
                                verdicts=verdicts, acceptance_threshold=acceptance_threshold):  # fmt: skip
        record_pause_event(store, decision.labeler_id, PAUSE, reason=decision.reason, actor=ACTOR,
                           label_studio_effect=AUTO_PAUSE_EFFECT)  # fmt: skip
        warn(f"paused {names[decision.labeler_id]} automatically: {decision.reason}")
        paused.append(names[decision.labeler_id])
    return paused
