"""Which items go to Label Studio next, in what order, and what exactly is sent.

Pure (numpy only). Regular items are ordered by prelabel uncertainty when probabilities exist
(unscored items count as maximally uncertain), else by a seeded shuffle; gold items are interleaved
at ``gold_rate`` at random positions. :func:`task_payload` is the ONLY builder of what is sent: it
has no parameter through which a gold answer could pass, and :func:`payload_leaks` double-checks.

Multi-label projects: a prelabel holds independent per-class probabilities (sigmoid marginals); every
strategy but ``random`` ranks by their mean binary entropy, and the prediction pre-fills every class at or above
the model's own threshold for it (chosen on val at training), :data:`PREFILL_THRESHOLD` for a model without
thresholds (``NONE_OF_THESE`` when there is none).
"""

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from labeling_assets.core.labelstudio.config import DATA_KEY, choice_result
from labeling_assets.core.training.active_learning import mean_binary_entropy

# random is the baseline every other strategy must beat
Strategy = Literal["uncertainty", "margin", "entropy", "random"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
# Keys that must never appear anywhere in a payload sent to Label Studio.
FORBIDDEN_KEYS = frozenset({"gold", "gold_label", "is_gold", "truth", "ground_truth"})
# Multi-label pre-fill: a class is pre-checked when the model gives it at least this probability.
PREFILL_THRESHOLD = 0.5


@dataclass(frozen=True)
class Candidate:
    """An item that could be queued. ``probs`` are prelabel class probabilities (None = not scored)."""

    item_id: str
    is_gold: bool = False
    probs: Mapping[str, float] | None = None
    model_version: str | None = None


@dataclass(frozen=True)
class QueuedItem:
    """An item chosen for the queue, in queue order (``position`` 0 is served first)."""

    item_id: str
    is_gold: bool
    position: int
    priority: float  # uncertainty in [0, 1]; 1.0 when not scored
    probs: Mapping[str, float] | None
    model_version: str | None


def uncertainty(
    probs: Mapping[str, float] | None, strategy: str = "uncertainty", multi_label: bool = False
) -> float:
    """Uncertainty in [0, 1] (higher = ask a human first); 1.0 when there are no probabilities.

    ``uncertainty``: 1 - max p; ``margin``: 1 - (p1 - p2); ``entropy``: normalized Shannon entropy;
    ``random``: 1.0 (order comes from the seed alone). ``multi_label``: ``probs`` are per-class marginals and
    every strategy but ``random`` is their mean binary entropy (``active_learning.mean_binary_entropy``).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if not probs or strategy == "random":
        return 1.0
    if multi_label:
        marginals = np.asarray(list(probs.values()), dtype=float)
        if not np.isfinite(marginals).all():
            return 1.0
        return float(mean_binary_entropy(np.clip(marginals, 0.0, 1.0)[None, :])[0])
    p = np.clip(np.asarray(list(probs.values()), dtype=float), 0.0, None)
    total = p.sum()
    if total <= 0 or not np.isfinite(total):
        return 1.0
    p = np.sort(p / total)[::-1]
    if strategy == "uncertainty":
        return float(1.0 - p[0])
    if strategy == "margin":
        return float(1.0 - (p[0] - (p[1] if len(p) > 1 else 0.0)))
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / math.log(len(p))) if len(p) > 1 else 0.0


def select_queue(
    candidates: Sequence[Candidate],
    *,
    limit: int,
    gold_rate: float = 0.1,
    strategy: str = "uncertainty",
    seed: int = 0,
    multi_label: bool = False,
) -> list[QueuedItem]:
    """Up to ``limit`` items in queue order with about ``gold_rate`` of them gold.

    ``multi_label``: prelabel probabilities are per-class marginals (see :func:`uncertainty`).

    Regular items: highest uncertainty first (ties broken by a seeded shuffle). Gold items: a seeded
    random sample placed at seeded random positions, so nothing about a task's position or payload
    tells it apart.
    """
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
    scores = [uncertainty(c.probs, strategy, multi_label) for c in shuffled]
    order = sorted(range(len(shuffled)), key=lambda i: -scores[i])  # stable: ties keep the shuffle
    chosen_regular = [(shuffled[i], scores[i]) for i in order[:n_regular]]
    chosen_gold = [
        (gold[i], uncertainty(gold[i].probs, strategy, multi_label))
        for i in rng.permutation(len(gold))[:n_gold]
    ]
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
    return out


def task_payload(
    item_id: str,
    image_url: str,
    *,
    probs: Mapping[str, float] | None = None,
    model_version: str | None = None,
    multi_label: bool = False,
    allow_empty: bool = True,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The Label Studio task for an item: image URL and item id, plus the prelabel as a prediction.

    Takes no gold flag or gold label on purpose: gold and regular tasks are built identically.
    ``multi_label``: the prediction pre-fills a set (:func:`prefill_set`, at the model's per-class ``thresholds``
    when it has them); its score is the mean over classes of max(p, 1 - p), the confidence consensus reports for sets.
    """
    task: dict[str, Any] = {"data": {DATA_KEY: image_url, "item_id": item_id}}
    if probs and multi_label:
        marginals = np.clip(np.asarray(list(probs.values()), dtype=float), 0.0, 1.0)
        task["predictions"] = [
            {
                "model_version": model_version or "unknown",
                "score": float(np.maximum(marginals, 1.0 - marginals).mean()),
                "result": choice_result(prefill_set(probs, allow_empty=allow_empty, thresholds=thresholds)),
            }
        ]
    elif probs:
        label, score = max(probs.items(), key=lambda kv: kv[1])
        task["predictions"] = [
            {
                "model_version": model_version or "unknown",
                "score": float(score),
                "result": choice_result(str(label)),
            }
        ]
    return task


def prefill_set(
    probs: Mapping[str, float], *, allow_empty: bool = True, thresholds: Mapping[str, float] | None = None
) -> list[str]:
    """The classes a multi-label prediction pre-checks, sorted: those whose probability reaches the model's own
    threshold for the class (``thresholds``, chosen on val at training), else :data:`PREFILL_THRESHOLD`.

    None of them: ``[]`` ("None of these"), or the most probable class when the project has no empty set (the
    config then offers no "None of these", and a pre-fill should be an answer a person could give).
    """
    cut = thresholds or {}
    chosen = sorted(str(c) for c, p in probs.items() if float(p) >= cut.get(str(c), PREFILL_THRESHOLD))
    if chosen or allow_empty or not probs:
        return chosen
    return [str(max(probs.items(), key=lambda kv: (float(kv[1]), kv[0]))[0])]


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
    multi_label: bool = False,
    allow_empty: bool = True,
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """The payload of each pending task (rows with ``item_id`` and ``uri``), in order.

    ``prelabels`` maps item id -> (class probabilities, model version) of its newest prelabel (per-class
    marginals when ``multi_label``); ``thresholds`` maps a model version to its per-class decision thresholds
    (a multi-label pre-fill at the model's own cut-offs; a version without them pre-fills at 0.5).
    """
    payloads = []
    for row in pending:
        probs, model_version = prelabels.get(row["item_id"], (None, None))
        payloads.append(
            task_payload(
                row["item_id"],
                image_url(row["uri"], data_root),
                probs=probs,
                model_version=model_version,
                multi_label=multi_label,
                allow_empty=allow_empty,
                thresholds=(thresholds or {}).get(model_version) if model_version else None,
            )
        )
    return payloads


def refreshed_predictions(
    open_tasks: Sequence[Mapping[str, Any]],
    prelabels: Mapping[str, tuple[Mapping[str, float], str]],
    *,
    multi_label: bool = False,
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
        payload = task_payload(str(row["item_id"]), "", probs=probs, model_version=version, multi_label=multi_label,
                               allow_empty=allow_empty, thresholds=(thresholds or {}).get(version))  # fmt: skip
        out.append({**payload["predictions"][0], "task": int(row["ls_task_id"])})
    return out


def shown_model_version(payloads: Sequence[Mapping[str, Any]]) -> str | None:
    """The model version Label Studio should pre-fill from: the one most payloads carry (ties: the first in sort order)."""
    versions = Counter(p["predictions"][0]["model_version"] for p in payloads if "predictions" in p)
    return max(sorted(versions), key=versions.__getitem__) if versions else None


def payload_leaks(payload: Any, gold_labels: Mapping[str, Any]) -> list[str]:
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
                if key != "item_id" and _same_answer(value, gold):
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
