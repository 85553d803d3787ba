"""The review project's tasks built from the store: each item's votes with names and gold accuracy, the model's
prediction, the image and its consensus answer pre-drawn (the layout is ``core/labelstudio/review.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from labeling_assets.core.consensus.gates import wilson_interval
from labeling_assets.core.label_sets import NONE_OF_THESE, SINGLE_LABEL, TaskType
from labeling_assets.core.labelstudio.review import ShownVote, explained_class, review_task, top_prediction
from labeling_assets.core.labelstudio.tasks import shown_object, task_data
from labeling_assets.core.store.human_loop import labeler_keys, user_display_name
from labeling_assets.core.store.labelstudio_sync import newest_prelabels
from labeling_assets.core.store.queries import item_uris, load_quality_inputs
from labeling_assets.core.store.schema import LabelStore, consensus_table, items_table, latest_consensus_query
from labeling_assets.core.tasks.kind import ItemMedia
from labeling_assets.core.tasks.registry import task_kind


def review_payloads(
    store: LabelStore,
    wanted: Mapping[str, str | None],
    classes: list[str],
    data_root: Path,
    *,
    task_type: TaskType = SINGLE_LABEL,
    allow_empty: bool = True,
    allow_overlap: bool = False,
    overlays: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The review task of each wanted item (item_id -> why it needs an expert), in item order. The votes shown are
    the kind's answers (label sets: their classes), a labeler's gold accuracy is named as the kind measures it
    (``gold_accuracy_name``: exact-set for label sets) and the model's line is the kind's (``review_model_line``);
    ``overlays``: item_id -> the URL of its Grad-CAM overlay (a config with the overlay needs one for every item)."""
    if not wanted:
        return []
    kind = task_kind(task_type)
    inputs = load_quality_inputs(store, classes, task_type=task_type, allow_empty=allow_empty,
                                 allow_overlap=allow_overlap)
    names = labeler_keys(store)
    accuracy = {}
    for labeler_id, rows in inputs.votes.groupby("labeler_id"):
        correct, n = kind.gold_score(rows, inputs.gold, classes)  # boxes: matched / (gold + false boxes)
        accuracy[str(labeler_id)] = (correct, n)
    uris = item_uris(store)
    shown_tag, data_key = shown_object(kind)  # an image's URL, or a text kind's text
    prelabels = newest_prelabels(store, list(wanted))
    consensus = _consensus_of(store, list(wanted))
    votes = inputs.votes[inputs.votes["item_id"].isin(set(wanted))]
    by_item = {str(k): rows for k, rows in votes.groupby("item_id")}
    payloads = []
    for item_id in sorted(wanted):
        shown = []
        for row in by_item.get(item_id, votes.iloc[0:0]).to_dict("records"):
            labeler_id = str(row["labeler_id"])
            correct, n = accuracy.get(labeler_id, (0, 0))
            low, high = wilson_interval(correct, n) if n else (None, None)
            shown.append(ShownVote(names.get(labeler_id, labeler_id), _shown_label(row["label"]),
                                   correct / n if n else None, n, low, high))  # fmt: skip
        probs, version = prelabels.get(item_id, (None, None))
        model_line = kind.review_model_line(probs, version)  # None: the top class (a class kind's own form)
        data = task_data(uris.get(item_id), data_root, (shown_tag, data_key))
        media = str(data.get(data_key, ""))
        label, confidence, width, height = consensus.get(item_id, (None, None, None, None))
        # The expert fixes the crowd's answer: it opens pre-drawn (none where the item has no live consensus).
        drawn = kind.answer_result(label, ItemMedia(media if shown_tag == "Text" else None, width, height))
        payloads.append(
            review_task(
                item_id,
                media,
                shown,
                reason=wanted[item_id] or "expert review",
                prediction=top_prediction(probs) if model_line is None else None,
                model_version=version,
                model_line=model_line,
                gold_header=kind.gold_accuracy_name,
                data_key=data_key,
                data=data,
                consensus=None if drawn is None else (drawn, confidence),
                overlay_url=None if overlays is None else overlays.get(item_id, ""),
            )
        )
    return payloads


def model_disagreements(store: LabelStore, item_ids: list[str]) -> dict[str, str]:
    """item_id -> the class to explain, for the items whose newest pre-label disagrees with their live consensus
    (:func:`explained_class`); items without either are not in it."""
    prelabels = newest_prelabels(store, item_ids)
    consensus = _consensus_of(store, item_ids)
    out = {}
    for item_id in item_ids:
        probs, _ = prelabels.get(item_id, (None, None))
        label = consensus.get(item_id, (None,))[0]
        explained = explained_class(probs, label)
        if explained is not None:
            out[item_id] = explained
    return out


def _consensus_of(
    store: LabelStore, item_ids: list[str]
) -> dict[str, tuple[Any, float | None, float | None, float | None]]:
    """item_id -> (live consensus answer, its confidence, the item's width and height in pixels) of the items."""
    latest = latest_consensus_query().where(consensus_table.c.item_id.in_(item_ids)).subquery()
    rows = store.fetch(
        sa.select(latest.c.item_id, latest.c.label, latest.c.confidence, items_table.c.width, items_table.c.height)
        .select_from(latest.outerjoin(items_table, items_table.c.item_id == latest.c.item_id))
    )
    return {r["item_id"]: (r["label"], r["confidence"], r["width"], r["height"]) for r in rows}


def _shown_label(label: Any) -> str:
    """A vote as the expert reads it: the class, a set's classes joined ("none of these" for the empty set), or a
    box answer's boxes counted per class ("no object" for none; the expert sees the image and draws)."""
    if isinstance(label, list | tuple) and label and all(isinstance(x, list | tuple) and len(x) == 3 for x in label):
        return ", ".join(f"{x[2]} {x[0]}-{x[1]}" for x in label)  # entity spans: type and character offsets
    if isinstance(label, list | tuple):
        return ", ".join(map(str, label)) or NONE_OF_THESE
    if isinstance(label, Mapping) and isinstance(label.get("boxes"), list):
        names = [str(n) for box in label["boxes"] if isinstance(box, Mapping) for n in box.get("labels") or []]
        counts = {n: names.count(n) for n in sorted(set(names))}
        return ", ".join(f"{n} x{k}" for n, k in counts.items()) or "no object"
    return str(label)


def reviewer_ids(users: Iterable[Mapping[str, Any]], names: Sequence[str]) -> tuple[dict[str, str] | None, list[str]]:
    """(Label Studio user id -> name of the configured reviewers, names no user has); (None, []) when none are
    configured: then anyone who answers in the review project is the expert."""
    if not names:
        return None, []
    wanted = {n.strip().lower() for n in names}
    found: dict[str, str] = {}
    for user in users:
        aliases = {str(user.get(f) or "").strip().lower() for f in ("username", "email")} - {""}
        if aliases & wanted:
            found[str(user["id"])] = user_display_name(user)
    known = {a for u in users for a in (str(u.get("username") or "").lower(), str(u.get("email") or "").lower())}
    return found, sorted(n for n in names if n.strip().lower() not in known)
