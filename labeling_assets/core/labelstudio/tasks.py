"""Which items go to Label Studio next, in what order, and what exactly is sent.

Pure; the project's kind of task (core/tasks) scores pre-labels and builds predictions. Regular items are ordered by
prelabel uncertainty when probabilities exist (scored items first: an unscored one would reach labelers without the
model's prediction; among unscored items a seeded shuffle), and :func:`awaiting_prelabel` holds back new items whose
pre-label run is still to come once a model pre-labels items; gold items are interleaved
at ``gold_rate`` at random positions. :func:`task_payload` is the ONLY builder of what is sent: it
has no parameter through which a gold answer could pass, and :func:`payload_leaks` double-checks.

Multi-label projects: a prelabel holds independent per-class probabilities (sigmoid marginals); every
strategy but ``random`` ranks by their mean binary entropy, and the prediction pre-fills every class at or above
the model's own threshold for it (chosen on val at training), 0.5 for a model without thresholds
(``NONE_OF_THESE`` when there is none): see core/tasks/multi_label/kind.py.
"""

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args
from xml.etree import ElementTree

import numpy as np

from labeling_assets.core.ingest.edits import EDIT_SUFFIX, read_edit_item
from labeling_assets.core.ingest.text import read_stored_text
from labeling_assets.core.label_sets import SINGLE_LABEL
from labeling_assets.core.labelstudio.config import DATA_KEY
from labeling_assets.core.labelstudio.selection import SelectionInputs, order_regular, uncertainty_score
from labeling_assets.core.tasks.kind import TaskKind
from labeling_assets.core.tasks.registry import task_kind

# random is the baseline every other strategy must beat; the last three: core/labelstudio/selection.py
Strategy = Literal["uncertainty", "margin", "entropy", "random", "diversity", "hybrid", "committee"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
# Keys that must never appear anywhere in a payload sent to Label Studio.
FORBIDDEN_KEYS = frozenset({"gold", "gold_label", "is_gold", "truth", "ground_truth"})
# A text_edits task's own content (task_data): the machine output equals the gold text wherever the machine was right,
# on gold and regular tasks alike, so it tells a labeler nothing; it is the text to correct, not a leak.
ITEM_CONTENT_KEYS = frozenset({"machine", "source", "source_text", "audio_header", "source_header"})
# Multi-label pre-fill: a class is pre-checked when the model gives it at least this probability.


@dataclass(frozen=True)
class Candidate:
    """An item that could be queued. ``probs`` are prelabel class probabilities (None = not scored)."""

    item_id: str
    is_gold: bool = False
    probs: Mapping[str, float] | None = None
    model_version: str | None = None
    ingested_at: dt.datetime | None = None


def awaiting_prelabel(
    candidates: Sequence[Candidate], *, last_prelabel_at: dt.datetime | None, ingested_after: dt.datetime
) -> list[Candidate]:
    """Candidates to leave out of this queue run: not scored, ingested after the last pre-label was computed
    (``last_prelabel_at``; None: no model pre-labels items yet, nothing waits) and after ``ingested_after``.

    Their pre-label run follows their ingest (intake_sensor) and a queue run follows it; queued now, their tasks
    would show no prediction until the next queue run (issue 26's long run: a top-up took a newer ingest's items
    before their pre-labels). An item older than the last pre-label run was passed over by it and does not wait;
    the age bound keeps a failing pre-label run from holding an item back for good."""
    if last_prelabel_at is None:
        return []
    since = max(last_prelabel_at, ingested_after)
    return [c for c in candidates if c.probs is None and c.ingested_at is not None and c.ingested_at > since]


@dataclass(frozen=True)
class QueuedItem:
    """An item chosen for the queue, in queue order (``position`` 0 is served first)."""

    item_id: str
    is_gold: bool
    position: int
    priority: float  # uncertainty in [0, 1]; 1.0 when not scored
    probs: Mapping[str, float] | None
    model_version: str | None


def uncertainty(probs: Mapping[str, float] | None, strategy: str = "uncertainty", kind: TaskKind | None = None) -> float:
    """Uncertainty in [0, 1] (higher = ask a human first); 1.0 when there are no probabilities: the kind's
    ``informativeness`` (single-label: ``uncertainty`` 1 - max p, ``margin`` 1 - (p1 - p2), ``entropy`` normalized
    Shannon entropy; multi-label: the marginals' mean binary entropy; ``random``: 1.0, order from the seed alone).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    return uncertainty_score(kind or task_kind(SINGLE_LABEL), probs, strategy)


def select_queue(
    candidates: Sequence[Candidate],
    *,
    limit: int,
    gold_rate: float = 0.1,
    strategy: str = "uncertainty",
    seed: int = 0,
    kind: TaskKind | None = None,
    inputs: SelectionInputs | None = None,
) -> list[QueuedItem]:
    """Up to ``limit`` items in queue order with about ``gold_rate`` of them gold (:func:`choose_queue`)."""
    return choose_queue(candidates, limit=limit, gold_rate=gold_rate, strategy=strategy, seed=seed, kind=kind,
                        inputs=inputs).queue  # fmt: skip


@dataclass(frozen=True)
class Selection:
    queue: list[QueuedItem]
    fallbacks: Counter[str]  # reason -> chosen regular items ordered by the fall-back (core/labelstudio/selection.py)


def choose_queue(
    candidates: Sequence[Candidate],
    *,
    limit: int,
    gold_rate: float = 0.1,
    strategy: str = "uncertainty",
    seed: int = 0,
    kind: TaskKind | None = None,
    inputs: SelectionInputs | None = None,
) -> Selection:
    """Up to ``limit`` items in queue order with about ``gold_rate`` of them gold.

    Regular items: in the order of ``strategy`` (core/labelstudio/selection.py; the uncertainty strategies: the
    ``kind``'s informativeness of their pre-labels, :func:`uncertainty`, scored before unscored, ties broken by a
    seeded shuffle). Gold items: a seeded random sample (scored ones first) placed at seeded random positions, so
    nothing about a task's position or payload tells it apart.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    kind = kind or task_kind(SINGLE_LABEL)
    if limit < 0:
        raise ValueError("limit must be >= 0")
    if not 0.0 <= gold_rate < 1.0:
        raise ValueError("gold_rate must be in [0, 1)")
    rng = np.random.default_rng(seed)
    regular = [c for c in candidates if not c.is_gold]
    gold = [c for c in candidates if c.is_gold]
    n_gold = min(len(gold), round(limit * gold_rate))
    n_regular = min(len(regular), limit - n_gold)
    if (
        n_regular < limit - n_gold
    ):  # not enough regular items: fill with gold, never exceed the rate's intent silently
        n_gold = min(len(gold), limit - n_regular)
    shuffled = [regular[i] for i in rng.permutation(len(regular))]
    ordered = order_regular(shuffled, n_regular, strategy, kind, rng, inputs)
    chosen_regular = ordered.items
    gold_order = sorted(rng.permutation(len(gold)).tolist(), key=lambda i: gold[i].probs is None)
    chosen_gold = [(gold[i], uncertainty(gold[i].probs, strategy, kind)) for i in gold_order[:n_gold]]
    total = len(chosen_regular) + len(chosen_gold)
    gold_slots = set(rng.choice(total, size=len(chosen_gold), replace=False).tolist()) if total else set()
    out: list[QueuedItem] = []
    it_regular, it_gold = iter(chosen_regular), iter(chosen_gold)
    for position in range(total):
        cand, score = next(it_gold) if position in gold_slots else next(it_regular)
        out.append(
            QueuedItem(
                item_id=cand.item_id,
                is_gold=cand.is_gold,
                position=position,
                priority=score,
                probs=cand.probs,
                model_version=cand.model_version,
            )
        )
    return Selection(out, ordered.fallbacks)


def task_payload(
    item_id: str,
    image_url: str,
    *,
    probs: Mapping[str, float] | None = None,
    model_version: str | None = None,
    kind: TaskKind | None = None,
    allow_empty: bool = True,
    thresholds: Mapping[str, float] | None = None,
    data_key: str = DATA_KEY,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Label Studio task for an item: image URL (a text kind: the text, under ``data_key`` "text") and item id,
    plus the prelabel as the ``kind``'s prediction (multi-label: a pre-filled set at the model's per-class
    ``thresholds`` when it has them). ``data``: what the task shows instead of ``{data_key: image_url}``
    (:func:`task_data`).

    Takes no gold flag or gold label on purpose: gold and regular tasks are built identically.
    """
    task: dict[str, Any] = {"data": {**(data if data is not None else {data_key: image_url}), "item_id": item_id}}
    if probs:
        prediction = (kind or task_kind(SINGLE_LABEL)).prediction(
            probs, model_version, allow_empty=allow_empty, thresholds=thresholds
        )
        task["predictions"] = [prediction]
    return task


def shown_object(kind: TaskKind) -> tuple[str, str]:
    """(the object tag the kind's config shows, the task data key it reads): ``("Image", "image")``, or
    ``("Text", "text")`` for a text kind, read from the kind's own config (its ``value="$key"``)."""
    root = ElementTree.fromstring(kind.label_config(["a", "b"]))
    found = next((e for e in root.iter() if str(e.get("value", "")).startswith("$")), None)
    return ("Image", DATA_KEY) if found is None else (found.tag, str(found.get("value"))[1:])


def task_media(uri: str | None, data_root: Path, shown: str) -> str:
    """What a task shows of its item: the image's URL (:func:`image_url`), or a text kind's stored text itself
    ("" when the copy cannot be read, as an image without a copy has no URL)."""
    if shown != "Text":
        return image_url(uri, data_root)
    try:
        return read_stored_text(str(uri)) if uri else ""
    except (OSError, ValueError):
        return ""


def task_data(uri: str | None, data_root: Path, shown: tuple[str, str]) -> dict[str, Any]:
    """What a task's data holds of its item (``item_id`` goes beside it), for every task builder (queue, review,
    spot check); ``shown``: :func:`shown_object` of the kind. An image, text or audio item: ``{key: media}``
    (:func:`task_media`; audio_segments: ``{"audio": its URL}``, the local-files URL an image gets). A text_edits
    item (its copy a ``.edit.json`` document): ``{"audio": URL or "", "source": text or "", "source_text": the same,
    "machine": text, "audio_header", "source_header"}`` (:func:`edit_headers`); a config shows ``$source_text``: Label Studio 1.23's UI replaces a data key named ``source``
    with the task's own JSON (docs/speech.md, "A person labels audio")."""
    if uri and str(uri).endswith(EDIT_SUFFIX):
        try:
            item = read_edit_item(str(uri))
        except (OSError, ValueError):  # a copy that cannot be read shows nothing, as an image without one
            return {"audio": "", "source": "", "source_text": "", "machine": "", **edit_headers(None, None)}
        source = item.source or ""
        return {"audio": image_url(item.audio_uri, data_root), "source": source, "source_text": source,
                "machine": item.machine, **edit_headers(item.audio_uri, item.source)}  # fmt: skip
    tag, key = shown
    return {key: task_media(uri, data_root, tag)}


# The headers a text_edits task shows above its audio and its source sentence: one config serves transcript items
# (audio) and translation items (a source sentence), so a part the item lacks gets no header ("" renders nothing).
AUDIO_HEADER = "Listen: what was said"
SOURCE_HEADER = "Source sentence"


def edit_headers(audio_uri: str | None, source: str | None) -> dict[str, str]:
    """The ``audio_header`` and ``source_header`` of a text_edits task: a part's header only where the item has it."""
    return {"audio_header": AUDIO_HEADER if audio_uri else "", "source_header": SOURCE_HEADER if source else ""}


def image_url(uri: str | None, data_root: Path) -> str:
    """How Label Studio's UI reaches the image: its local-files endpoint for files under the data folder."""
    if not uri:
        return ""
    path = Path(uri)
    if path.is_absolute():
        try:
            return f"/data/local-files/?d={path.resolve().relative_to(data_root.resolve())}"
        except ValueError:
            return uri
    return uri


def build_payloads(
    pending: Sequence[Mapping[str, Any]],
    prelabels: Mapping[str, tuple[Mapping[str, float], str]],
    data_root: Path,
    *,
    kind: TaskKind | None = None,
    allow_empty: bool = True,
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """The payload of each pending task (rows with ``item_id`` and ``uri``), in order.

    ``prelabels`` maps item id -> (class probabilities, model version) of its newest prelabel (per-class
    marginals in a multi-label project); ``thresholds`` maps a model version to its per-class decision thresholds
    (a multi-label pre-fill at the model's own cut-offs; a version without them pre-fills at 0.5).
    """
    payloads = []
    shown, data_key = shown_object(kind or task_kind(SINGLE_LABEL))
    for row in pending:
        probs, model_version = prelabels.get(row["item_id"], (None, None))
        data = task_data(row["uri"], data_root, (shown, data_key))
        unscored = getattr(kind, "unscored_prelabel", None)  # text_edits: the machine output until a model pre-labels
        if probs is None and unscored is not None and (filled := unscored(data)) is not None:
            probs, model_version = filled
        payloads.append(
            task_payload(
                row["item_id"],
                str(data.get(data_key, "")),
                data_key=data_key,
                data=data,
                probs=probs,
                model_version=model_version,
                kind=kind,
                allow_empty=allow_empty,
                thresholds=(thresholds or {}).get(model_version) if model_version else None,
            )
        )
    return payloads


def refreshed_predictions(
    open_tasks: Sequence[Mapping[str, Any]],
    prelabels: Mapping[str, tuple[Mapping[str, float], str]],
    *,
    kind: TaskKind | None = None,
    allow_empty: bool = True,
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """Predictions to attach to open tasks (rows with ``ls_task_id``, ``item_id`` and ``model_version``, the
    version the task shows now) whose item has a newer pre-label: the champion changed, or the item was
    pre-labeled after its task was queued. Each carries its ``task`` id, ready for Label Studio's import."""
    out = []
    for row in open_tasks:
        probs, version = prelabels.get(str(row["item_id"]), (None, None))
        if probs is None or version is None or version == row.get("model_version"):
            continue
        payload = task_payload(str(row["item_id"]), "", probs=probs, model_version=version, kind=kind,
                               allow_empty=allow_empty, thresholds=(thresholds or {}).get(version))  # fmt: skip
        out.append({**payload["predictions"][0], "task": int(row["ls_task_id"])})
    return out


def shown_model_version(payloads: Sequence[Mapping[str, Any]]) -> str | None:
    """The model version Label Studio should pre-fill from: the one most payloads carry (ties: the first in sort order)."""
    versions = Counter(p["predictions"][0]["model_version"] for p in payloads if "predictions" in p)
    return max(sorted(versions), key=versions.__getitem__) if versions else None


def payload_leaks(payload: Any, gold_labels: Mapping[Any, Any]) -> list[str]:
    """Why ``payload`` (a task or list of tasks) would leak gold; empty when it is clean.

    Flags forbidden keys anywhere in the structure, and a gold item whose payload holds its gold
    label outside of a model prediction.
    """
    problems: list[str] = []
    tasks = payload if isinstance(payload, list) else [payload]
    for task in tasks:
        problems.extend(f"forbidden key {k!r}" for k in sorted(_keys(task) & FORBIDDEN_KEYS))
        data = task.get("data", {}) if isinstance(task, Mapping) else {}
        item_id = data.get("item_id")
        if isinstance(item_id, str) and item_id in gold_labels:
            gold = gold_labels[item_id]
            for key, value in data.items():
                if key != "item_id" and key not in ITEM_CONTENT_KEYS and _same_answer(value, gold):
                    problems.append(f"gold label of {item_id[:12]} in data[{key!r}]")
            if "annotations" in task:
                problems.append(f"gold item {item_id[:12]} carries annotations")
    return problems


def _same_answer(value: Any, gold: Any) -> bool:
    """``value`` states the gold answer: equal, or the same set of classes in any order (multi-label gold)."""
    if isinstance(value, list | tuple) and isinstance(gold, list | tuple):
        return sorted(map(str, value)) == sorted(map(str, gold))
    return bool(value == gold)


def _keys(value: Any) -> set[str]:
    if isinstance(value, Mapping):
        keys = {str(k) for k in value}
        for v in value.values():
            keys |= _keys(v)
        return keys
    if isinstance(value, list | tuple):
        return set().union(*(_keys(v) for v in value)) if value else set()
    return set()


PrelabelVisibility = Literal["all", "none", "not_gold"]


def visible_prelabels(
    prelabels: Mapping[str, tuple[Mapping[str, float], str]],
    pending: Sequence[Mapping[str, Any]],
    visibility: str,
) -> dict[str, tuple[Mapping[str, float], str]]:
    """The pre-labels the labelers may see: all, none, or none on gold tasks (``pending`` rows have ``is_gold``)."""
    if visibility == "all":
        return dict(prelabels)
    if visibility == "none":
        return {}
    if visibility == "not_gold":
        gold = {str(r["item_id"]) for r in pending if r.get("is_gold")}
        return {k: v for k, v in prelabels.items() if k not in gold}
    raise ValueError(f"prelabel_visibility must be all, none or not_gold, not {visibility!r}")
