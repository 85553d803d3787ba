"""The loop at a glance, for a team's own dashboard: the receiver's ``GET /stats`` (``labeling_assets/webhooks``).

One fixed set of aggregate queries on the label store (no Label Studio, MLflow or Dagster call): its cost grows
with the number of labelers and dataset versions, not with a scan the caller can choose. Nothing in it is a secret
(no URL, token or password; labelers appear by the name Label Studio shows, as in the leaderboard).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from labeling_assets.core.store.alerts import queue_motion
from labeling_assets.core.store.human_loop import pause_states, review_backlog
from labeling_assets.core.store.human_loop_schema import labeler_pauses_table
from labeling_assets.core.store.schema import (
    LabelStore,
    current_annotations_query,
    dataset_versions_table,
    items_table,
    labeler_stats_table,
    labelers_table,
    latest_consensus_query,
    prelabels_table,
    tasks_table,
    utcnow,
)

BASELINE_PREFIX = "baseline-"  # the pixel baseline's pre-labels (core/training/baseline.py), never a champion
STATS_WINDOW = "all"  # labeler_stats' window over every answer


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=dt.UTC)
    return str(value.astimezone(dt.UTC).isoformat())


def _items_by_status(store: LabelStore) -> dict[str, int]:
    t = items_table
    rows = store.fetch(sa.select(t.c.status, sa.func.count().label("n")).group_by(t.c.status))
    return {str(r["status"]): int(r["n"]) for r in rows}


def _consensus_items(store: LabelStore) -> int:
    """Items whose newest consensus version stands (not retracted)."""
    live = latest_consensus_query().subquery()
    return int(store.fetch(sa.select(sa.func.count().label("n")).select_from(live))[0]["n"])


def _unqueued_items(store: LabelStore) -> int:
    """Active items in no labeling task yet (any project)."""
    queued = sa.select(tasks_table.c.item_id)
    query = sa.select(sa.func.count().label("n")).where(items_table.c.status == "active", items_table.c.item_id.notin_(queued))
    return int(store.fetch(query)[0]["n"])


def _labelers(store: LabelStore) -> list[dict[str, Any]]:
    current = current_annotations_query().subquery()
    answers = {
        str(r["labeler_id"]): int(r["n"])
        for r in store.fetch(sa.select(current.c.labeler_id, sa.func.count().label("n")).group_by(current.c.labeler_id))
    }
    s = labeler_stats_table
    newest = (
        sa.select(s.c.labeler_id, sa.func.max(s.c.id).label("id")).where(s.c.window == STATS_WINDOW).group_by(s.c.labeler_id)
    ).subquery()
    stats = {
        str(r["labeler_id"]): r
        for r in store.fetch(
            sa.select(s.c.labeler_id, s.c.gold_accuracy, s.c.kappa_vs_consensus, s.c.computed_at).join(
                newest, s.c.id == newest.c.id
            )
        )
    }
    pauses = pause_states(store)
    p = labeler_pauses_table
    actors = {
        str(r["labeler_id"]): r["actor"]
        for r in store.fetch(sa.select(p.c.labeler_id, p.c.actor).where(p.c.action == "pause").order_by(p.c.at, p.c.id))
    }  # the newest pause's actor wins
    out = []
    for r in store.fetch(sa.select(labelers_table.c.labeler_id, labelers_table.c.display_name, labelers_table.c.username)):
        labeler = str(r["labeler_id"])
        row = stats.get(labeler)
        pause = pauses.get(labeler)
        paused = bool(pause and pause.paused)
        out.append({
            "labeler_id": labeler,
            "name": r["display_name"] or r["username"] or labeler,
            "answers": answers.get(labeler, 0),
            "gold_accuracy": None if row is None or row["gold_accuracy"] is None else float(row["gold_accuracy"]),
            "kappa_vs_consensus": None if row is None or row["kappa_vs_consensus"] is None else float(row["kappa_vs_consensus"]),
            "stats_computed_at": None if row is None else _iso(row["computed_at"]),
            "paused": paused,
            # "gate": a quality gate paused them automatically; otherwise the person who did.
            "paused_by": actors.get(labeler) if paused else None,
            "paused_since": _iso(pause.since) if paused and pause else None,
            "pause_reason": pause.reason if paused and pause else None,
        })  # fmt: skip
    return sorted(out, key=lambda x: (str(x["name"]), str(x["labeler_id"])))


def _dataset_version(store: LabelStore) -> dict[str, Any] | None:
    d = dataset_versions_table
    rows = store.fetch(
        sa.select(d.c.dataset_version, d.c.created_at, d.c.n_items).order_by(d.c.created_at.desc()).limit(1)
    )
    if not rows:
        return None
    return {"version": rows[0]["dataset_version"], "created_at": _iso(rows[0]["created_at"]), "items": int(rows[0]["n_items"])}


def _prelabel_model(store: LabelStore) -> dict[str, Any] | None:
    """The model whose pre-labels were written last: the champion's (prelabel_job uses it whenever MLflow has one)
    or the pixel baseline's."""
    p = prelabels_table
    at = sa.func.max(p.c.computed_at).label("at")
    rows = store.fetch(sa.select(p.c.model_version, at).group_by(p.c.model_version).order_by(at.desc()).limit(1))
    if not rows:
        return None
    return {"model_version": rows[0]["model_version"], "prelabeled_at": _iso(rows[0]["at"])}


def loop_stats(store: LabelStore, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Dashboard-ready JSON (plain dicts, lists, numbers and strings) of the store's state now."""
    motion = queue_motion(store)
    model = _prelabel_model(store)
    champion = model["model_version"] if model and not str(model["model_version"]).startswith(BASELINE_PREFIX) else None
    return {
        "generated_at": _iso(now or utcnow()),
        "items_by_status": _items_by_status(store),
        "items_with_consensus": _consensus_items(store),
        "open_tasks": motion.open_tasks,
        "last_queue_motion_at": _iso(motion.last_motion_at),
        "backlog": {"unqueued_items": _unqueued_items(store), "expert_review": review_backlog(store)},
        "labelers": _labelers(store),
        "dataset_version": _dataset_version(store),
        "prelabel_model": model,
        "champion": champion,
    }
