"""The spot-check stage as one service: pull the reviewers' verdicts, then sample and push new answers.

``run_spot_checks(store, client, kind, options)`` is what the ``spot_checks`` asset calls. Pull first, push second
(as the adjudication asset does): verdicts given since the last run are stored (append-only), a fix is also
recorded as an expert answer (``adjudications``, with the spot-check project's id, so the next consensus run takes
it: method ``adjudicated``); then every labeler's current answers are sampled at their rate (the base rate, or the
new-labeler rate until their gold interval clears the gold gate) and the new picks pushed, one task per answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from labeling_assets.core.consensus.gates import gold_gate
from labeling_assets.core.consensus.leaderboard import QualityInputs
from labeling_assets.core.consensus.spot_check import (
    SamplingRates,
    acceptance_gate,
    labeler_rate,
    pick_sample,
)
from labeling_assets.core.labelstudio.spot_check import LABELER_VERSION, spot_check_config, spot_check_title
from labeling_assets.core.store.human_loop import record_adjudications
from labeling_assets.core.store.queries import gold_labels, load_quality_inputs
from labeling_assets.core.store.review_queue import reviewer_ids
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.store.spot_checks import (
    acceptance,
    fix_adjudications,
    mark_pushed,
    read_verdicts,
    record_samples,
    record_verdicts,
    sampled_ids,
    samples,
    spot_check_payloads,
)
from labeling_assets.core.tasks.kind import TaskKind

Log = Callable[[str], None]


class SpotCheckClient(Protocol):
    """What the service needs of a Label Studio client (``resources/labelstudio.py``'s ``LabelStudioClient``)."""

    def ensure_review_project(self, *, title: str, label_config: str) -> int: ...
    def label_config(self, project_id: int) -> str: ...
    def set_label_config(self, project_id: int, config: str) -> None: ...
    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]]) -> int: ...
    def show_predictions_of(self, project_id: int, model_version: str) -> None: ...
    def iter_tasks(self, project_id: int, *, fields: str = ...) -> Iterator[dict[str, Any]]: ...
    def list_users(self) -> list[dict[str, Any]]: ...


def _quiet(_line: str) -> None:
    return None


@dataclass(frozen=True)
class SpotCheckOptions:
    """The project's settings the stage reads."""

    project_title: str  # the labeling project's title (the spot-check project is ``<title> — spot-check``)
    classes: Sequence[str]
    data_root: Path
    rates: SamplingRates = field(default_factory=SamplingRates)
    reviewers: Sequence[str] = ()  # Label Studio usernames or emails; empty: anyone who answers there
    gold_gate_threshold: float | None = None  # None: the kind's own
    acceptance_threshold: float = 0.8
    allow_empty: bool = True
    allow_overlap: bool = False


@dataclass(frozen=True)
class SpotCheckRun:
    """What a run did: the project, verdicts and fixes stored, answers sampled and pushed, acceptance per labeler."""

    project_id: int
    new_verdicts: int
    new_fixes: int
    unreadable: list[str]
    sampled_now: int
    pushed_now: int
    sampled_total: int
    rates: dict[str, tuple[float, str]]  # labeler id -> (rate, why)
    acceptance: dict[str, dict[str, Any]]  # labeler id -> acceptance gate metadata
    unknown_reviewers: list[str]


def run_spot_checks(
    store: LabelStore, client: SpotCheckClient, kind: TaskKind, options: SpotCheckOptions, *,
    serve: Callable[[int], str] | None = None, log: Log = _quiet,
) -> SpotCheckRun:  # fmt: skip
    """Pull verdicts, record fixes as expert answers, then sample and push; ``serve``: let Label Studio serve the
    project's images (the resource's ``serve_images``)."""
    wanted = spot_check_config(kind.label_config(list(options.classes), options.allow_empty))
    project_id = client.ensure_review_project(title=spot_check_title(options.project_title), label_config=wanted)
    if client.label_config(project_id) != wanted:  # the classes or the task type changed since its creation
        client.set_label_config(project_id, wanted)
    if serve is not None:
        log(serve(project_id))
    reviewers, unknown = reviewer_ids(client.list_users(), list(options.reviewers))
    by_id = {int(r["ls_annotation_id"]): r for r in samples(store)}
    rows, unreadable = read_verdicts(client.iter_tasks(project_id, fields="all"), project_id, reviewers, kind, by_id)
    fresh = record_verdicts(store, rows)
    fixes = record_adjudications(store, fix_adjudications(fresh))
    inputs = load_quality_inputs(store, list(options.classes), task_type=kind.name, allow_empty=options.allow_empty,
                                 allow_overlap=options.allow_overlap)  # fmt: skip
    rates = sampling_rates(inputs, kind, options)
    # Hidden gold items are left out: answers there are scored against gold already.
    answers = inputs.votes[~inputs.votes["item_id"].isin(set(gold_labels(store).index))]
    picks = pick_sample(answers, rates, options.rates.seed, sampled_ids(store))
    sampled_now = record_samples(store, picks, options.rates.seed)
    pending = samples(store, unpushed=True)
    payloads = spot_check_payloads(store, pending, kind, options.data_root)
    pushed: dict[int, int] = {}
    if payloads:  # an idle run reads no task list
        client.import_tasks(project_id, payloads)
        if any("predictions" in p for p in payloads):  # Label Studio pre-fills from one version: the labeler's
            client.show_predictions_of(project_id, LABELER_VERSION)
        tasks = {int((t.get("data") or {}).get("ls_annotation_id") or -1): int(t["id"]) for t in client.iter_tasks(project_id)}
        pushed = {int(r["ls_annotation_id"]): tasks[int(r["ls_annotation_id"])] for r in pending
                  if int(r["ls_annotation_id"]) in tasks}  # fmt: skip
        mark_pushed(store, project_id, pushed)
    gates = {k: acceptance_gate(a, n, options.acceptance_threshold).metadata() for k, (a, n) in acceptance(store).items()}
    log(f"spot-check project {project_id}: {len(fresh)} new verdicts ({fixes} fixes), {sampled_now} answers sampled, "
        f"{len(pushed)} pushed")  # fmt: skip
    return SpotCheckRun(project_id, len(fresh), fixes, unreadable, sampled_now, len(pushed), len(by_id) + sampled_now,
                        rates, gates, unknown)  # fmt: skip


def sampling_rates(inputs: QualityInputs, kind: TaskKind, options: SpotCheckOptions) -> dict[str, tuple[float, str]]:
    """Labeler id -> (rate, why) of every labeler with votes: the gold gate as ``labeler_stats`` judges it (the
    kind's gold score on hidden gold and adjudicated answers, the project's or the kind's threshold)."""
    classes = list(options.classes)
    threshold = kind.gold_gate_threshold if options.gold_gate_threshold is None else options.gold_gate_threshold
    out = {}
    for labeler_id, rows in (inputs.votes.groupby("labeler_id", sort=True) if not inputs.votes.empty else []):
        correct, n = kind.gold_score(rows, inputs.gold, classes)
        out[str(labeler_id)] = labeler_rate(gold_gate(correct, n, threshold) if n else None, options.rates)
    return out


def acceptance_metadata(gates: Mapping[str, Mapping[str, Any]], names: Mapping[str, str]) -> dict[str, Any]:
    """Acceptance per labeler name (for metadata)."""
    return {names.get(k, k): dict(v) for k, v in sorted(gates.items())}
