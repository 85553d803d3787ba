"""One item's history as plain text (``labeling-assets item ITEM_ID``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from labeling_assets.core.dataset.diff import label_text
from labeling_assets.core.display import shown


def _t(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return str(value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"))
    return "-" if value is None else str(value)


def _short(value: Any, n: int = 12) -> str:
    return str(value)[:n] if value else "-"


def _answer(label: Any) -> str:
    """A label bounded (a labeler can send a megabyte; the store has it whole); a box answer as its boxes."""
    return shown(label_text(label) if isinstance(label, Mapping) else label)


def _vote_label(label: Any) -> str:
    return "no label (an unreadable answer: see unreadable_answers)" if label is None else f"label {_answer(label)}"


def render_item_history(history: Mapping[str, Any]) -> str:
    """Sections: the item, its tasks, every vote version, consensus versions, split, dataset versions, models."""
    item = history["item"]
    lines = [
        f"item {item['item_id']}",
        f"  source {shown(item['source_path'], 300)}  status {item['status']}"
        + (f" ({item['status_reason']})" if item.get("status_reason") else "")
        + f"  ingested {_t(item['ingested_at'])}",
        f"  group {item['group_key'] or '-'}  gold {'yes' if item.get('gold_label') is not None else 'no'}"
        f"  supersedes {_short(item['supersedes'])}  superseded by "
        f"{', '.join(_short(i) for i in history['superseded_by']) or '-'}",
        f"  pHash {history['phash'] or '-'}  near duplicates "
        + (", ".join(f"{_short(d['item_id'])} ({d['distance']} bits)" for d in history["near_duplicates"]) or "none"),
        "",
        f"tasks ({len(history['tasks'])})",
    ]
    lines += [
        f"  project {t['ls_project_id']} task {t['ls_task_id']}  pushed {_t(t['pushed_at'])}  needs "
        f"{t['required_annotations']}  gold {bool(t['is_gold'])}  prelabel model {t['model_version'] or '-'}"
        for t in history["tasks"]
    ]
    lines += ["", f"votes ({len(history['votes'])} versions; valid time = updated in Label Studio, known = synced)"]
    lines += [
        f"  annotation {v['ls_annotation_id']} v{v['version']}  labeler {v['labeler_id']}  "
        + ("DELETED" if v["deleted"] else _vote_label(v["label"]))
        + f"  valid {_t(v['updated_at'] or v['created_at'])}  known {_t(v['synced_at'])}"
        for v in history["votes"]
    ]
    lines += ["", f"consensus versions ({len(history['consensus'])})"]
    lines += [
        f"  v{c['version']}  {c['method']}  "
        + (f"RETRACTED {_answer(c['label'])} ({c['retraction_reason']})" if c["retracted"]
           else f"label {_answer(c['label'])}")
        + f"  confidence {c['confidence']:.3f}  annotators {c['n_annotators']}  computed {_t(c['computed_at'])}"
        for c in history["consensus"]
    ]
    split = history["split"]
    lines += ["", "split (frozen) " + (
        f"{split['split']} since {_t(split['assigned_at'])} (dataset version {split['dataset_version']})"
        if split else "none")]
    held = history.get("held_out")
    if held:
        near = ", ".join(f"{_short(n['item_id'])} ({n['split']})" for n in held.get("frozen_near_duplicates", []))
        lines += [f"held out of dataset version {held['dataset_version']}: {held['reason']}: {near}"]
    lines += ["", f"dataset versions holding it ({len(history['dataset_versions'])})"]
    lines += [
        f"  {d['dataset_version']}  {_t(d['created_at'])}  {_answer(d['label'])} / {d['split']}"
        + (f"  tags {', '.join(d['tags'])}" if d["tags"] else "")
        for d in history["dataset_versions"]
    ]
    lines += ["", f"models that saw it ({len(history['models'])})"]
    lines += [
        f"  {m['model_name']} v{m['model_version']}  trained {_t(m['trained_at'])} on {m['dataset_version']} "
        f"(the item in {m['split']})  MLflow run {m['mlflow_run_id']}"
        for m in history["models"]
    ]
    return "\n".join(lines) + "\n"
