"""The allocator's store side: what it reads about a project's items and labelers, and its audit (migration 18).

``allocation_decisions`` (``allocation_schema``) gets one row per decision, written once; the QA report and the
queue's metadata read :func:`decision_summary`. The rule itself is ``core/allocation/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.allocation.allocator import Decision
from labeling_assets.core.allocation.live import LabeledRow
from labeling_assets.core.consensus.review_routing import EXPERT_REVIEW
from labeling_assets.core.store.allocation_schema import allocation_decisions_table
from labeling_assets.core.store.human_loop import adjudicated_labels, labeler_keys
from labeling_assets.core.store.queries import load_quality_inputs
from labeling_assets.core.store.schema import (
    LabelStore,
    latest_consensus_query,
    review_requests_table,
    tasks_table,
    utcnow,
)
from labeling_assets.core.tasks.kind import TaskKind

FALLBACK = "fallback"  # action of a row that records why the allocator did not decide a run


def labeled_rows(store: LabelStore, project_id: int) -> list[LabeledRow]:
    """The project's regular items with a task and a live consensus, less those an expert has settled or is asked
    to settle (only an expert answer changes them now)."""
    t = tasks_table
    latest = latest_consensus_query().subquery()
    rows = store.fetch(
        sa.select(t.c.item_id, t.c.required_annotations, latest.c.label, latest.c.confidence,
                  latest.c.n_annotators, latest.c.probabilities)
        .join(latest, latest.c.item_id == t.c.item_id)
        .where(t.c.ls_project_id == project_id, t.c.ls_task_id.isnot(None), t.c.is_gold.is_(False))
        .order_by(t.c.item_id)
    )  # fmt: skip
    rr = review_requests_table
    asked = {r["item_id"] for r in store.fetch(
        sa.select(rr.c.item_id).where(rr.c.resolved_at.is_(None), rr.c.action == EXPERT_REVIEW))}  # fmt: skip
    settled = set(adjudicated_labels(store).index) | asked
    return [
        LabeledRow(str(r["item_id"]), r["label"], float(r["confidence"]), int(r["n_annotators"]),
                   int(r["required_annotations"]), r["probabilities"] if isinstance(r["probabilities"], dict) else None)
        for r in rows if r["item_id"] not in settled
    ]  # fmt: skip


def crowd_gold(store: LabelStore, kind: TaskKind, classes: Sequence[str], *, allow_empty: bool = True,
               allow_overlap: bool = False) -> tuple[int, int, dict[str, float]]:  # fmt: skip
    """(gold answers right, gold answers scored, labeler name -> median seconds per answer): the crowd's gold
    score as the kind scores it (hidden gold and adjudicated items), and each labeler's pace for the costs."""
    inputs = load_quality_inputs(store, list(classes), task_type=kind.name, allow_empty=allow_empty,
                                 allow_overlap=allow_overlap)  # fmt: skip
    votes = inputs.votes
    if votes.empty:
        return 0, 0, {}
    correct, answered = kind.gold_score(votes, inputs.gold, list(classes))
    names = labeler_keys(store)
    times = pd.to_numeric(votes["lead_time_s"], errors="coerce")
    medians = times.groupby(votes["labeler_id"].astype(str)).median().dropna()
    return int(correct), int(answered), {names.get(str(k), str(k)): float(v) for k, v in medians.items() if np.isfinite(v)}


def record_decisions(
    store: LabelStore, run_id: str, project_id: int | None, decisions: Sequence[Decision],
    outcomes: Mapping[str, str], fallbacks: Mapping[str, int] | None = None,
) -> int:  # fmt: skip
    """Audit a run: each decision with what the queue did with it (``outcomes``: item -> outcome), and one row
    per fall-back reason (its count in ``slot``); returns the rows written."""
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {"run_id": run_id, "project_id": project_id, "slot": d.slot, "item_id": d.item_id, "action": d.action,
         "random_arm": d.arm == "random", "estimated_gain": float(d.estimated_gain), "cost": float(d.cost),
         "gain_per_cost": float(d.gain_per_cost), "reason": d.reason, "outcome": outcomes.get(d.item_id, "not acted on"),
         "decided_at": now}
        for d in decisions
    ]  # fmt: skip
    rows += [
        {"run_id": run_id, "project_id": project_id, "slot": int(count), "item_id": None, "action": FALLBACK,
         "random_arm": False, "estimated_gain": None, "cost": None, "gain_per_cost": None, "reason": reason,
         "outcome": "counted", "decided_at": now}
        for reason, count in sorted((fallbacks or {}).items())
    ]  # fmt: skip
    if rows:
        with store.begin() as conn:
            conn.execute(allocation_decisions_table.insert(), rows)
    return len(rows)


def decision_rows(store: LabelStore, run_id: str | None = None) -> pd.DataFrame:
    """The audited decisions (one run's, or all), oldest first."""
    t = allocation_decisions_table
    query = sa.select(t).order_by(t.c.id)
    if run_id is not None:
        query = query.where(t.c.run_id == run_id)
    rows = store.fetch(query)
    return pd.DataFrame(rows, columns=[c.name for c in t.columns]) if rows else pd.DataFrame(columns=[c.name for c in t.columns])


def decision_summary(frame: pd.DataFrame) -> dict[str, Any]:
    """Counts by action and arm, the random arm's share of decisions, estimated gain and cost by arm, fall-backs."""
    if frame.empty:
        return {"runs": 0, "decisions": 0}
    made = frame[frame["action"] != FALLBACK]
    fallen = frame[frame["action"] == FALLBACK]
    by_arm = {
        str(arm): {"decisions": len(g), "estimated_gain": round(float(g["estimated_gain"].sum()), 4),
                   "cost": round(float(g["cost"].sum()), 4)}
        for arm, g in made.groupby(made["random_arm"].map({True: "random", False: "allocator"}))
    }  # fmt: skip
    return {
        "runs": int(frame["run_id"].nunique()),
        "decisions": len(made),
        "by_action": {str(k): int(v) for k, v in made["action"].value_counts().sort_index().items()},
        "random_arm_share": round(float(made["random_arm"].mean()), 4) if len(made) else 0.0,
        "by_arm": by_arm,
        "by_outcome": {str(k): int(v) for k, v in made["outcome"].value_counts().sort_index().items()},
        "fallbacks": {str(k): int(v) for k, v in fallen.groupby("reason")["slot"].sum().sort_index().items()},
    }

