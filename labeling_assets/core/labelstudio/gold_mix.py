"""Adaptive gold in the queue: the share of hidden gold among a run's new tasks, from the labelers' gold evidence.

Each labeler's rate is ``core/consensus/adaptive_gold.labeler_gold_rate`` on their gold gate as ``labeler_stats``
judges it (the kind's gold score on hidden gold and adjudicated items; the project's or the kind's threshold). A
shared Label Studio project hands tasks to whoever asks next, so the run's share is the mean rate of the labelers
working now (who have answered and are not paused). The gold items themselves are chosen and hidden as before
(``tasks.choose_queue``: gold and regular tasks are built alike; nothing tells a labeler which is which).
"""

from __future__ import annotations

from collections.abc import Sequence

from labeling_assets.core.consensus.adaptive_gold import GoldRates, queue_gold_rate
from labeling_assets.core.consensus.labeler_run import adaptive_gold_rates, gold_counts
from labeling_assets.core.store.human_loop import labeler_keys, paused_since
from labeling_assets.core.store.queries import load_quality_inputs
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.tasks.kind import TaskKind


def adaptive_gold_rate(
    store: LabelStore, kind: TaskKind, classes: Sequence[str], rates: GoldRates, threshold: float | None, *,
    allow_empty: bool = True, allow_overlap: bool = False,
) -> tuple[float, str, dict[str, float]]:  # fmt: skip
    """(the run's gold share, why, labeler name -> their rate)."""
    inputs = load_quality_inputs(store, list(classes), task_type=kind.name, allow_empty=allow_empty,
                                 allow_overlap=allow_overlap)  # fmt: skip
    ids = sorted({str(i) for i in inputs.votes["labeler_id"]}) if not inputs.votes.empty else []
    gate = kind.gold_gate_threshold if threshold is None else threshold
    per_id = adaptive_gold_rates(inputs.votes, inputs.gold, ids, gold_counts(kind, classes), gate, rates)
    paused = {str(i) for i in paused_since(store)}
    working = [i for i in ids if i not in paused]
    rate, why = queue_gold_rate({i: r for i, (r, _) in per_id.items()}, working, rates)
    names = labeler_keys(store)
    return rate, why, {names.get(i, i): r for i, (r, _) in per_id.items()}
